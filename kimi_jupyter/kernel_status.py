"""The one place that touches ipykernel's internals: the published status while a Kimi turn
runs, and where the calling thread's shell messages arrive (for `agent.ui_poll`).

Everything here was written against ipykernel 6.29+ and 7.x (the supported versions,
tested by ``tests/test_kernel_status.py`` on the installed one); a kernel where a piece is
missing gets the plain behaviour (no status correction, no shell pump), never an error.

**Busy while Kimi runs.** A kernel publishes ``status: busy`` / ``idle`` around every
request it handles, and JupyterLab's status bar shows the last one, whatever its parent.
While a cell runs, ipykernel 7 still answers requests on other threads (the control channel:
``debug_request``, ``create_subshell_request``; subshells: widget ``comm_msg``), each ending
with an "idle", so the status bar said "Idle" through most of a ``%%kimi`` cell and its
approval wait. `busy_while_kimi_runs` (used by the turn's sync driver) follows every such
"idle" with a "busy" whose parent is the running cell, for the duration of the Kimi turn only:
the kernel's ``_publish_status`` is shadowed on entry and restored on exit, so other cells
are never touched. Nothing is dropped, and the cell's own final "idle" comes after the turn.

**The shell queue.** `find_shell_channel` says where the current thread's shell messages
arrive: on ipykernel 7 the inproc socket the shell-channel thread forwards to (main shell or
subshell), on ipykernel 6 the shell socket itself; `recv_callback` is the kernel's own
handler of that stream and `comm_callback` a comm's message callback.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["ShellChannel", "busy_while_kimi_runs", "comm_callback", "find_shell_channel", "recv_callback"]

log = logging.getLogger(__name__)


def _msg_id(message: Any) -> Any:
    header = message.get("header") if isinstance(message, dict) else None
    return header.get("msg_id") if isinstance(header, dict) else None


def _running_kernel() -> Any:
    """The ipykernel kernel when called on its main thread, else None."""
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    kernel = getattr(get_ipython(), "kernel", None)
    return kernel if callable(getattr(kernel, "_publish_status", None)) else None


class _Busy:
    def __init__(self, kernel: Any, running: Any) -> None:
        self.kernel = kernel
        self.running = running  # the parent message of the cell running the turn
        self.original = kernel._publish_status
        self.lock = threading.Lock()

    def publish(self, status: str, channel: str, parent: Any = None) -> None:
        self.original(status, channel, parent)
        running = self.running
        if status != "idle" or running is None:
            return
        try:
            own = parent or self.kernel.get_parent(channel)
        except Exception:
            own = None
        if _msg_id(own) == _msg_id(running):
            return
        with self.lock:
            if self.running is running:
                self.original("busy", "shell", running)


_ACTIVE: dict[int, _Busy] = {}


@contextlib.contextmanager
def busy_while_kimi_runs() -> Iterator[bool]:
    """Keep the running cell's status "busy" for the duration of the block (a Kimi turn);
    yields whether that applies (an ipykernel, the main thread, a cell running)."""
    kernel = _running_kernel()
    if kernel is None or id(kernel) in _ACTIVE:  # not a kernel, or a turn inside a turn
        yield False
        return
    try:
        running = kernel.get_parent("shell")
    except Exception:
        running = None
    if not _msg_id(running):
        yield False
        return
    busy = _Busy(kernel, running)
    _ACTIVE[id(kernel)] = busy
    kernel._publish_status = busy.publish
    try:
        yield True
    finally:
        with busy.lock:  # no "busy" of ours can follow the cell's own final "idle"
            busy.running = None
        if kernel.__dict__.get("_publish_status") == busy.publish:
            del kernel._publish_status  # the class's own method again
        _ACTIVE.pop(id(kernel), None)


@dataclass(frozen=True)
class ShellChannel:
    """Where the current thread's shell messages arrive, and where replies go."""

    stream: Any  # zmq ZMQStream whose socket feeds this thread's shell handler
    reply: Any  # zmq socket or ZMQStream used for replies to those messages


def recv_callback(stream: Any) -> tuple[Any, bool]:
    """The kernel's handler of ``stream``'s messages, and whether it takes copied frames."""
    return getattr(stream, "_recv_callback", None), bool(getattr(stream, "_recv_copy", False))


def comm_callback(comm: Any) -> Any:
    """A comm's own message callback (None when it has none), so a message can be handled
    without ``comm.handle_msg``, which fires IPython's pre/post_execute events too; a comm
    of another kind (no such callback at all) is handled by its ``handle_msg``."""
    if not hasattr(comm, "_msg_callback"):
        return comm.handle_msg
    return comm._msg_callback


def find_shell_channel(kernel: Any) -> ShellChannel | None:
    """The shell queue of the calling thread, or None where there is none to read."""
    if kernel is None or getattr(kernel, "session", None) is None:
        return None
    try:
        thread = getattr(kernel, "shell_channel_thread", None)
        if thread is not None:  # ipykernel 7: per-(sub)shell inproc sockets
            manager = thread.manager
            if threading.current_thread() is thread.parent_thread:
                subshell_id = None
            else:
                try:
                    subshell_id = manager.subshell_id_from_thread_id(threading.get_ident())
                except Exception:
                    return None  # a thread the user started: no shell of its own
            stream = manager.get_shell_channel_to_subshell_pair(subshell_id).to_stream
            reply = manager.get_subshell_to_shell_channel_socket(subshell_id)
        else:  # ipykernel 6: the shell socket is read by the main thread's loop
            if threading.current_thread() is not threading.main_thread():
                return None
            stream = getattr(kernel, "shell_stream", None)
            reply = stream
    except Exception:
        log.debug("no shell channel to pump", exc_info=True)
        return None
    if stream is None or getattr(stream, "socket", None) is None:
        return None
    if recv_callback(stream)[0] is None:
        return None
    return ShellChannel(stream=stream, reply=reply)
