"""Turn a torrent of events into at most ~10 repaints a second.

Kimi can stream hundreds of tokens a second and a loopback simulator thousands; repainting
a widget or a display handle for each would flood the kernel's iopub channel and freeze
the frontend. A :class:`Coalescer` folds events into a :class:`Response` snapshot and calls
its ``on_flush`` callback at most once per ``interval`` while events keep arriving, at once
for events that precede a wait (a tool starting, an approval prompt, a retry pause), and
once more on :meth:`finish`. Nothing is dropped: text is buffered and joined at each flush,
so the snapshot is exact whenever the callback sees it.

No thread or timer is involved: the magic consumes the stream on the kernel's main thread,
so a flush can only happen when an event arrives (a stalled stream shows its last flush).
The clock is injectable so tests can simulate time.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..events import ApprovalRequested, Event, ReasoningDelta, Retrying, TextDelta, ToolCallStarted
from ..response import Response
from .fmt import next_phase

__all__ = ["URGENT", "Coalescer", "DeltaBatcher", "paced_interval"]

#: Events after which the producer may block for a while: show them right away.
URGENT: tuple[type, ...] = (ToolCallStarted, ApprovalRequested, Retrying)


class Coalescer:
    """Accumulate a turn and decide when its renderer repaints."""

    def __init__(
        self,
        on_flush: Callable[[Coalescer], None],
        interval: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
        *,
        quiet_start: bool = False,
    ) -> None:
        self.on_flush = on_flush
        self.interval = interval
        self.clock = clock
        self.response = Response(keep_events=False)
        self.phase = "waiting"
        self.flushes = 0
        self.finished = False
        self.started = clock()
        # quiet_start: the first repaint waits an interval too (a short answer that ends
        # within it is never painted half-way), except for urgent events.
        self._last_flush: float | None = self.started if quiet_start else None
        self._dirty = False
        self._reasoning_since: float | None = None
        self._reasoning_done = 0.0

    def feed(self, event: Event) -> bool:
        """Fold ``event`` in; repaint if one is due. Returns whether it repainted."""
        now = self.clock()
        if isinstance(event, TextDelta):
            self.response.feed(event)  # Response buffers deltas itself: cheap per token
            self.phase = "answering"
        elif isinstance(event, ReasoningDelta):
            self.response.feed(event)
            self.phase = "thinking"
            if self._reasoning_since is None:
                self._reasoning_since = now
        else:
            self.response.feed(event)
            self.phase = next_phase(self.phase, event, self.response)
        if self._reasoning_since is not None and not isinstance(event, ReasoningDelta):
            self._reasoning_done += now - self._reasoning_since
            self._reasoning_since = None
        self._dirty = True
        if isinstance(event, URGENT) or self._last_flush is None or now - self._last_flush >= self.interval:
            self._flush(now)
            return True
        return False

    def finish(self) -> None:
        """The turn ended: repaint one last time with everything that arrived."""
        self.finished = True
        self._flush(self.clock())

    def _flush(self, now: float) -> None:
        self._last_flush = now
        self._dirty = False
        self.flushes += 1
        self.on_flush(self)

    @property
    def dirty(self) -> bool:
        return self._dirty

    @property
    def reasoning_active(self) -> bool:
        return self._reasoning_since is not None

    def elapsed(self) -> float:
        return self.clock() - self.started

    def reasoning_seconds(self) -> float:
        """Time spent reasoning so far (all reasoning spans of the turn)."""
        running = self.clock() - self._reasoning_since if self._reasoning_since is not None else 0.0
        return self._reasoning_done + running


def paced_interval(base: float, chars: int, per: int = 50_000, ceiling: float = 1.0) -> float:
    """Repaint less often as the content grows: each repaint resends it whole."""
    return max(base, min(ceiling, base * chars / per))


class DeltaBatcher:
    """Coalescing for a consumer that wants deltas, not snapshots (the sidebar's comm).

    Consecutive text or reasoning deltas are joined and passed on at most every
    ``interval`` seconds; any other event first flushes what is pending, so the order is
    kept and nothing is lost.
    """

    def __init__(self, emit: Callable[[Event], None], interval: float = 0.1,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.emit, self.interval, self.clock = emit, interval, clock
        self._pending: list[tuple[type, list[str]]] = []
        self._last: float | None = None

    def feed(self, event: Event) -> None:
        if isinstance(event, (TextDelta, ReasoningDelta)):
            kind = type(event)
            if self._pending and self._pending[-1][0] is kind:
                self._pending[-1][1].append(event.text)
            else:
                self._pending.append((kind, [event.text]))
            now = self.clock()
            if self._last is None or now - self._last >= self.interval:
                self.flush(now)
            return
        self.flush()
        self.emit(event)

    def flush(self, now: float | None = None) -> None:
        """Pass on what is pending (one event per run of same-kind deltas)."""
        pending, self._pending = self._pending, []
        for kind, pieces in pending:
            self.emit(kind("".join(pieces)))
        self._last = self.clock() if now is None else now
