"""Request rate limiting, as Moonshot applies it to an account (RPM over a window).

``KimiSimulator(rate_limit=RateLimit(requests=60, window=60))`` admits at most ``requests``
chat requests in any ``window`` seconds; the next one gets Moonshot's 429
``rate_limit_reached_error`` ("please try again after N seconds", with ``Retry-After: N``).
Every chat answer carries the limit in ``x-ratelimit-limit-requests``,
``x-ratelimit-remaining-requests`` and ``x-ratelimit-reset-requests`` (seconds). Tests use
a short window so a 429 storm lasts a second, not a minute. Requests a batch runs on the
provider's side are not counted.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass

from .errors import ApiError

__all__ = ["RateLimit", "RateLimiter"]


@dataclass(frozen=True)
class RateLimit:
    requests: int
    window: float = 60.0


class RateLimiter:
    def __init__(self, limit: RateLimit):
        self.limit = limit
        self._times: deque[float] = deque()
        self._lock = threading.Lock()
        self.refused = 0

    def admit(self) -> dict[str, str]:
        """Count one request, or raise the 429 it gets; returns the rate-limit headers."""
        with self._lock:
            now = time.monotonic()
            while self._times and now - self._times[0] >= self.limit.window:
                self._times.popleft()
            if len(self._times) >= self.limit.requests:
                self.refused += 1
                wait = max(1, math.ceil(self.limit.window - (now - self._times[0])))
                message = (f"Your account org-simulator request reached organization max RPM: "
                           f"{self.limit.requests}, please try again after {wait} seconds")
                headers = {"Retry-After": str(wait), **self._headers(0, wait)}
                raise ApiError(429, "rate_limit_reached_error", message, headers)
            self._times.append(now)
            reset = self.limit.window - (now - self._times[0])
            return self._headers(self.limit.requests - len(self._times), reset)

    def _headers(self, remaining: int, reset: float) -> dict[str, str]:
        return {"x-ratelimit-limit-requests": str(self.limit.requests),
                "x-ratelimit-remaining-requests": str(max(0, remaining)),
                "x-ratelimit-reset-requests": f"{max(0.0, reset):.3f}s"}
