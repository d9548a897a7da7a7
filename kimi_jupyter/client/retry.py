"""When to try again, and how long to wait.

Bounded exponential backoff with jitter for 5xx and connection faults; the server's own
wait for a 429 rate limit ("try again after N seconds" or Retry-After); never for quota,
auth, bad requests or anything after the answer has started streaming.
"""

from __future__ import annotations

import random

import httpx

from ..errors import (
    KimiConnectionError,
    KimiError,
    KimiTimeoutError,
    RateLimitError,
    StreamCutError,
    redact,
)

__all__ = ["backoff_delay", "from_transport_error", "should_retry"]


def backoff_delay(attempt: int, base: float, cap: float, retry_after: float | None,
                  rng: random.Random | None = None) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): the backoff, or the
    server's ``retry_after`` when that is longer (a ``Retry-After: 0`` storm still backs
    off), never more than ``cap``."""
    rng = rng or random
    exp = min(cap, base * (2 ** (attempt - 1)))
    wait = round(exp * (0.5 + rng.random() / 2), 3)  # "equal jitter": between half and all
    return min(max(wait, retry_after or 0.0), cap)


def should_retry(error: KimiError, attempt: int, max_retries: int, cap: float, saw_content: bool) -> bool:
    if saw_content or attempt > max_retries or not error.retryable:
        return False
    # A server that asks for a longer wait than we are willing to block the cell for: fail now
    # and say how long (the message carries it).
    return not (isinstance(error, RateLimitError) and error.retry_after is not None and error.retry_after > cap)


def from_transport_error(exc: httpx.HTTPError, url: str, settings_read_timeout: float,
                         saw_content: bool, secret: str | tuple[str, ...] | None) -> KimiError:
    """Turn an httpx transport failure into the typed error that says what to do."""
    detail = redact(str(exc) or type(exc).__name__, secret)
    host = httpx.URL(url).host
    if isinstance(exc, httpx.ConnectTimeout):
        return KimiConnectionError(f"Timed out connecting to {host}. Check KIMI_BASE_URL and your network "
                                   "(raise %config Kimi.timeout_connect if the network is slow).")
    if isinstance(exc, httpx.ConnectError):
        return KimiConnectionError(f"Could not connect to {host} ({detail}). Check KIMI_BASE_URL and "
                                   "your network or proxy.")
    if isinstance(exc, httpx.ReadTimeout):
        return KimiTimeoutError(f"The server sent nothing for {settings_read_timeout:g} s (read timeout)."
                                + (" The partial answer is kept." if saw_content else "")
                                + " Raise %config Kimi.timeout_read for very long answers.")
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError)) and saw_content:
        return StreamCutError("The stream was cut before it finished; the partial answer above is kept. "
                              "Run the cell again to get a complete answer.")
    if isinstance(exc, httpx.TimeoutException):
        return KimiTimeoutError(f"The request to {host} timed out ({type(exc).__name__}).")
    return KimiConnectionError(f"The connection to {host} failed ({detail}).")
