"""Rate limits the server announces: read from response headers, shown, and obeyed.

OpenAI-compatible servers (and gateways in front of Moonshot) announce their limits on every
response with headers; the names read here are the common ones:

* ``x-ratelimit-limit-requests`` / ``x-ratelimit-remaining-requests`` /
  ``x-ratelimit-reset-requests``: requests per window, how many are left, when it resets;
* ``x-ratelimit-limit-tokens`` / ``x-ratelimit-remaining-tokens`` /
  ``x-ratelimit-reset-tokens``: the same for tokens (Moonshot counts a request's prompt
  tokens plus its ``max_tokens`` against the limit);
* resets are durations (``"1s"``, ``"6m0s"``, ``"250ms"``) or plain seconds;
  ``Retry-After`` on a 429 is seconds.

What the client does with them: every response's headers are recorded per base URL (the
latest wins); before sending, a request waits for the reset when the server said nothing is
left (at most ``Kimi.retry_max_wait`` seconds, and says so); a 429 that names no wait is
retried after the announced reset; ``%kimi usage`` shows the latest numbers, and
:meth:`RateLimits.status` gives the sidebar header what it needs (``low`` when under 10%
left). :meth:`RateLimits.concurrency` caps parallel requests by what is left.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["RateLimitInfo", "RateLimits", "parse_duration", "parse_rate_limit_headers", "rate_limits"]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
LOW_FRACTION = 0.1


def parse_duration(value: str | None) -> float | None:
    """Seconds in ``"6m0s"``, ``"1.5s"``, ``"250ms"`` or ``"12"``; None when unreadable."""
    if not value:
        return None
    text = value.strip().lower()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text.replace(" ", ""):
        return None
    return sum(float(n) * _UNITS[u] for n, u in parts)


def _int(value: str | None) -> int | None:
    try:
        return int(float(value)) if value is not None and value.strip() else None
    except ValueError:
        return None


@dataclass(frozen=True)
class RateLimitInfo:
    """What one response said about the limits; resets are seconds from ``observed``."""

    limit_requests: int | None = None
    remaining_requests: int | None = None
    reset_requests: float | None = None
    limit_tokens: int | None = None
    remaining_tokens: int | None = None
    reset_tokens: float | None = None
    observed: float = 0.0  # time.monotonic() when the headers arrived

    def seconds_until_reset(self, now: float | None = None) -> float:
        """How long until the exhausted limit (requests or tokens) resets; 0 if nothing is exhausted."""
        now = time.monotonic() if now is None else now
        waits = []
        if self.remaining_requests == 0 and self.reset_requests is not None:
            waits.append(self.reset_requests)
        if self.remaining_tokens == 0 and self.reset_tokens is not None:
            waits.append(self.reset_tokens)
        return max(0.0, max(waits) - (now - self.observed)) if waits else 0.0

    def any_reset(self, now: float | None = None) -> float | None:
        """Seconds until the earliest announced reset (for a 429 that names no wait)."""
        now = time.monotonic() if now is None else now
        resets = [r for r in (self.reset_requests, self.reset_tokens) if r is not None]
        return max(0.0, min(resets) - (now - self.observed)) if resets else None

    @property
    def low(self) -> bool:
        """Under 10% of the requests or tokens of the window are left."""
        return any(
            limit and remaining is not None and remaining < LOW_FRACTION * limit
            for limit, remaining in ((self.limit_requests, self.remaining_requests),
                                     (self.limit_tokens, self.remaining_tokens))
        )

    def describe(self) -> str:
        parts = []
        if self.remaining_requests is not None:
            of = f" of {self.limit_requests:,}" if self.limit_requests is not None else ""
            reset = f", resets in {self.reset_requests:g} s" if self.reset_requests is not None else ""
            parts.append(f"{self.remaining_requests:,}{of} requests left{reset}")
        if self.remaining_tokens is not None:
            of = f" of {self.limit_tokens:,}" if self.limit_tokens is not None else ""
            reset = f", resets in {self.reset_tokens:g} s" if self.reset_tokens is not None else ""
            parts.append(f"{self.remaining_tokens:,}{of} tokens left{reset}")
        return "; ".join(parts)


def parse_rate_limit_headers(headers: Any, now: float | None = None) -> RateLimitInfo | None:
    """The limits a response announced, or None when it announced none."""
    if headers is None:
        return None

    def get(name: str) -> str | None:
        value = headers.get(name)
        return value if isinstance(value, str) else None

    info = RateLimitInfo(
        limit_requests=_int(get("x-ratelimit-limit-requests")),
        remaining_requests=_int(get("x-ratelimit-remaining-requests")),
        reset_requests=parse_duration(get("x-ratelimit-reset-requests")),
        limit_tokens=_int(get("x-ratelimit-limit-tokens")),
        remaining_tokens=_int(get("x-ratelimit-remaining-tokens")),
        reset_tokens=parse_duration(get("x-ratelimit-reset-tokens")),
        observed=time.monotonic() if now is None else now,
    )
    if info.remaining_requests is None and info.remaining_tokens is None:
        return None
    return info


class RateLimits:
    """The latest announced limits per base URL (thread-safe; one per process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: dict[str, RateLimitInfo] = {}
        self._last_base: str | None = None
        self.version = 0  # counts what was recorded: a caller can keep an answer until it moves

    def record(self, base_url: str, headers: Any) -> RateLimitInfo | None:
        info = parse_rate_limit_headers(headers)
        if info is not None:
            with self._lock:
                self._latest[base_url] = info
                self._last_base = base_url
                self.version += 1
        return info

    def last_status(self) -> dict[str, Any] | None:
        """:meth:`status` of the server that announced limits most recently (the sidebar's)."""
        with self._lock:
            base = self._last_base
        return self.status(base) if base is not None else None

    def latest(self, base_url: str) -> RateLimitInfo | None:
        with self._lock:
            return self._latest.get(base_url)

    def wait_before_send(self, base_url: str) -> float:
        """Seconds to wait before the next request (0 unless the server said nothing is left)."""
        info = self.latest(base_url)
        return info.seconds_until_reset() if info else 0.0

    def retry_after(self, base_url: str) -> float | None:
        """The wait for a 429 that named none: the announced reset, if any."""
        info = self.latest(base_url)
        return info.any_reset() if info else None

    def concurrency(self, base_url: str, wanted: int) -> int:
        """How many requests to run at once: ``wanted``, capped by the requests left (at least 1)."""
        info = self.latest(base_url)
        if info is None or info.remaining_requests is None:
            return max(1, wanted)
        return max(1, min(wanted, info.remaining_requests))

    def status(self, base_url: str) -> dict[str, Any] | None:
        """What the sidebar header shows: the numbers, a one-line text, and whether they are low."""
        info = self.latest(base_url)
        if info is None:
            return None
        return {
            "remaining_requests": info.remaining_requests,
            "limit_requests": info.limit_requests,
            "remaining_tokens": info.remaining_tokens,
            "limit_tokens": info.limit_tokens,
            "text": info.describe(),
            "low": info.low,
        }

    def describe(self, base_url: str) -> str:
        """The ``%kimi usage`` line ("" while the server has announced no limits)."""
        info = self.latest(base_url)
        if info is None:
            return ""
        age = time.monotonic() - info.observed
        return f"Rate limits (as of {age:.0f} s ago): {info.describe()}" + (" - running low" if info.low else "")

    def clear(self) -> None:
        with self._lock:
            self._latest.clear()
            self._last_base = None
            self.version += 1


_RATE_LIMITS = RateLimits()


def rate_limits() -> RateLimits:
    """The process-wide record of announced limits."""
    return _RATE_LIMITS
