"""The connection pools (`kimi_jupyter.client.connection`) against real loopback servers:
httpx's own pools, rows past their connections wait instead of failing, a connection the
server closed while idle is dropped rather than reused, cells (whatever their per-call
options) reuse one connection, and a finished stream leaves no cyclic garbage behind."""

from __future__ import annotations

import asyncio
import gc
import threading

import httpcore
import httpx
import pytest

import kimi_jupyter
from kimi_jupyter.testing import Reply

pytestmark = pytest.mark.timeout(60)


def test_the_pools_are_httpx_own_and_keep_the_proxies_of_the_environment(monkeypatch):
    """No private part of httpx or httpcore is replaced: the pools are built through
    httpx's public options only, and the proxies of the environment still apply."""
    from kimi_jupyter.client import AsyncKimiClient, KimiClient
    from kimi_jupyter.settings import resolve_settings

    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9/")
    settings = resolve_settings(explicit={"api_key": "sk-test-0123456789", "provider": "moonshot"})
    async_client, sync_client = AsyncKimiClient(settings), KimiClient(settings)
    try:
        assert type(async_client._http._transport._pool) is httpcore.AsyncConnectionPool
        assert type(sync_client._http._transport._pool) is httpcore.ConnectionPool
        assert type(sync_client._http._transport._pool._network_backend).__module__.startswith("httpcore")
        assert async_client._http._mounts and sync_client._http._mounts
    finally:
        sync_client.close()
        asyncio.run(async_client.aclose())


def test_rows_past_the_pools_connections_wait_for_one_instead_of_failing(kimi_sim_env):
    """More rows in flight than the pool has connections (130 > 100), each answer slow and
    a short connect timeout (which used to be the pool's timeout too): every row waits for a
    connection and is answered; none fails with PoolTimeout."""
    from kimi_jupyter.client.connection import MAX_CONNECTIONS

    kimi_sim_env.on(r"row", Reply(text="ok then", chunk_chars=4, chunk_delay=0.4))
    rows = [f"row {i}" for i in range(130)]
    out = kimi_jupyter.map("{value}", rows, thinking=False, progress=False, concurrency=130,
                           timeout_connect=0.3, use_cache=False, max_retries=0)
    assert MAX_CONNECTIONS < 130
    assert list(out) == ["ok then"] * 130, [e for e in out.errors if e][:3]


class _ClosingServer:
    """Answers each request with keep-alive, then closes the connection 50 ms later."""

    def __init__(self) -> None:
        self.connections = 0
        self.ready = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok")
            await writer.drain()
            await asyncio.sleep(0.05)
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
            pass
        writer.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()
        server.close()

    def __enter__(self) -> _ClosingServer:
        self.thread.start()
        assert self.ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def test_a_connection_the_server_closed_while_idle_is_not_reused():
    from kimi_jupyter.client.connection import async_http
    from kimi_jupyter.settings import resolve_settings

    settings = resolve_settings(explicit={"api_key": "sk-test-0123456789", "provider": "moonshot"})
    with _ClosingServer() as server:
        async def main() -> list[str]:
            async with async_http(settings) as client:
                first = await client.get(f"http://127.0.0.1:{server.port}/a")
                await asyncio.sleep(0.3)  # the server has closed that connection by now
                second = await client.get(f"http://127.0.0.1:{server.port}/b")
                return [first.text, second.text]

        assert asyncio.run(main()) == ["ok", "ok"]
        assert server.connections == 2


def _alive(kind: type) -> int:
    return sum(1 for obj in gc.get_objects() if type(obj) is kind)


def test_a_finished_stream_leaves_no_response_for_the_garbage_collector(kimi_sim_env):
    """httpx's streamed Response and its stream point at each other; the clients unlink them
    once the response is closed, so a 10,000-row run does not pile up dead requests."""
    kimi_sim_env.on(r"q", Reply(text="fine"))

    async def many() -> None:
        await asyncio.gather(*(kimi_jupyter.aask(f"q {i}", thinking=False) for i in range(20)))

    kimi_jupyter.ask("q warm", display="none", thinking=False)
    asyncio.run(many())
    gc.collect()
    gc.disable()
    try:
        before = _alive(httpx.Response)
        for i in range(10):
            assert kimi_jupyter.ask(f"q {i}", display="none", thinking=False).text == "fine"
        asyncio.run(many())
        after = _alive(httpx.Response)
    finally:
        gc.enable()
    assert after - before <= 1, f"{after - before} streamed responses left for the garbage collector"


def test_cells_with_different_models_and_max_tokens_reuse_one_connection(kimi_sim_env):
    """After [DONE] the sync client reads the rest of the body, so the connection goes back
    to the pool: no new connection, no new TLS handshake, per cell. The pool is keyed by the
    connection only: a cell with another -m or --max-tokens uses the same one."""
    from kimi_jupyter.session import get_session

    kimi_sim_env.on(r"cell", Reply(text="an answer"))
    options = [{}, {"model": "kimi-k2-turbo-preview"}, {"max_tokens": 77}, {"system": "be brief"}]
    for i, extra in enumerate(options):
        assert kimi_jupyter.ask(f"cell {i}", display="none", thinking=False, **extra).text == "an answer"
    assert [r.json.get("max_tokens") for r in kimi_sim_env.chat_requests[-4:]] == [None, None, 77, None]
    assert kimi_sim_env.chat_requests[-3].json["model"] == "kimi-k2-turbo-preview"
    session = get_session()
    (http,) = session._clients.values()
    connections = http._transport._pool.connections
    assert len(connections) == 1 and connections[0].is_idle(), [c.info() for c in connections]
    assert "Request Count: 4" in connections[0].info()


def test_nine_distinct_connections_on_one_loop_evict_without_an_error(kimi_sim_env):
    """The ninth distinct connection on one event loop evicts the oldest async pool (its
    close is a task the session holds until done): it used to raise AttributeError."""
    kimi_sim_env.on(r"q", Reply(text="fine"))

    async def main() -> list:
        return [await kimi_jupyter.aask(f"q {i}", thinking=False, timeout_read=30.0 + i) for i in range(10)]

    answers = asyncio.run(main())
    assert [a.error for a in answers] == [None] * 10 and {a.text for a in answers} == {"fine"}


def test_the_sync_drain_gives_up_on_a_body_that_does_not_end():
    """A server that sends [DONE] and then keeps the body open: the answer is complete at once,
    the drain stops after its cap, and the connection is closed rather than reused."""
    import socket
    import time

    from kimi_jupyter.client import KimiClient
    from kimi_jupyter.settings import resolve_settings

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        chunk = b'data: {"choices":[{"delta":{"content":"hi"}}]}\n\ndata: [DONE]\n\n'
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
                     + b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        time.sleep(3)  # the terminating chunk never comes in time
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    settings = resolve_settings(explicit={"base_url": f"http://127.0.0.1:{port}/v1", "api_key": "sk-test-0123456789",
                                          "provider": "openai", "model": "m"})
    with KimiClient(settings) as client:
        started = time.monotonic()
        response = client.chat([{"role": "user", "content": "q"}])
        took = time.monotonic() - started
    listener.close()
    assert response.text == "hi" and response.error is None
    assert took < 1.5, took
