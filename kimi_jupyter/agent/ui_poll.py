"""Let a blocking cell receive its own widget's messages while it waits.

A cell that waits for a button click has a problem: the click reaches the kernel as a
``comm_msg`` on the shell channel, and the kernel handles shell messages one at a time, so
the click would only be handled after the cell ends. :class:`ShellPump` solves this for the
thread that runs the cell, without a nested event loop and without patching any handler:

* It reads the shell messages queued for this thread itself, from the socket that feeds the
  kernel's shell handler (found by `kimi_jupyter.kernel_status.find_shell_channel`, the one
  module that knows ipykernel's internals).
* Messages for the comms it was asked to watch (the approval widget) are handled at once,
  and so are ``kernel_info_request`` and ``comm_info_request`` (read-only, they let a
  reloaded page reconnect and show the widget). Nothing is published on ``status``: the
  kernel stays busy with the cell.
* Every other message (execute requests, completions, other widgets' messages...) is held,
  untouched, and when the pump closes it is handed to the kernel's own receive callback, in
  arrival order, before anything still queued. Each one then runs after the cell, exactly as
  if the pump had never looked at it.

Signals: an interrupt (SIGINT) while waiting raises KeyboardInterrupt at once from the poll.
While a message is being received, routed or handed back, SIGINT is deferred for those
microseconds, so an interrupt can never drop a message that was already read.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from ..kernel_status import ShellChannel, comm_callback, find_shell_channel, recv_callback

log = logging.getLogger(__name__)

__all__ = ["PumpUnavailable", "ShellChannel", "ShellPump", "can_pump", "find_shell_channel"]

#: Requests answered while the cell waits: read-only, and needed by a frontend that
#: (re)connects meanwhile, before it can show the approval widget.
INFO_REQUESTS = frozenset({"kernel_info_request", "comm_info_request"})
_COMM_TYPES = frozenset({"comm_msg", "comm_close"})
_DELIM = b"<IDS|MSG>"

_ACTIVE_LOCK = threading.Lock()
_ACTIVE: set[int] = set()  # id() of the streams a pump is reading right now


class PumpUnavailable(RuntimeError):
    """This kernel, or this thread, offers no shell queue a pump can read."""


def can_pump(kernel: Any) -> bool:
    """True when :meth:`ShellPump.open` would work for this kernel on this thread."""
    channel = find_shell_channel(kernel)
    if channel is None:
        return False
    with _ACTIVE_LOCK:
        return id(channel.stream) not in _ACTIVE


class _DeferSigint:
    """Hold SIGINT back for a few statements (main thread only); re-raise it afterwards."""

    def __init__(self) -> None:
        self._previous: Any = None
        self._pending = False
        self._active = False

    def _handler(self, signum: int, frame: Any) -> None:
        self._pending = True

    def __enter__(self) -> _DeferSigint:
        if threading.current_thread() is threading.main_thread():
            previous = signal.getsignal(signal.SIGINT)
            if previous is not None:  # None: set outside Python, could not be put back
                self._previous = signal.signal(signal.SIGINT, self._handler)
                self._active = True
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._active:
            return
        signal.signal(signal.SIGINT, self._previous)
        self._active = False
        if self._pending:
            self._pending = False
            if callable(self._previous):
                self._previous(signal.SIGINT, None)  # the default handler raises KeyboardInterrupt
            elif self._previous == signal.SIG_DFL:
                raise KeyboardInterrupt


def _frame_bytes(frame: Any) -> bytes:
    data = getattr(frame, "bytes", frame)
    return data if isinstance(data, bytes) else bytes(data)


class ShellPump:
    """Read the calling thread's shell queue while a cell blocks; see the module doc.

    Use as a context manager, or call :meth:`close` in a ``finally``: closing hands every
    held message back to the kernel, and must happen on the thread that opened the pump.
    """

    def __init__(self, kernel: Any, channel: ShellChannel) -> None:
        import zmq

        self._zmq = zmq
        self.kernel = kernel
        self._stream = channel.stream
        self._reply = channel.reply
        self._socket = channel.stream.socket
        self._callback, self._copy = recv_callback(channel.stream)
        self._thread = threading.current_thread()
        self._held: list[list[Any]] = []
        self._comm_ids: set[str] = set()
        self._closed = False
        self.handled = 0  # messages handled at once (watched comms, info requests)

    @classmethod
    def open(cls, kernel: Any) -> ShellPump:
        channel = find_shell_channel(kernel)
        if channel is None:
            raise PumpUnavailable("no shell queue to read on this kernel/thread")
        key = id(channel.stream)
        with _ACTIVE_LOCK:
            if key in _ACTIVE:
                raise PumpUnavailable("this shell queue is already being read by another wait")
            _ACTIVE.add(key)
        try:
            return cls(kernel, channel)
        except BaseException:
            with _ACTIVE_LOCK:
                _ACTIVE.discard(key)
            raise

    def __enter__(self) -> ShellPump:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def held(self) -> int:
        """How many messages are held for after the wait."""
        return len(self._held)

    def watch(self, comm_ids: Iterable[str]) -> None:
        """Handle messages for these comms as soon as they arrive."""
        self._comm_ids.update(c for c in comm_ids if c)

    def wait(self, done: Callable[[], bool], timeout: float | None = None, *, tick: float = 0.05) -> bool:
        """Pump until ``done()`` is true (returns True) or ``timeout`` seconds pass (False).

        ``done`` is checked after every batch of messages and at least every ``tick``
        seconds, so it may also be made true from another thread. KeyboardInterrupt from an
        interrupt propagates at once; the pump stays usable and must still be closed.
        """
        if self._closed:
            raise RuntimeError("pump is closed")
        deadline = None if timeout is None else time.monotonic() + timeout
        poller = self._zmq.Poller()
        poller.register(self._socket, self._zmq.POLLIN)
        while True:
            with _DeferSigint():
                self._drain()
            if done():
                return True
            wait_s = tick
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                wait_s = min(wait_s, left)
            poller.poll(max(1, int(wait_s * 1000)))  # SIGINT raises KeyboardInterrupt here

    def close(self) -> None:
        """Hand every held message back to the kernel, in order. Idempotent."""
        if self._closed:
            return
        if threading.current_thread() is not self._thread:
            raise RuntimeError("a ShellPump must be closed on the thread that opened it")
        with _DeferSigint():
            self._closed = True
            held, self._held = self._held, []
            try:
                for frames in held:
                    self._redeliver(frames)
                # Anything that arrived after the last read is still in the socket; make the
                # stream look at it once its loop runs again (our reads may have consumed the
                # edge of its edge-triggered fd). The held messages are already scheduled, so
                # they stay ahead.
                self._stream.io_loop.add_callback(self._kick)
            finally:
                with _ACTIVE_LOCK:
                    _ACTIVE.discard(id(self._stream))

    # -- internals -------------------------------------------------------------------

    def _drain(self) -> None:
        zmq = self._zmq
        while True:
            try:
                frames = self._socket.recv_multipart(zmq.NOBLOCK, copy=self._copy)
            except zmq.Again:
                return
            if self._wanted_now(frames):
                try:
                    self._handle_now(frames)
                except Exception:
                    log.exception("error while handling a shell message during an approval wait")
            else:
                self._held.append(frames)

    def _wanted_now(self, frames: list[Any]) -> bool:
        """Peek at the header (no signature check, no digest recorded) to route a message."""
        try:
            delim = next((i for i, frame in enumerate(frames) if _frame_bytes(frame) == _DELIM), None)
            if delim is None:
                return False
            body = frames[delim + 1 :]
            if len(body) < 5:
                return False
            session = self.kernel.session
            msg_type = session.unpack(_frame_bytes(body[1])).get("msg_type")
            if msg_type in INFO_REQUESTS:
                return True
            if msg_type in _COMM_TYPES and self._comm_ids:
                content = session.unpack(_frame_bytes(body[4]))
                return isinstance(content, dict) and content.get("comm_id") in self._comm_ids
        except Exception:
            return False  # let the kernel judge (and log) whatever this is
        return False

    def _handle_now(self, frames: list[Any]) -> None:
        session = self.kernel.session
        idents, msg_list = session.feed_identities(frames, copy=self._copy)
        try:
            msg = session.deserialize(msg_list, content=True, copy=self._copy)
        except Exception:
            log.warning("dropped an invalid shell message during an approval wait", exc_info=True)
            return
        self.handled += 1
        msg_type = msg["header"]["msg_type"]
        if msg_type == "kernel_info_request":
            content = {"status": "ok"}
            content.update(self.kernel.kernel_info)
            self._send_reply("kernel_info_reply", content, msg, idents)
        elif msg_type == "comm_info_request":
            target = (msg.get("content") or {}).get("target_name")
            comms = {
                comm_id: {"target_name": comm.target_name}
                for comm_id, comm in dict(self._comm_manager().comms).items()
                if target is None or comm.target_name == target
            }
            self._send_reply("comm_info_reply", {"comms": comms, "status": "ok"}, msg, idents)
        elif msg_type == "comm_msg":
            comm = self._comm_manager().get_comm(msg["content"].get("comm_id"))
            if comm is None:
                return
            # The comm's own callback, not comm.handle_msg: that one also fires IPython's
            # pre/post_execute events, which must not run in the middle of a cell.
            callback = comm_callback(comm)
            if callback is not None:
                callback(msg)
        elif msg_type == "comm_close":
            self._comm_manager().comm_close(self._reply, idents, msg)

    def _comm_manager(self) -> Any:
        manager = getattr(self.kernel, "comm_manager", None)
        if manager is None:
            import comm

            manager = comm.get_comm_manager()
        return manager

    def _send_reply(
        self, msg_type: str, content: dict[str, Any], parent: dict[str, Any], idents: list[bytes]
    ) -> None:
        self.kernel.session.send(self._reply, msg_type, content, parent, ident=idents)
        flush = getattr(self._reply, "flush", None)  # a ZMQStream only sends from its loop
        if flush is not None:
            flush(self._zmq.POLLOUT)

    def _redeliver(self, frames: list[Any]) -> None:
        """Give a held message to the kernel exactly as its stream would have."""
        try:
            result = self._callback(frames)
            if inspect.isawaitable(result):
                loop = getattr(self._stream.io_loop, "asyncio_loop", None)
                future = asyncio.ensure_future(result, loop=loop)
                future.add_done_callback(_log_failure)
        except Exception:
            log.exception("could not hand a held shell message back to the kernel")

    def _kick(self) -> None:
        stream = self._stream
        try:
            if not stream.closed():
                stream.flush(self._zmq.POLLIN)
        except Exception:
            log.debug("shell stream flush after an approval wait failed", exc_info=True)


def _log_failure(future: Any) -> None:
    if future.cancelled():
        return
    error = future.exception()
    if error is not None:
        log.error("a held shell message failed", exc_info=error)
