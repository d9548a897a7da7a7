"""The turn renderer of a sidebar turn: events go over the comm as JSON.

Text and reasoning deltas are coalesced by `DeltaBatcher` (at most about ten messages a
second whatever the token rate); any other event first flushes what is pending, and the end
of the turn flushes the rest, so no text is lost and the order is kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..display.coalesce import DeltaBatcher
from ..events import Event, Failed, event_to_json
from ..response import Response

__all__ = ["EVENT_INTERVAL", "CommRenderer", "Send"]

EVENT_INTERVAL = 0.1

Send = Callable[[dict[str, Any]], None]


class CommRenderer:
    """A turn renderer that sends ``start``, ``event`` and ``done`` messages over a comm."""

    def __init__(self, send: Send, request_id: str, interval: float = EVENT_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.send = send
        self.request_id = request_id
        self.meta: dict[str, Any] = {}
        self.finished = False
        self.messages = 0
        self._batcher = DeltaBatcher(self._event, interval, clock)

    def start(self, meta: Any) -> None:
        self.meta = meta.to_json() if meta is not None else {}
        self._send({"type": "start", "request_id": self.request_id, "meta": self.meta})

    def handle(self, event: Event) -> None:
        self._batcher.feed(event)

    def flush(self) -> None:
        self._batcher.flush()

    def finish(self, response: Response) -> None:
        from ..ratelimit import rate_limits  # the sidebar header shows limits that run low

        self._batcher.flush()
        self.finished = True
        self._send({"type": "done", "request_id": self.request_id, "response": response.summary(),
                    "meta": self.meta, "rate_limits": rate_limits().last_status()})

    def fail(self, message: str, kind: str = "KimiError") -> None:
        """End a turn that failed before (or outside) the Turn: a Failed event, then done."""
        response = Response()
        event = Failed(message, kind)
        response.feed(event)
        self.handle(event)
        self.finish(response)

    def _event(self, event: Event) -> None:
        self._send({"type": "event", "request_id": self.request_id, "event": event_to_json(event)})

    def _send(self, message: dict[str, Any]) -> None:
        self.messages += 1
        self.send(message)
