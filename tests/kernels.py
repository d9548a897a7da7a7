"""Real ipykernels for tests: start one with the simulator's settings, run code, read iopub."""

from __future__ import annotations

import os
import queue
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from jupyter_client.manager import KernelManager

REPO = Path(__file__).resolve().parents[1]


@contextmanager
def running_kernel(env: dict[str, str], cwd: Path) -> Iterator[tuple[KernelManager, Any]]:
    """A python3 kernel of this interpreter with ``env`` on top of ours; always shut down."""
    manager = KernelManager(kernel_name="python3")
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **env}
    manager.kernel_spec.argv[0] = sys.executable  # this interpreter, whatever the kernelspec says
    manager.start_kernel(env=full_env, cwd=str(cwd))
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        yield manager, client
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def run(client: Any, code: str, timeout: float = 60, allow_stdin: bool = False) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Execute ``code``; return the execute_reply content and the iopub messages it caused."""
    msg_id = client.execute(code, allow_stdin=allow_stdin)
    return collect(client, msg_id, timeout)


def collect(client: Any, msg_id: str, timeout: float) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    deadline = time.monotonic() + timeout
    messages: list[dict[str, Any]] = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no idle status within {timeout} s")
        try:
            msg = client.get_iopub_msg(timeout=remaining)
        except queue.Empty:
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        messages.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    while True:
        reply = client.get_shell_msg(timeout=max(1.0, deadline - time.monotonic()))
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply["content"], messages


def text_of(messages: list[dict[str, Any]]) -> str:
    """Everything the cell showed, as plain text (streams, displays, errors)."""
    out = []
    for msg in messages:
        content = msg["content"]
        if msg["msg_type"] == "stream":
            out.append(content["text"])
        elif msg["msg_type"] in ("display_data", "update_display_data", "execute_result"):
            out.append(str(content["data"].get("text/plain", "")))
        elif msg["msg_type"] == "error":
            out.append("\n".join(content["traceback"]))
    return "".join(out)


def assert_cell_outcome(reply: dict[str, Any], messages: list[dict[str, Any]], ok: bool) -> None:
    """A turn that failed fails its cell with one line and no traceback of ours; others are ok."""
    errors = [m["content"] for m in messages if m["msg_type"] == "error"]
    shown = text_of(messages)
    assert "Traceback" not in shown, shown
    if ok:
        assert reply["status"] == "ok" and not errors, shown
    else:
        assert reply["status"] == "error" and reply["ename"] == "CellFailed", reply
        assert len(errors) == 1 and len(errors[0]["traceback"]) == 1, errors
