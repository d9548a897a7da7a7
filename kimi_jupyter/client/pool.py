"""The async connection pool, with a cheaper check of idle connections (a measured hot path).

Hand-written because it is faster, as measured by ``python -m bench.run --only rows``.
httpcore's pool asks every idle connection, each time a request joins or leaves the
pool, whether its socket is readable: a readable idle socket means the server closed it,
so the connection is dropped instead of reused. On asyncio that question goes through
anyio's ``extra_attributes``, which builds a dict of every socket attribute and calls
``getpeername()`` on each call. With 32 rows in flight that was about 40% of the client's
CPU time. `ReadableCheck` wraps the network backend. Each stream it makes keeps its
socket's ``poll`` object from connect time and answers ``is_readable`` with one
``poll(0)``, the same test httpcore runs. Everything else is delegated unchanged.

`OnePerConnection` fixes how httpcore 1.0's pool hands out idle connections. Handing one
to a queued request does not change the connection's state until that request's task runs,
so every request that joins in the meantime is handed the same connection. All but one
then fail with ``ConnectionNotAvailable``, queue again and trigger another full pass over
every request and connection. With 32 rows in flight that was about 4.7 extra passes per
request (upstream: encode/httpcore#1035 and #1110, still open). Here a pass hands each idle
connection to one request only and counts idle connections as idle (httpcore compares the
keep-alive limit with the number of all connections). Everything else about the pool is
httpcore's: the same queue, the same waiting, the same closing.

`CappedReads` wraps the sync backend so that a stream's reads can be given a shorter
deadline for a while (`capped_reads`). httpcore takes a body's read timeout once, when the
body starts; after ``[DONE]`` the sync client reads what is left of the body (the chunked
terminator, normally already on its way) with a 0.25 s cap, so the connection goes back
to the pool instead of being closed, and the next cell needs no new TLS handshake.

`tuned_async_client` and `tuned_sync_client` build the clients as httpx builds them (so the
proxies of ``HTTPS_PROXY`` and its kin still apply), then change their own transport's pool
in place; the async pool keeps as many idle connections as it may open. The changes are
installed only on the httpcore versions they were written against (1.0.x), and only when
the pool's private fields are where that version keeps them. Otherwise the pool is left as
httpx made it. Proxied connections (their own pools) are left as httpx made them.
"""

from __future__ import annotations

import contextlib
import select
import ssl
import typing
from collections.abc import Iterator
from typing import Any

import httpcore
import httpx

__all__ = ["ASYNC_LIMITS", "CappedReads", "OnePerConnection", "ReadableCheck", "async_transport", "capped_reads",
           "tuned_async_client", "tuned_sync_client"]

ASYNC_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=100, keepalive_expiry=5.0)


class _Stream(httpcore.AsyncNetworkStream):
    """A network stream whose ``is_readable`` costs one ``poll(0)``."""

    def __init__(self, inner: httpcore.AsyncNetworkStream):
        self._inner = inner
        self._poll: Any = None
        sock = inner.get_extra_info("socket")
        fileno = sock.fileno() if sock is not None else -1
        if fileno >= 0:
            self._poll = select.poll()
            self._poll.register(fileno, select.POLLIN)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        self._poll = None  # the descriptor may be reused once closed
        await self._inner.aclose()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            if self._poll is None:  # closed, or no socket: as httpcore, "readable" (drop it)
                return True
            return bool(self._poll.poll(0))
        return self._inner.get_extra_info(info)


class ReadableCheck(httpcore.AsyncNetworkBackend):
    """Wraps a backend so that every stream it opens is a `_Stream`."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend):
        self._inner = inner

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: typing.Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.connect_tcp(host, port, timeout=timeout, local_address=local_address,
                                                     socket_options=socket_options))

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: typing.Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.connect_unix_socket(path, timeout=timeout, socket_options=socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class OnePerConnection(httpcore.AsyncConnectionPool):
    """httpcore's pool, whose assignment pass hands an idle connection to one request only."""

    def _assign_requests_to_connections(self) -> list[Any]:
        requests = self._requests
        connections = self._connections
        # Connections already handed to a request: in use, or about to be.
        taken = {id(r.connection) for r in requests if r.connection is not None}
        closing: list[Any] = []
        kept: list[Any] = []
        for connection in connections:
            if connection.is_closed():
                continue
            if connection.has_expired():
                closing.append(connection)  # a request it was handed to queues again
                continue
            kept.append(connection)
        free = [c for c in kept if id(c) not in taken and c.is_idle()]
        surplus = len(free) - self._max_keepalive_connections
        if surplus > 0:
            closing.extend(free[:surplus])
            dropped = {id(c) for c in free[:surplus]}
            kept = [c for c in kept if id(c) not in dropped]
            free = free[surplus:]
        connections[:] = kept
        available = [c for c in kept if id(c) not in taken and c.is_available()]
        for pool_request in [r for r in requests if r.is_queued()]:
            origin = pool_request.request.url.origin
            connection = next((c for c in available if c.can_handle_request(origin)), None)
            if connection is not None:
                available.remove(connection)
                if connection in free:
                    free.remove(connection)
            elif len(connections) < self._max_connections:
                connection = self.create_connection(origin)
                connections.append(connection)
            elif free:
                idle = free.pop(0)
                if idle in available:
                    available.remove(idle)
                connections.remove(idle)
                closing.append(idle)
                connection = self.create_connection(origin)
                connections.append(connection)
            else:
                continue
            pool_request.assign_to_connection(connection)
        return closing


_POOL_FIELDS = ("_requests", "_connections", "_max_connections", "_max_keepalive_connections", "_network_backend")


def tuned_async_client(**kwargs: Any) -> httpx.AsyncClient:
    """``httpx.AsyncClient(**kwargs, limits=ASYNC_LIMITS)`` with `OnePerConnection` and
    `ReadableCheck` in its own transport's pool where they fit. The client is built as httpx
    builds it (a ``transport=`` argument would turn off the proxies of ``HTTPS_PROXY`` and
    its kin), then its pools are changed in place."""
    client = httpx.AsyncClient(limits=ASYNC_LIMITS, **kwargs)
    _tune_async_pool(getattr(client, "_transport", None))
    return client


def async_transport() -> httpx.AsyncHTTPTransport:
    """A bare async transport with `ASYNC_LIMITS` and the same changes (for tests and tools
    that pass a transport themselves)."""
    transport = httpx.AsyncHTTPTransport(limits=ASYNC_LIMITS)
    _tune_async_pool(transport)
    return transport


def _tune_async_pool(transport: Any) -> None:
    pool = getattr(transport, "_pool", None)
    if (type(pool) is httpcore.AsyncConnectionPool and httpcore.__version__.startswith("1.0.")
            and all(hasattr(pool, name) for name in _POOL_FIELDS)):
        pool.__class__ = OnePerConnection
        if isinstance(pool._network_backend, httpcore.AsyncNetworkBackend) and hasattr(select, "poll"):
            pool._network_backend = ReadableCheck(pool._network_backend)

class _CappedStream(httpcore.NetworkStream):
    """A sync network stream whose reads can be capped to a shorter timeout (``cap``)."""

    def __init__(self, inner: httpcore.NetworkStream):
        self._inner = inner
        self.cap: float | None = None

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        cap = self.cap
        if cap is not None:
            timeout = cap if timeout is None else min(timeout, cap)
        return self._inner.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _CappedStream(self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class CappedReads(httpcore.NetworkBackend):
    """Wraps a sync backend so that every stream it opens is a `_CappedStream`."""

    def __init__(self, inner: httpcore.NetworkBackend):
        self._inner = inner

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: typing.Iterable[Any] | None = None) -> httpcore.NetworkStream:
        return _CappedStream(self._inner.connect_tcp(host, port, timeout=timeout, local_address=local_address,
                                                     socket_options=socket_options))

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: typing.Iterable[Any] | None = None) -> httpcore.NetworkStream:
        return _CappedStream(self._inner.connect_unix_socket(path, timeout=timeout, socket_options=socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


@contextlib.contextmanager
def capped_reads(resp: httpx.Response, seconds: float) -> Iterator[bool]:
    """``with capped_reads(resp, 0.25) as capped:`` caps every read of ``resp``'s connection to
    0.25 s inside the block; ``capped`` is False when the connection cannot be capped (then
    nothing should be read that could wait)."""
    stream = resp.extensions.get("network_stream")
    if not isinstance(stream, _CappedStream):
        yield False
        return
    stream.cap = seconds
    try:
        yield True
    finally:
        stream.cap = None


def tuned_sync_client(**kwargs: Any) -> httpx.Client:
    """``httpx.Client(**kwargs)`` with `CappedReads` in its own transport's pool where it fits
    (built as httpx builds it, so proxies from the environment still apply)."""
    client = httpx.Client(**kwargs)
    pool = getattr(getattr(client, "_transport", None), "_pool", None)
    if (type(pool) is httpcore.ConnectionPool and httpcore.__version__.startswith("1.0.")
            and isinstance(getattr(pool, "_network_backend", None), httpcore.NetworkBackend)):
        pool._network_backend = CappedReads(pool._network_backend)
    return client
