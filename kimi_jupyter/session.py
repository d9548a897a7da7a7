"""Per-kernel state shared by the magics, `ask()`/`aask()` and the sidebar.

One kernel, one `Session`: where the ``%config Kimi.*`` overrides are read from, the chats'
memories (the notebook's ``%%kimi`` conversation and the sidebar's own), the usage ledger
that `%kimi usage` prints, the budget with its in-flight reservations, and the pools of
HTTP pools (one sync pool per `client.connection.Connection`, one async pool per connection
and event loop, so connections and TLS contexts are reused between cells and concurrent
calls, whatever model or per-call options each uses).
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .conversation import Conversation
from .events import Usage
from .response import Response
from .settings import Settings, resolve_settings

if TYPE_CHECKING:
    from .client import AsyncKimiClient, KimiClient

__all__ = ["Budget", "Chat", "Session", "UsageLedger", "get_session"]


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
        row = self.rows.get(source)
        if row is None:
            row = self.rows[source] = LedgerRow()
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


class Budget:
    """The session's one ledger of spend: what is spent, and what requests in flight hold.

    Every spend path reserves its worst case here before it sends (`kimi_jupyter.ledger`) and
    settles with the real cost when it ends, so concurrent turns (threads, ``asyncio.gather``
    of ``aask``, the rows of a run) cannot together pass a budget. The lock is a thread lock
    and nothing awaits while holding it, so it serves threads and event loops alike.
    """

    def __init__(self, ledger: UsageLedger) -> None:
        self.ledger = ledger
        self._lock = threading.Lock()
        self._closing: set[Any] = set()  # evicted async clients being closed
        self._reserved: dict[int, tuple[float, int, Any]] = {}  # ticket: (money, tokens, run budget)
        self._next = 0

    @property
    def spent(self) -> float:
        return self.ledger.total.usage.cost or 0.0

    @property
    def spent_tokens(self) -> int:
        usage = self.ledger.total.usage
        return (usage.prompt or 0) + (usage.completion or 0) if usage.reported else 0

    @property
    def in_flight(self) -> float:
        return sum(m for m, _, _ in self._reserved.values())

    @property
    def in_flight_tokens(self) -> int:
        return sum(t for _, t, _ in self._reserved.values())

    def reserve(self, amount: float, check: Callable[[float, float], str | None]) -> tuple[int | None, str | None]:
        """(ticket, None), or (None, refusal) when ``check(spent, in_flight)`` refuses."""
        with self._lock:
            refusal = check(self.spent, self.in_flight)
            if refusal is not None:
                return None, refusal
            return self._hold(amount, 0, None), None

    def reserve_spend(self, decide: Callable[[Budget], Any], run: Any = None) -> tuple[int | None, Any]:
        """``decide(self)`` under the lock (it reads `spent`, `in_flight`...); a `ledger.Spend`
        is held and its ticket returned, anything else (a refusal, ``WAIT``) returned as it is."""
        from .ledger import Spend

        with self._lock:
            decision = decide(self)
            if not isinstance(decision, Spend):
                return None, decision
            return self._hold(decision.money, decision.tokens, run), decision

    def _hold(self, money: float, tokens: int, run: Any) -> int:
        self._next += 1
        self._reserved[self._next] = (money, tokens, run)
        if run is not None:
            run.reserved += money
        return self._next

    def settle(self, ticket: int | None, cost: float | None = None) -> None:
        """Release a reservation (the session's real cost is already in the ledger; a run's
        budget is charged ``cost``, or what was reserved when the cost is not known)."""
        if ticket is None:
            return
        with self._lock:
            held = self._reserved.pop(ticket, None)
            if held is not None and held[2] is not None:
                money, _, run = held
                run.reserved -= money
                run.spent += money if cost is None else cost


class Chat:
    """One conversation and its last response: the notebook's, or the sidebar's."""

    def __init__(self) -> None:
        self.conversation = Conversation()
        self.last: Response | None = None


class Session:
    MAX_CLIENTS = 4

    def __init__(self) -> None:
        # Overrides set from Python (scripts, tests); `%config Kimi.*` values win over them.
        self.config: dict[str, Any] = {}
        self.notebook = Chat()   # %%kimi, ask(history=True)
        self.sidebar = Chat()    # the JupyterLab chat (its own memory, one per kernel)
        self.ledger = UsageLedger()
        self.budget = Budget(self.ledger)
        # HTTP pools keyed by `client.connection.Connection` only: per-call options (model,
        # max tokens, system, thinking...) share a pool. Async pools are per event loop too.
        self._clients: OrderedDict[Any, Any] = OrderedDict()
        self._aclients: OrderedDict[tuple[int, Any], tuple[Any, Any]] = OrderedDict()
        self._closing: set[Any] = set()  # aclose() tasks of evicted async pools, held until done
        self._lock = threading.Lock()

    # The notebook chat is the session's default one.
    @property
    def conversation(self) -> Conversation:
        return self.notebook.conversation

    @property
    def last(self) -> Response | None:
        return self.notebook.last

    def settings(self, **explicit: Any) -> Settings:
        return resolve_settings(explicit={k: v for k, v in explicit.items() if v is not None},
                                config={**self.config, **config_overrides()})

    def client(self, settings: Settings) -> KimiClient:
        """A client for ``settings`` on the pooled connection of its `Connection`."""
        from .client import KimiClient  # httpx loads on first use, not with the extension
        from .client.connection import Connection, sync_http

        key = Connection.of(settings)
        with self._lock:
            http = self._clients.pop(key, None) or sync_http(settings)
            self._clients[key] = http
            while len(self._clients) > self.MAX_CLIENTS:
                _, old = self._clients.popitem(last=False)
                old.close()
        return KimiClient(settings, http=http)

    def aclient(self, settings: Settings) -> AsyncKimiClient:
        """The async client for ``settings`` on the running event loop (pooled like `client`)."""
        import asyncio

        from .client import AsyncKimiClient
        from .client.connection import Connection, async_http

        loop = asyncio.get_running_loop()
        key = (id(loop), Connection.of(settings))
        with self._lock:
            entry = self._aclients.pop(key, None)
            if entry is None or entry[0] is not loop:
                entry = (loop, async_http(settings))
            self._aclients[key] = entry
            stale = [k for k, (lp, _) in self._aclients.items() if lp.is_closed()]
            for k in stale:
                self._aclients.pop(k)
            while len(self._aclients) > 2 * self.MAX_CLIENTS:
                _, (old_loop, old) = self._aclients.popitem(last=False)
                if old_loop is loop:
                    self._closing.add(task := loop.create_task(old.aclose()))
                    task.add_done_callback(self._closing.discard)
        return AsyncKimiClient(settings, http=entry[1])

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        self._aclients.clear()

    def reset(self) -> None:
        self.notebook.conversation.clear()


def config_overrides() -> dict[str, Any]:
    """The ``%config Kimi.*`` values of the running IPython, the one place they are held.

    Read at every turn, so a change reaches ``%%kimi``, ``ask()``, ``aask()`` and the sidebar
    at once, from ``%load_ext`` on (there is nothing to wire up). Empty outside IPython.
    """
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    config = getattr(shell, "config", None)
    if config is None or "Kimi" not in config:
        return {}
    return dict(config["Kimi"])


_SESSION: Session | None = None


def get_session() -> Session:
    global _SESSION
    if _SESSION is None:
        _SESSION = Session()
    return _SESSION
