"""What a pool of connections is keyed by, how it is built, and the two waits httpx has no
setting for.

`Connection` holds the options that decide where requests go and how the wire behaves
(key, base URL, provider, endpoint, timeouts, retries, read bounds). It is the only key of
the session's HTTP pools: options of one request (model, max tokens, system prompt,
thinking, effort...) never open a new pool, a new connection or a new TLS handshake.

The pools are httpx's own, configured only through its public API (``httpx.Limits``,
``httpx.Timeout``): at most `MAX_CONNECTIONS` connections per pool, as many kept alive, and
no pool timeout, so a request that finds every connection busy waits for one (the rows
engine's ``concurrency`` and the read deadlines bound that wait) instead of failing with
``PoolTimeout``.

Two deadlines are kept here because httpx's timeouts are per read:

* `send_sync` / `send_async`: the response head must be complete within
  ``timeout_connect + timeout_read`` of the request being sent (a server that trickles its
  headers one byte at a time would otherwise never time out). The async twin cancels its
  own task at the deadline; the sync one sends on a worker thread and waits for it with the
  deadline (an abandoned request is closed by its worker when it ends).
* `drain_sync`: after ``[DONE]`` the rest of a streamed body (the chunked terminator,
  normally already read) is read on a short-lived thread, waited for at most `DRAIN_WAIT`,
  so the connection goes back to the pool and the next cell needs no new connection; a
  server that keeps the body open costs the cell nothing (the thread ends at the read
  deadline and closes the connection).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any

import httpx

from ..errors import KimiTimeoutError

__all__ = ["DRAIN_WAIT", "MAX_CONNECTIONS", "Connection", "async_http", "drain_sync", "send_async", "send_sync",
           "sync_http"]

MAX_CONNECTIONS = 100
DRAIN_WAIT = 0.25  # seconds a cell waits for the rest of a finished stream's body
DRAIN_BYTES = 64 * 1024


@dataclass(frozen=True)
class Connection:
    """The pool key: everything about a request that is not about this one request."""

    api_key: Any
    base_url: str
    provider: str
    endpoint: str | None
    timeout_connect: float
    timeout_read: float
    max_retries: int
    retry_backoff: float
    retry_max_wait: float
    max_line_bytes: int
    max_response_bytes: int

    @classmethod
    def of(cls, settings: Any) -> Connection:
        return cls(**{f.name: getattr(settings, f.name) for f in fields(cls)})

    def __repr__(self) -> str:  # never shows the key
        return f"Connection(base_url={self.base_url!r}, provider={self.provider!r})"


def _options(settings: Any) -> dict[str, Any]:
    return {
        "timeout": httpx.Timeout(connect=settings.timeout_connect, read=settings.timeout_read,
                                 write=settings.timeout_read, pool=None),
        "limits": httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS,
                               keepalive_expiry=5.0),
        "follow_redirects": False,
    }


def sync_http(settings: Any) -> httpx.Client:
    """The sync pool for ``settings``' connection (proxies from the environment apply)."""
    return httpx.Client(**_options(settings))


def async_http(settings: Any) -> httpx.AsyncClient:
    """The async twin of `sync_http`."""
    return httpx.AsyncClient(**_options(settings))


def head_deadline(settings: Any) -> float:
    return float(settings.timeout_connect) + float(settings.timeout_read)


def _head_timeout(seconds: float, host: str) -> KimiTimeoutError:
    return KimiTimeoutError(f"{host} did not finish sending the response headers within {seconds:g} s. "
                            "Raise %config Kimi.timeout_read if the server is this slow to start.")


class _Pending:
    """A request sent on a worker thread: its response or error, unless abandoned."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.abandoned = False
        self.response: httpx.Response | None = None
        self.error: BaseException | None = None

    def run(self, http: httpx.Client, request: httpx.Request) -> None:
        response = error = None
        try:
            response = http.send(request, stream=True, follow_redirects=False)
        except BaseException as exc:  # handed to the waiting thread
            error = exc
        with self.lock:
            if self.abandoned:
                if response is not None:
                    response.close()
                return
            self.response, self.error = response, error
            self.done.set()

    def abandon(self) -> None:
        with self.lock:
            self.abandoned = True
            if self.response is not None:
                self.response.close()


def send_sync(http: httpx.Client, request: httpx.Request, seconds: float, host: str) -> httpx.Response:
    """``http.send(request, stream=True)`` whose response head must arrive within ``seconds``."""
    pending = _Pending()
    threading.Thread(target=pending.run, args=(http, request), daemon=True, name="kimi-send").start()
    try:
        arrived = pending.done.wait(seconds)
    except BaseException:  # KeyboardInterrupt while waiting: the worker closes what arrives
        pending.abandon()
        raise
    if not arrived:
        with pending.lock:
            if not pending.done.is_set():
                pending.abandoned = True
                raise _head_timeout(seconds, host)
    if pending.error is not None:
        raise pending.error
    assert pending.response is not None
    return pending.response


async def send_async(http: httpx.AsyncClient, request: httpx.Request, seconds: float, host: str) -> httpx.Response:
    """The async twin of `send_sync`. The deadline cancels the calling task itself (as
    ``asyncio.timeout`` does) rather than running the send in a task of its own: an extra task
    per request lets httpcore hand one idle connection to several requests at once."""
    task = asyncio.current_task()
    assert task is not None
    fired: list[bool] = []

    def expire() -> None:
        fired.append(True)
        task.cancel()

    handle = asyncio.get_running_loop().call_later(seconds, expire)
    try:
        return await http.send(request, stream=True, follow_redirects=False)
    except asyncio.CancelledError:
        uncancel = getattr(task, "uncancel", None)  # Python 3.11+: was ours the only cancel?
        if fired and (uncancel is None or uncancel() == 0):
            raise _head_timeout(seconds, host) from None
        raise
    finally:
        handle.cancel()


def _read_rest(response: httpx.Response, chunks: Iterator[bytes]) -> None:
    read = 0
    try:
        for raw in chunks:
            read += len(raw)
            if read > DRAIN_BYTES:
                break
    except Exception:  # a failed drain only costs the connection
        pass
    finally:
        response.close()


def drain_sync(response: httpx.Response, chunks: Iterator[bytes]) -> None:
    """Read the rest of a finished stream's body, then close it (see the module's docstring);
    the caller hands ``response`` over and must not close it."""
    worker = threading.Thread(target=_read_rest, args=(response, chunks), daemon=True, name="kimi-drain")
    worker.start()
    worker.join(DRAIN_WAIT)
