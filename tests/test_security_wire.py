"""The wire under attack: a hostile server on 127.0.0.1 (a real socket server, a real httpx
client, no mocks) sends gzip bombs, a line that never ends, keep-alive comments forever, an
HTML page and redirects. Every read must stay bounded in memory and time, end with a clear
message, keep the partial answer, and never send the key anywhere else.

Memory is measured in a child process (``ru_maxrss`` after the imports vs. after the
request), so the test process's own history does not hide growth. The stated cap:
a 1 MB -> 1 GiB gzip bomb raises the peak RSS by less than `RSS_CAP_MB` (it raised it by
about 2 GB before the bounded reader).
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache

import pytest

from kimi_jupyter.client import AsyncKimiClient, KimiClient
from kimi_jupyter.events import Done, Failed, TextDelta
from kimi_jupyter.settings import resolve_settings

KEY = "sk-wire-0123456789abcdefghijklmnopqrstuv"
RSS_CAP_MB = 120
GIB = 1024 * 1024 * 1024

pytestmark = pytest.mark.timeout(120)


def chunk(text: str) -> bytes:
    body = {"id": "c", "object": "chat.completion.chunk", "model": "kimi-k2.5",
            "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
    return f"data: {json.dumps(body)}\n\n".encode()


@cache
def gzip_bomb(unit: bytes, total: int = GIB) -> bytes:
    """``unit`` repeated to ``total`` bytes, gzip-compressed (about 1 MB for 1 GiB)."""
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = unit * (1024 * 1024 // len(unit))
    out = [z.compress(block) for _ in range(total // len(block))]
    out.append(z.flush())
    return b"".join(out)


Handler = Callable[[socket.socket, bytes], None]


class HostileServer:
    """One listening socket on 127.0.0.1; each connection's request is read (head and
    body), recorded, and answered by ``handler`` writing raw bytes."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[bytes] = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        conn.settimeout(30)
        try:
            data = b""
            while b"\r\n\r\n" not in data:
                piece = conn.recv(65536)
                if not piece:
                    return
                data += piece
            head, _, body = data.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            while len(body) < length:
                body += conn.recv(65536)
            self.requests.append(head + b"\r\n\r\n" + body)
            self.handler(conn, head)
        except OSError:
            pass  # the client hung up: that is what a bounded client does
        finally:
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.sock.close()
        self.thread.join(5)


@contextmanager
def hostile(handler: Handler) -> Iterator[HostileServer]:
    server = HostileServer(handler)
    try:
        yield server
    finally:
        server.close()


def respond(conn: socket.socket, status: str, headers: dict[str, str], body: bytes | None = None) -> None:
    lines = [f"HTTP/1.1 {status}"] + [f"{k}: {v}" for k, v in headers.items()]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b""))


SSE = {"Content-Type": "text/event-stream"}


def settings(url: str, **kw):
    base = {"api_key": KEY, "base_url": url, "provider": "moonshot", "model": "kimi-k2.5", "max_retries": 0}
    base.update(kw)
    return resolve_settings(explicit=base, environ={})


def run(url: str, **kw) -> tuple[list, object]:
    with KimiClient(settings(url, **kw)) as client:
        stream = client.stream_chat([{"role": "user", "content": "hi"}])
        events = list(stream)
    return events, stream.response


def failed(events: list) -> Failed:
    assert isinstance(events[-1], Failed), events[-3:]
    return events[-1]


# --- memory: gzip bombs, measured in a child process -----------------------------------------

CHILD = r"""
import asyncio, json, resource, sys
from kimi_jupyter.client import AsyncKimiClient, KimiClient
from kimi_jupyter.events import Failed
from kimi_jupyter.settings import resolve_settings

url, stream, use_async = sys.argv[1], sys.argv[2] == "1", sys.argv[3] == "1"
s = resolve_settings(explicit={"api_key": "sk-child-0123456789abcdefghij", "base_url": url, "max_retries": 0,
                               "provider": "moonshot", "model": "kimi-k2.5"}, environ={})
messages = [{"role": "user", "content": "hi"}]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if use_async:
    async def go():
        async with AsyncKimiClient(s) as c:
            return [e async for e in c.stream_chat(messages, stream=stream)]
    events = asyncio.run(go())
else:
    with KimiClient(s) as c:
        events = list(c.stream_chat(messages, stream=stream))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
last = events[-1]
print(json.dumps({"grew_mb": (after - before) / 1024, "kind": type(last).__name__,
                  "error": getattr(last, "error", "")}))
"""


def child_run(url: str, stream: bool, use_async: bool = False) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, url, "1" if stream else "0", "1" if use_async else "0"],
                         capture_output=True, text=True, timeout=100)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def bomb_handler(status: str, unit: bytes, content_type: str) -> Handler:
    body = gzip_bomb(unit)

    def handler(conn: socket.socket, head: bytes) -> None:
        respond(conn, status, {"Content-Type": content_type, "Content-Encoding": "gzip"}, body)

    return handler


@pytest.mark.parametrize(("status", "unit", "content_type", "stream", "use_async", "expect"), [
    ("200 OK", b": keep-alive\n", "text/event-stream", True, False, "passed 64 MiB"),
    ("200 OK", b"a", "text/event-stream", True, False, "one line of more than 16 MiB"),
    ("200 OK", b" ", "application/json", False, False, "passed 64 MiB"),
    ("401 Unauthorized", b" ", "application/json", True, False, "The API key was rejected (401)"),
    ("200 OK", b": keep-alive\n", "text/event-stream", True, True, "passed 64 MiB"),
    ("200 OK", b" ", "application/json", False, True, "passed 64 MiB"),
], ids=["stream-lines", "stream-one-line", "non-streamed", "error-body", "async-stream", "async-non-streamed"])
def test_a_gzip_bomb_stays_under_the_memory_cap(status, unit, content_type, stream, use_async, expect):
    assert len(gzip_bomb(unit)) < 2 * 1024 * 1024  # about 1 MB on the wire, 1 GiB inflated
    with hostile(bomb_handler(status, unit, content_type)) as server:
        result = child_run(server.url, stream, use_async)
    assert result["kind"] == "Failed" and expect in result["error"], result
    assert result["grew_mb"] < RSS_CAP_MB, result


# --- one line that never ends ------------------------------------------------------------------

def endless_line(conn: socket.socket, head: bytes) -> None:
    respond(conn, "200 OK", SSE)
    conn.sendall(chunk("kept ") + chunk("answer"))
    conn.sendall(b"data: " + b"x" * 1000)
    block = b"y" * 65536
    for _ in range(32 * 16):  # up to 32 MiB, then give up; a bounded client hangs up long before
        conn.sendall(block)


def test_a_data_line_that_never_ends_is_cut_with_the_partial_answer_kept():
    with hostile(endless_line) as server:
        events, response = run(server.url, max_line_bytes=1024 * 1024)
    error = failed(events)
    assert "one line of more than 1 MiB" in error.error and error.partial
    assert response.text == "kept answer"


def test_a_long_line_is_split_in_linear_time():
    from kimi_jupyter.client.sse import LineSplitter

    line = "z" * (8 * 1024 * 1024)
    splitter = LineSplitter()
    pieces = [line[i:i + 4096] for i in range(0, len(line), 4096)]
    out = []
    for piece in pieces:  # 2,048 pieces: joining them each time would copy 8 GiB in all
        out += splitter.feed(piece)
    out += splitter.feed("\nnext\n")
    assert out == [line, "next"] and splitter.close() == []


# --- keep-alive comments forever -----------------------------------------------------------------

def comments_forever(conn: socket.socket, head: bytes) -> None:
    respond(conn, "200 OK", SSE)
    conn.sendall(chunk("early "))
    for _ in range(200):  # 40 s at most; the client gives up after timeout_read
        conn.sendall(b": PROCESSING\n\n")
        time.sleep(0.2)


def test_keep_alive_comments_do_not_reset_the_read_deadline():
    with hostile(comments_forever) as server:
        started = time.monotonic()
        events, response = run(server.url, timeout_read=1.0)
        took = time.monotonic() - started
    error = failed(events)
    assert "sent no part of the answer for 1 s" in error.error and error.partial
    assert response.text == "early " and took < 6


def test_keep_alive_comments_time_out_in_the_async_client_too():
    async def go(url: str) -> list:
        async with AsyncKimiClient(settings(url, timeout_read=1.0)) as client:
            return [e async for e in client.stream_chat([{"role": "user", "content": "hi"}])]

    with hostile(comments_forever) as server:
        events = asyncio.run(go(server.url))
    assert "sent no part of the answer for 1 s" in failed(events).error


def test_a_slow_but_steady_stream_is_not_cut():
    def slow(conn: socket.socket, head: bytes) -> None:
        respond(conn, "200 OK", SSE)
        for word in ("a ", "b ", "c ", "d ", "e"):
            conn.sendall(b": PROCESSING\n\n" + chunk(word))
            time.sleep(0.3)
        conn.sendall(b"data: [DONE]\n\n")

    with hostile(slow) as server:
        events, response = run(server.url, timeout_read=1.0)
    assert isinstance(events[-1], Done) and response.text == "a b c d e"


# --- HTML pages and redirects --------------------------------------------------------------------

PAGE = b"<!DOCTYPE html><html><body><h1>Welcome to our portal</h1></body></html>"


@pytest.mark.parametrize(("content_type", "stream"), [
    ("text/html; charset=utf-8", True), ("text/html", False),
    ("text/event-stream", True),  # a page served with the wrong type: sniffed
    ("application/json", False),
])
def test_an_html_page_says_check_the_base_url_and_is_not_retried(content_type, stream):
    def page(conn: socket.socket, head: bytes) -> None:
        respond(conn, "200 OK", {"Content-Type": content_type}, PAGE)

    with hostile(page) as server:
        with KimiClient(settings(server.url, max_retries=3, stream=stream)) as client:
            events = list(client.stream_chat([{"role": "user", "content": "hi"}]))
        assert len(server.requests) == 1
    error = failed(events)
    assert "answered with an HTML page, not the API: check KIMI_BASE_URL" in error.error
    assert not any(isinstance(e, TextDelta) for e in events)


@pytest.mark.parametrize("status", ["302 Found", "307 Temporary Redirect", "301 Moved Permanently"])
def test_a_redirect_is_reported_and_never_followed_with_the_key(status):
    with hostile(lambda conn, head: respond(conn, "200 OK", SSE, chunk("leak") + b"data: [DONE]\n\n")) as other:
        target = f"http://localhost:{other.port}/v1/chat/completions"

        def redirect(conn: socket.socket, head: bytes) -> None:
            respond(conn, status, {"Location": target}, b"")

        with hostile(redirect) as server:
            events, _ = run(server.url, max_retries=3)
            assert len(server.requests) == 1  # not retried
        assert other.requests == []  # never followed: the key went nowhere else
    error = failed(events)
    assert "redirected the request to localhost" in error.error and "never sent on" in error.error
    assert KEY not in error.error


def test_models_list_is_bounded_and_refuses_redirects_too():
    def redirect(conn: socket.socket, head: bytes) -> None:
        respond(conn, "302 Found", {"Location": "http://localhost:1/v1/models"}, b"")

    from kimi_jupyter.errors import RedirectError

    with hostile(redirect) as server, KimiClient(settings(server.url)) as client, \
            pytest.raises(RedirectError, match="redirected"):
        client.list_models()


# --- error bodies ----------------------------------------------------------------------------------

def test_an_error_body_is_redacted_before_it_is_cut():
    # The key sits across the 300-character cut that used to come first.
    message = "x" * 290 + " " + KEY + " " + "y" * 5000

    def reject(conn: socket.socket, head: bytes) -> None:
        respond(conn, "400 Bad Request", {"Content-Type": "application/json"},
                json.dumps({"error": {"type": "invalid_request_error", "message": message}}).encode())

    with hostile(reject) as server:
        events, _ = run(server.url)
    error = failed(events).error
    assert KEY[:8] not in error and KEY[-8:] not in error and "***" in error
    assert len(error) < 600


def test_a_huge_plain_error_body_is_read_only_in_part():
    def reject(conn: socket.socket, head: bytes) -> None:
        respond(conn, "500 Internal Server Error", {"Content-Type": "text/plain"}, b"E" * (20 * 1024 * 1024))

    with hostile(reject) as server:
        events, _ = run(server.url)
    error = failed(events).error
    assert error.startswith("The server had an error (500)") and len(error) < 600


# --- ordinary compressed replies still work ------------------------------------------------------

@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw-deflate"])
def test_a_normal_compressed_answer_is_read_whole(encoding):
    words = [f"w{i} " for i in range(3000)]
    body = b"".join(chunk(w) for w in words) + b"data: [DONE]\n\n"
    wbits = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS, "raw-deflate": -zlib.MAX_WBITS}[encoding]
    z = zlib.compressobj(6, zlib.DEFLATED, wbits)
    packed = z.compress(body) + z.flush()
    name = "gzip" if encoding == "gzip" else "deflate"

    def answer(conn: socket.socket, head: bytes) -> None:
        assert b"accept-encoding: gzip, deflate" in head.lower()
        respond(conn, "200 OK", {**SSE, "Content-Encoding": name}, packed)

    with hostile(answer) as server:
        events, response = run(server.url)
    assert isinstance(events[-1], Done) and response.text == "".join(words)


def test_a_damaged_compressed_body_is_a_clear_error():
    def answer(conn: socket.socket, head: bytes) -> None:
        respond(conn, "200 OK", {**SSE, "Content-Encoding": "gzip"}, b"\x1f\x8b\x08\x00garbage-not-gzip" * 10)

    with hostile(answer) as server:
        events, _ = run(server.url)
    assert "compressed reply is damaged" in failed(events).error
