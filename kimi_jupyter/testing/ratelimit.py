"""Rate limits in the simulator: announced in headers, enforced with 429s that agree.

With ``KimiSimulator(rate_limits=RateLimits(requests=3, tokens=10_000, window=1.0))`` every
chat response carries ``x-ratelimit-limit-requests``, ``x-ratelimit-remaining-requests``,
``x-ratelimit-reset-requests`` and the ``-tokens`` twins (resets as durations such as
``"0.8s"``). A request over either limit gets 429 ``rate_limit_reached_error`` with
``Retry-After`` and the same headers, so a client that honours them succeeds on its next
try. Tokens are counted as Moonshot counts them: the prompt's tokens plus the requested
``max_tokens`` (or ``max_completion_tokens``). The window slides: each request is
forgotten ``window`` seconds after it was accepted.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass

from .errors import ApiError

__all__ = ["RateLimits", "RateWindow"]


@dataclass(frozen=True)
class RateLimits:
    """Requests and tokens allowed per ``window`` seconds (None: unlimited)."""

    requests: int | None = None
    tokens: int | None = None
    window: float = 60.0


def _duration(seconds: float) -> str:
    return f"{max(0.0, seconds):.3g}s"


class RateWindow:
    """The accepted requests of the last window, behind a lock."""

    def __init__(self, limits: RateLimits) -> None:
        self.limits = limits
        self._lock = threading.Lock()
        self._accepted: deque[tuple[float, int]] = deque()

    def _prune(self, now: float) -> None:
        while self._accepted and now - self._accepted[0][0] >= self.limits.window:
            self._accepted.popleft()

    def _headers(self, now: float, extra_requests: int = 0, extra_tokens: int = 0) -> dict[str, str]:
        limits = self.limits
        used_requests = len(self._accepted) + extra_requests
        used_tokens = sum(t for _, t in self._accepted) + extra_tokens
        reset = limits.window - (now - self._accepted[0][0]) if self._accepted else 0.0
        headers = {}
        if limits.requests is not None:
            headers.update({
                "x-ratelimit-limit-requests": str(limits.requests),
                "x-ratelimit-remaining-requests": str(max(0, limits.requests - used_requests)),
                "x-ratelimit-reset-requests": _duration(reset),
            })
        if limits.tokens is not None:
            headers.update({
                "x-ratelimit-limit-tokens": str(limits.tokens),
                "x-ratelimit-remaining-tokens": str(max(0, limits.tokens - used_tokens)),
                "x-ratelimit-reset-tokens": _duration(reset),
            })
        return headers

    def admit(self, tokens: int) -> dict[str, str]:
        """Accept a request costing ``tokens`` and return its headers, or raise the 429."""
        limits = self.limits
        with self._lock:
            now = time.monotonic()
            self._prune(now)
            over_requests = limits.requests is not None and len(self._accepted) >= limits.requests
            used = sum(t for _, t in self._accepted)
            over_tokens = limits.tokens is not None and used + tokens > limits.tokens and bool(self._accepted)
            if over_requests or over_tokens:
                wait = limits.window - (now - self._accepted[0][0])
                headers = self._headers(now)
                headers["Retry-After"] = str(max(1, math.ceil(wait)))
                what = f"max RPM: {limits.requests}" if over_requests else f"max TPM: {limits.tokens}"
                raise ApiError(
                    429,
                    "rate_limit_reached_error",
                    f"Your account org-simulator request reached organization {what}, please try again after "
                    f"{max(1, math.ceil(wait))} seconds",
                    headers,
                )
            self._accepted.append((now, tokens))
            return self._headers(now)

    def reset(self) -> None:
        with self._lock:
            self._accepted.clear()
