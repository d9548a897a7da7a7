"""Keep the kernel's published status "busy" for as long as a cell runs.

A kernel publishes ``status: busy`` / ``status: idle`` on IOPub around every request it
handles, and JupyterLab's status bar shows the last one it received, whatever its parent. While
a cell runs, ipykernel 7 still handles requests on other threads: the control channel
(JupyterLab's debugger sends ``debug_request``, the widget manager ``create_subshell_request``)
and subshells (where JupyterLab 4.4+ sends widget ``comm_msg``). Each ends with an "idle", so
the status bar said "Idle" through most of a ``%%kimi`` cell (and its approval wait), though
the main shell was busy with the cell.

:func:`keep_busy_while_running` wraps the kernel's ``_publish_status``: while a cell runs on
the main shell, every "idle" that belongs to another request is followed at once by a "busy"
whose parent is the running cell. Nothing is dropped (a client waiting for its request's
"idle" still gets it), and the cell's own final "idle" is untouched (the cell has finished by
then). Kernels without ``_publish_status`` (not ipykernel) are left alone.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["keep_busy_while_running"]

_ATTR = "_kimi_busy_while_running"


def _msg_id(message: Any) -> Any:
    header = message.get("header") if isinstance(message, dict) else None
    return header.get("msg_id") if isinstance(header, dict) else None


class _BusyWhileRunning:
    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel
        self.running: Any = None  # the parent message of the cell now running, or None
        self.original = kernel._publish_status
        self._lock = threading.Lock()

    def pre_execute(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # a subshell's cell: the main shell's status is not ours to tell
        try:
            parent = self.kernel.get_parent("shell")
        except Exception:
            parent = None
        self.running = parent if _msg_id(parent) else None

    def post_execute(self) -> None:
        if threading.current_thread() is threading.main_thread():
            with self._lock:  # no "busy" of ours can follow the cell's own final "idle"
                self.running = None

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
        with self._lock:
            if self.running is running:
                self.original("busy", "shell", running)


def keep_busy_while_running(shell: Any) -> bool:
    """Install on ``shell``'s kernel once; True when the kernel is one this applies to."""
    kernel = getattr(shell, "kernel", None)
    if kernel is None or not callable(getattr(kernel, "_publish_status", None)):
        return False
    if getattr(kernel, _ATTR, None) is not None:
        return True
    busy = _BusyWhileRunning(kernel)
    try:
        kernel._publish_status = busy.publish
        setattr(kernel, _ATTR, busy)
        shell.events.register("pre_execute", busy.pre_execute)
        shell.events.register("post_execute", busy.post_execute)
    except Exception:
        return False
    return True
