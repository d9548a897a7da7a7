"""Adaptive concurrency for the live engine.

At most ``maximum`` rows are in flight. A 429 (seen as a retry inside a row's turn, or as a
row that failed with a rate-limit or overload error) halves the limit and pauses new starts
for the wait the server named; every ``limit`` clean rows raise the limit by one again
(additive increase, multiplicative decrease), so a rate-limited account settles just under
its limit instead of hammering it. ``cap`` (the requests the server's ``x-ratelimit-*``
headers say are left, from ``kimi_jupyter.ratelimit``) lowers the limit further while it is
smaller.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

__all__ = ["AdaptiveLimiter"]


class AdaptiveLimiter:
    """Counts rows in flight; a row waits only while the limit is reached (no lock when it is not)."""

    def __init__(self, maximum: int, cap: Callable[[], int] | None = None):
        self.maximum = max(1, int(maximum))
        self.cap = cap
        self.limit = self.maximum
        self.active = 0
        self.throttles = 0
        self._paused_until = 0.0
        self._clean = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    def try_acquire(self) -> bool:
        """Take a slot now if one is free and no pause is on; False: ``await acquire()``."""
        if not self._waiters and self.active < self.allowed() and self._paused_until <= time.monotonic():
            self.active += 1
            return True
        return False

    async def acquire(self) -> None:
        # No await between the check and the count: on one event loop this is atomic.
        while self.active >= self.allowed():
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake()  # woken, then cancelled before it ran: pass the wake-up on
                raise
            finally:
                if waiter in self._waiters:  # cancelled while waiting
                    self._waiters.remove(waiter)
        self.active += 1
        delay = self._paused_until - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    def allowed(self) -> int:
        """Rows that may be in flight now: the adaptive limit, under the server's announced cap."""
        return max(1, min(self.limit, self.cap())) if self.cap is not None else self.limit

    def _wake(self) -> None:
        """Wake as many waiting rows as may start now (each checks again when it runs)."""
        free = self.allowed() - self.active
        while free > 0 and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                free -= 1

    async def release(self) -> None:
        self.release_now()

    def release_now(self) -> None:
        self.active -= 1
        if self._waiters:
            self._wake()

    def throttled(self, wait: float) -> None:
        """The server said slow down: halve the limit and hold new starts for ``wait`` s."""
        self.throttles += 1
        self.limit = max(1, self.limit // 2)
        self._clean = 0
        self._paused_until = max(self._paused_until, time.monotonic() + max(0.0, wait))

    async def succeeded(self) -> None:
        self._clean += 1
        if self.limit < self.maximum and self._clean >= self.limit:
            self._clean = 0
            self.limit += 1
            if self._waiters:
                self._wake()
