"""Per-kernel state shared by the magics, `ask()` and the sidebar.

One kernel, one `Session`: the ``%config Kimi.*`` overrides, the conversation memory, the
usage ledger that `%kimi usage` prints, the last response, and a small pool of HTTP clients
(connections are reused between cells).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .conversation import Conversation
from .events import Usage
from .response import Response
from .settings import Settings, resolve_settings

if TYPE_CHECKING:
    from .client import KimiClient

__all__ = ["Session", "UsageLedger", "get_session"]


@dataclass
class LedgerRow:
    requests: int = 0
    usage: Usage = field(default_factory=Usage.not_reported)
    unreported: int = 0


@dataclass
class UsageLedger:
    """Session totals per source ("magic", "ask", "sidebar", ...)."""

    rows: dict[str, LedgerRow] = field(default_factory=dict)

    def add(self, source: str, usage: Usage, requests: int = 1) -> None:
        row = self.rows.setdefault(source, LedgerRow())
        row.requests += requests
        if usage.reported:
            row.usage = row.usage + usage
        else:
            row.unreported += requests

    @property
    def total(self) -> LedgerRow:
        total = LedgerRow()
        for row in self.rows.values():
            total.requests += row.requests
            total.unreported += row.unreported
            total.usage = total.usage + row.usage
        return total

    def clear(self) -> None:
        self.rows.clear()


class Session:
    MAX_CLIENTS = 4

    def __init__(self) -> None:
        self.config: dict[str, Any] = {}
        # Set by the IPython extension: returns the `%config Kimi.*` values the user set.
        self.config_source: Callable[[], dict[str, Any]] | None = None
        self.conversation = Conversation()
        self.ledger = UsageLedger()
        self.last: Response | None = None
        self._clients: OrderedDict[Settings, KimiClient] = OrderedDict()

    def settings(self, **explicit: Any) -> Settings:
        config = {**self.config, **(self.config_source() if self.config_source else {})}
        return resolve_settings(explicit={k: v for k, v in explicit.items() if v is not None}, config=config)

    def client(self, settings: Settings) -> KimiClient:
        from .client import KimiClient  # httpx loads on first use, not with the extension

        client = self._clients.pop(settings, None) or KimiClient(settings)
        self._clients[settings] = client
        while len(self._clients) > self.MAX_CLIENTS:
            _, old = self._clients.popitem(last=False)
            old.close()
        return client

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def reset(self) -> None:
        self.conversation.clear()


_SESSION: Session | None = None


def get_session() -> Session:
    global _SESSION
    if _SESSION is None:
        _SESSION = Session()
    return _SESSION
