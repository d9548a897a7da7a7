"""HTTP plumbing: a loopback HTTP/1.1 server in a background thread.

This module knows bytes, sockets and threads, and nothing about chat. The request handler
(``app.py``) turns an :class:`HttpRequest` into an :class:`HttpResponse`; this module
writes it: JSON bodies with ``Content-Length``, streams as SSE over chunked transfer
encoding (batched into large writes when there is no delay between events, one write per
event otherwise), and the transport faults that damage a reply on its way out (a cut
connection, a malformed line, a stall).

Each connection gets a daemon thread. :meth:`LoopbackServer.stop` sets the stop event
(which wakes any stall or chunk delay), stops accepting, shuts down every open
connection's socket and joins the threads, all with bounded waits.
"""

from __future__ import annotations

import json
import socket
import socketserver
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from .faults import CUT, MALFORMED, STALL, Fault
from .state import Headers

_BATCH_BYTES = 64 * 1024
_READ_BLOCK = 1024 * 1024
MALFORMED_LINE = "data: {not json\n\n"


@dataclass(frozen=True)
class HttpRequest:
    """A request as received. ``body`` is empty and ``body_size`` set when it was too large."""

    method: str
    path: str
    headers: Headers
    body: bytes
    body_size: int
    too_large: bool = False


@dataclass
class HttpResponse:
    """What to send: a JSON ``body``, or SSE ``events`` (complete frames) for a stream."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    events: Iterable[str] | None = None
    delay: float = 0.0
    fault: Fault | None = None


Handler = Callable[[HttpRequest], HttpResponse]


SIMULATOR_HEADER = "X-Kimi-Simulator"


class _Aborted(Exception):
    """The simulator is stopping; drop this connection."""


class _Server(HTTPServer):
    request_queue_size = 256
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: Handler, max_body: int, stopping: threading.Event):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.app = handler
        self.max_body = max_body
        self.stopping = stopping
        self.connections: dict[threading.Thread, socket.socket] = {}
        self.connections_lock = threading.Lock()
        super().__init__(address, _RequestHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, which can stall on DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name="kimi-sim-connection",
            daemon=True,
        )
        with self.connections_lock:
            self.connections[thread] = request
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except OSError:
            pass  # the client went away or stop() shut the socket: nothing to report
        except Exception:
            if not self.stopping.is_set():
                traceback.print_exc(file=sys.stderr)
        finally:
            self.shutdown_request(request)
            with self.connections_lock:
                self.connections.pop(threading.current_thread(), None)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not self.stopping.is_set():
            traceback.print_exc(file=sys.stderr)

    def close_connections(self, deadline: float) -> None:
        with self.connections_lock:
            open_connections = list(self.connections.items())
        for _thread, sock in open_connections:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread, _sock in open_connections:
            thread.join(max(0.0, deadline - time.monotonic()))


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60.0  # idle keep-alive connections close after this
    disable_nagle_algorithm = True  # headers and body go out at once, no 40 ms delayed-ACK stalls
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    # -- reading -----------------------------------------------------------------------
    def _read_body(self) -> tuple[bytes, int, bool]:
        limit = self.server.max_body
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked(limit)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True  # the body cannot be delimited: read none, then hang up
            length = 0
        if length > limit:
            self._discard(length)
            return b"", length, True
        body = self.rfile.read(length)
        if len(body) < length:
            raise _Aborted  # the client went away mid-body: no request was made
        return body, length, False

    def _discard(self, length: int) -> None:
        while length > 0:
            block = self.rfile.read(min(length, _READ_BLOCK))
            if not block:
                break
            length -= len(block)

    def _read_chunked(self, limit: int) -> tuple[bytes, int, bool]:
        parts: list[bytes] = []
        total = 0
        while True:
            size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                break
            if total + size > limit:
                self._discard(size + 2)
                total += size
                parts.clear()
                continue
            parts.append(self.rfile.read(size))
            self.rfile.readline()
            total += size
        return b"".join(parts), total, total > limit

    # -- dispatch ----------------------------------------------------------------------
    def _dispatch(self) -> None:
        try:
            body, size, too_large = self._read_body()
        except _Aborted:
            self.close_connection = True
            return
        request = HttpRequest(self.command, self.path, Headers(self.headers.items()), body, size, too_large)
        try:
            response = self.server.app(request)
        except Exception as exc:  # a simulator bug: answer 500 and show it
            traceback.print_exc(file=sys.stderr)
            error = {
                "error": {"type": "server_error", "message": f"simulator error: {type(exc).__name__}: {exc}"}
            }
            response = HttpResponse(500, json.dumps(error).encode(), {"Content-Type": "application/json"})
        try:
            if response.events is not None:
                self._send_stream(response)
            else:
                self._send_body(response)
        except _Aborted:
            self.close_connection = True

    def _wait(self, seconds: float) -> None:
        if seconds > 0 and self.server.stopping.wait(seconds):
            raise _Aborted

    def _start(self, response: HttpResponse, extra: dict[str, str]) -> None:
        self.send_response(response.status)
        # Lets a client say honestly that an answer came from the simulator (demo mode).
        self.send_header(SIMULATOR_HEADER, "kimi-jupyter")
        for name, value in {**response.headers, **extra}.items():
            self.send_header(name, value)
        self.end_headers()

    def _send_body(self, response: HttpResponse) -> None:
        fault = response.fault
        body = response.body
        if fault is not None and fault.kind == STALL:
            self._wait(fault.seconds)
        if fault is not None and fault.kind == MALFORMED:
            body = b"{not json"
        self._start(response, {"Content-Length": str(len(body))})
        if fault is not None and fault.kind == CUT:
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return
        self.wfile.write(body)

    def _send_stream(self, response: HttpResponse) -> None:
        headers = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
        self._start(response, {**headers, "Transfer-Encoding": "chunked"})
        fault = response.fault
        pending: list[str] = []
        pending_size = 0
        sent = 0  # data events written (comments do not count)
        for frame in response.events or ():
            is_data = frame.startswith("data:")
            if is_data and fault is not None and (sent == fault.after or frame.startswith("data: [DONE]")):
                self._flush(pending)
                pending, pending_size = [], 0
                if fault.kind == CUT:
                    self.close_connection = True
                    return
                if fault.kind == MALFORMED:
                    self._flush([MALFORMED_LINE])
                elif fault.kind == STALL:
                    self._wait(fault.seconds)
                fault = None
            if is_data and sent and response.delay > 0:
                self._flush(pending)
                pending, pending_size = [], 0
                self._wait(response.delay)
            pending.append(frame)
            pending_size += len(frame)
            sent += is_data
            if pending_size >= _BATCH_BYTES:
                self._flush(pending)
                pending, pending_size = [], 0
            if self.server.stopping.is_set():
                raise _Aborted
        self._flush(pending)
        self.wfile.write(b"0\r\n\r\n")

    def _flush(self, frames: list[str]) -> None:
        if not frames:
            return
        data = "".join(frames).encode("utf-8")
        self.wfile.write(b"%x\r\n%b\r\n" % (len(data), data))


class LoopbackServer:
    """A :class:`_Server` plus its accept thread, started and stopped with bounded waits."""

    def __init__(self, handler: Handler, host: str, port: int, max_body: int) -> None:
        self.stopping = threading.Event()
        self._server = _Server((host, port), handler, max_body, self.stopping)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="kimi-sim-server",
            daemon=True,
        )
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop accepting, wake stalls, close connections, join threads (within ``timeout``)."""
        deadline = time.monotonic() + timeout
        self.stopping.set()
        if self._thread is not None and self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(max(0.0, deadline - time.monotonic()))
        self._server.close_connections(deadline)
        self._server.server_close()
