"""The one wire against hostile servers on 127.0.0.1 (real sockets, real httpx, no mocks):
deadlines that count content and the response head, Retry-After storms and huge waits,
ids escaped into paths, HTML and redirects on every resource, typed failure causes, and the
sync and async clients kept equal."""

from __future__ import annotations

import asyncio
import inspect
import json
import socket
import time

import pytest

import kimi_jupyter
from kimi_jupyter.client import AsyncFilesClient, AsyncKimiClient, FilesClient, KimiClient
from kimi_jupyter.errors import KimiError, KimiTimeoutError, MalformedResponseError, RedirectError
from kimi_jupyter.events import Failed, Retrying
from kimi_jupyter.rows.live import ROW_ATTEMPTS

from .test_security_wire import KEY, chunk, hostile, respond, settings

pytestmark = pytest.mark.timeout(120)

MESSAGES = [{"role": "user", "content": "hi"}]


def stream_events(url: str, use_async: bool, **kw) -> list:
    if not use_async:
        with KimiClient(settings(url, **kw)) as client:
            return list(client.stream_chat(MESSAGES))

    async def go() -> list:
        async with AsyncKimiClient(settings(url, **kw)) as client:
            return [e async for e in client.stream_chat(MESSAGES)]

    return asyncio.run(go())


# --- deadlines ------------------------------------------------------------------------------

def empty_data_forever(conn: socket.socket, head: bytes) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n" + chunk("first "))
    for _ in range(200):  # 60 s of empty data: lines and comments
        conn.sendall(b"data:\n\ndata: \n\n: ping\n\n")
        time.sleep(0.3)


@pytest.mark.parametrize("use_async", [False, True])
def test_empty_data_lines_do_not_reset_the_idle_deadline(use_async):
    with hostile(empty_data_forever) as server:
        started = time.monotonic()
        events = stream_events(server.url, use_async, timeout_read=1.5)
        took = time.monotonic() - started
    last = events[-1]
    assert isinstance(last, Failed) and "no part of the answer for 1.5 s" in last.error, last
    assert last.partial and "".join(getattr(e, "text", "") for e in events if type(e).__name__ == "TextDelta") == "first "
    assert not [e for e in events if type(e).__name__ == "Notice" and "malformed" in e.text]
    assert took < 8, took


def trickled_head(conn: socket.socket, head: bytes) -> None:
    for byte in b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nX-Padding: " + b"a" * 200:
        conn.sendall(bytes([byte]))
        time.sleep(0.2)


@pytest.mark.parametrize("use_async", [False, True])
def test_headers_trickled_byte_by_byte_time_out(use_async):
    with hostile(trickled_head) as server:
        started = time.monotonic()
        events = stream_events(server.url, use_async, timeout_read=1.0, timeout_connect=0.5)
        took = time.monotonic() - started
    last = events[-1]
    assert isinstance(last, Failed) and last.kind == "KimiTimeoutError", last
    assert "response headers within 1.5 s" in last.error
    assert took < 6, took


def test_a_trickled_head_times_out_on_the_other_resources_too():
    with hostile(trickled_head) as server:
        started = time.monotonic()
        with KimiClient(settings(server.url, timeout_read=1.0, timeout_connect=0.5)) as client, \
                pytest.raises(KimiTimeoutError, match="response headers"):
            client.list_models()
        assert time.monotonic() - started < 6


# --- retries and Retry-After ----------------------------------------------------------------

def rate_limited(wait: str):
    def handler(conn: socket.socket, head: bytes) -> None:
        body = json.dumps({"error": {"type": "rate_limit_reached_error", "message": "slow down"}}).encode()
        respond(conn, "429 Too Many Requests", {"Content-Type": "application/json", "Retry-After": wait}, body)

    return handler


def test_a_retry_after_zero_storm_costs_a_row_a_bounded_number_of_requests():
    with hostile(rate_limited("0")) as server:
        out = kimi_jupyter.map("{value}", ["a", "b", "c"], progress=False, concurrency=3, use_cache=False,
                               base_url=server.url, api_key=KEY, provider="moonshot", model="kimi-k2.5",
                               thinking=False, max_retries=3, retry_backoff=0.01)
        requests = len(server.requests)
    assert all(e for e in out.errors), out.errors
    assert requests <= 3 * ROW_ATTEMPTS, requests  # was 24 a row


def test_a_server_asking_for_a_huge_wait_stops_the_run_with_a_message():
    with hostile(rate_limited("1000000000")) as server:
        out = kimi_jupyter.map("{value}", [f"row {i}" for i in range(20)], progress=False, concurrency=2,
                               use_cache=False, base_url=server.url, api_key=KEY, provider="moonshot",
                               model="kimi-k2.5", thinking=False, max_retries=5)
        requests = len(server.requests)
    assert requests <= 2, requests  # no row retried, no more rows sent
    assert "asks to wait 1e+09 s" in (out.summary.stopped or ""), out.summary.stopped
    assert all(e and e.startswith("not run") for e in out.errors)


def test_a_failure_carries_a_structured_cause():
    with hostile(rate_limited("0.05")) as server:
        events = stream_events(server.url, False, max_retries=1)
    retrying = [e for e in events if isinstance(e, Retrying)]
    assert retrying and retrying[0].cause is not None and retrying[0].cause.throttle
    last = events[-1]
    assert isinstance(last, Failed) and last.cause is not None
    assert (last.cause.kind, last.cause.status, last.cause.retry_after, last.cause.billed, last.cause.throttle) == \
        ("RateLimitError", 429, 0.05, False, True)


# --- every resource: ids escaped, HTML, redirects --------------------------------------------

def batch_object(conn: socket.socket, head: bytes) -> None:
    respond(conn, "200 OK", {"Content-Type": "application/json"}, json.dumps({"id": "b1", "status": "done"}).encode())


def test_batch_ids_from_a_state_file_are_escaped_into_the_path():
    from kimi_jupyter.rows.batch_api import BatchApi

    with hostile(batch_object) as server:
        with BatchApi(settings(server.url)) as api:
            api.retrieve("../files/f1/content?x=1#y")
            api.cancel("a/b")
        lines = [r.split(b"\r\n", 1)[0] for r in server.requests]
    assert lines == [b"GET /v1/batches/..%2Ffiles%2Ff1%2Fcontent%3Fx%3D1%23y HTTP/1.1",
                     b"POST /v1/batches/a%2Fb/cancel HTTP/1.1"]


def html_page(conn: socket.socket, head: bytes) -> None:
    respond(conn, "200 OK", {"Content-Type": "text/html"}, b"<html><body>login</body></html>")


def redirect(conn: socket.socket, head: bytes) -> None:
    respond(conn, "302 Found", {"Location": "http://127.0.0.1:9/steal"}, b"")


@pytest.mark.parametrize(("handler", "error", "match"), [(html_page, MalformedResponseError, "HTML page"),
                                                         (redirect, RedirectError, "redirected")])
def test_files_and_batches_refuse_html_pages_and_redirects(handler, error, match):
    from kimi_jupyter.rows.batch_api import BatchApi

    with hostile(handler) as server:
        with FilesClient(settings(server.url)) as files, pytest.raises(error, match=match):
            files.list()
        with BatchApi(settings(server.url)) as api, pytest.raises(error, match=match):
            api.retrieve("b1")

        async def async_files() -> None:
            async with AsyncFilesClient(settings(server.url)) as files:
                await files.retrieve("f1")

        with pytest.raises(error, match=match):
            asyncio.run(async_files())
        assert len(server.requests) == 3  # never retried, never followed


def test_files_calls_are_retried_like_chat_requests():
    calls = []

    def flaky(conn: socket.socket, head: bytes) -> None:
        calls.append(head)
        if len(calls) == 1:
            respond(conn, "503 Service Unavailable", {"Content-Type": "application/json", "Retry-After": "0"},
                    b'{"error": {"message": "busy"}}')
        else:
            respond(conn, "200 OK", {"Content-Type": "application/json"}, b'{"data": []}')

    with hostile(flaky) as server, FilesClient(settings(server.url, max_retries=2, retry_backoff=0.01)) as files:
        assert files.list() == []
    assert len(calls) == 2


# --- sync and async twins ---------------------------------------------------------------------

def _public(cls: type) -> dict[str, bool]:
    """Public methods (and whether each is a coroutine function), the close pair aside."""
    out = {}
    for name, member in inspect.getmembers(cls, callable):
        if name.startswith("_") or name in ("close", "aclose"):
            continue
        out[name] = inspect.iscoroutinefunction(member) or inspect.isasyncgenfunction(member)
    return out


@pytest.mark.parametrize(("sync", "twin"), [(KimiClient, AsyncKimiClient), (FilesClient, AsyncFilesClient)])
def test_the_sync_and_async_clients_have_the_same_public_methods(sync, twin):
    ours, theirs = _public(sync), _public(twin)
    assert set(ours) == set(theirs), set(ours) ^ set(theirs)
    for name in ours:
        if name == "stream_chat":  # returns an AsyncEventStream
            continue
        assert theirs[name], f"AsyncX.{name} is not a coroutine function"
        assert not ours[name], f"X.{name} is a coroutine function"
        assert list(inspect.signature(getattr(sync, name)).parameters) == \
            list(inspect.signature(getattr(twin, name)).parameters), name


def test_errors_are_kimi_errors_with_the_key_redacted():
    def echo_key(conn: socket.socket, head: bytes) -> None:
        respond(conn, "401 Unauthorized", {"Content-Type": "application/json"},
                json.dumps({"error": {"message": f"bad key {KEY}"}}).encode())

    with hostile(echo_key) as server, FilesClient(settings(server.url)) as files, \
            pytest.raises(KimiError) as caught:
        files.list()
    assert KEY not in str(caught.value)


def test_the_async_driver_makes_no_blocking_call_for_the_guard(kimi_sim, monkeypatch):
    """The guard's balance (a budget 80% spent) is fetched by the async driver with the async
    client: the sync client, whose call would block the event loop, is never asked."""
    from kimi_jupyter.session import Session
    from kimi_jupyter.settings import resolve_settings
    from kimi_jupyter.testing import Reply
    from kimi_jupyter.turn import NullRenderer, TurnRequest, arun_turn

    session = Session()
    kimi_sim.queue(Reply(text="first", usage={"prompt_tokens": 1_000_000, "completion_tokens": 0}),
                   Reply(text="second"))
    settings = resolve_settings(explicit={"base_url": kimi_sim.base_url, "api_key": "sk-test-simulator",
                                          "provider": "moonshot-intl", "model": "kimi-k3", "budget": 3.5},
                                environ={})

    def blocking(*args, **kwargs):
        raise AssertionError("a sync client was asked for on the event loop")

    async def two() -> object:
        await arun_turn(session, TurnRequest("one", settings), NullRenderer())
        monkeypatch.setattr(Session, "client", blocking)
        return await arun_turn(session, TurnRequest("two", settings), NullRenderer())

    response = asyncio.run(two())
    assert response.error is None, response.error
    (notice,) = [n for n in response.notices if "of the session budget" in n]
    assert "Balance: available $" in notice
