"""Approval in a real ipykernel: this test acts as the frontend over jupyter_client.

The widget tests click the buttons the way a browser does (a ``comm_msg`` with a custom
``click`` event on the shell channel) while the cell is still blocked waiting for the answer.

Set KIMI_TEST_KERNEL_PYTHON to run the kernel with another interpreter (e.g. a venv with
ipykernel 6) than the one running the tests.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.manager import KernelManager

pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parents[1]
KERNEL = "kimi-approval-test"

ASK = """
from kimi_jupyter.agent.approval import choose_approver
_approver = choose_approver({args})
_d = _approver("call-1", "run_python", {code!r})
print("DECISION", _d.approved, _d.how)
"""
PROPOSED = "print('hello from the model')\nx = 1 < 2 and '<b>'"


@pytest.fixture(scope="module")
def kernel_name(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("jupyter")
    spec_dir = root / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    python = os.environ.get("KIMI_TEST_KERNEL_PYTHON") or sys.executable
    spec = {
        "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "kimi approval test",
        "language": "python",
        "env": {"PYTHONPATH": str(REPO), "IPYTHONDIR": str(root / "ipython")},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(root))
        yield KERNEL


class Frontend:
    """A minimal frontend: sends requests, keeps every message, waits with deadlines."""

    def __init__(self, manager: KernelManager) -> None:
        self.manager = manager
        self.client = manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)
        self.iopub: list[dict[str, Any]] = []
        self.replies: dict[str, dict[str, Any]] = {}
        self.reply_order: list[str] = []

    def close(self) -> None:
        self.client.stop_channels()

    def send(self, msg_type: str, content: dict[str, Any], metadata: dict[str, Any] | None = None) -> str:
        msg = self.client.session.msg(msg_type, content, metadata=metadata or {})
        self.client.shell_channel.send(msg)
        return msg["header"]["msg_id"]

    def execute(self, code: str, *, allow_stdin: bool = True, notebook: bool = False) -> str:
        content = {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": allow_stdin,
            "stop_on_error": True,
        }
        return self.send("execute_request", content, {"cellId": "cell-under-test"} if notebook else None)

    def click(self, comm_id: str) -> None:
        self.send(
            "comm_msg", {"comm_id": comm_id, "data": {"method": "custom", "content": {"event": "click"}}}
        )

    def wait_iopub(self, match: Callable[[dict[str, Any]], bool], timeout: float = 30) -> dict[str, Any]:
        for msg in self.iopub:
            if match(msg):
                return msg
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                msg = self.client.get_iopub_msg(timeout=max(0.01, min(0.2, deadline - time.monotonic())))
            except queue.Empty:
                continue
            self.iopub.append(msg)
            if match(msg):
                return msg
        raise AssertionError(f"no matching iopub message within {timeout} s")

    def wait_reply(self, msg_id: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while msg_id not in self.replies:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no reply to {msg_id} within {timeout} s")
            try:
                msg = self.client.get_shell_msg(timeout=max(0.01, min(0.2, left)))
            except queue.Empty:
                continue
            parent_id = msg["parent_header"].get("msg_id")
            self.replies[parent_id] = msg
            self.reply_order.append(parent_id)
        return self.replies[msg_id]

    def finish(self, msg_id: str, timeout: float = 30) -> tuple[dict[str, Any], str]:
        """The reply to ``msg_id`` and the cell's stdout, once the kernel is idle after it."""
        reply = self.wait_reply(msg_id, timeout)
        self.wait_iopub(
            lambda m: _is(m, "status", msg_id) and m["content"]["execution_state"] == "idle", timeout
        )
        return reply, self.stdout(msg_id)

    def stdout(self, msg_id: str) -> str:
        return "".join(
            m["content"]["text"]
            for m in self.iopub
            if _is(m, "stream", msg_id) and m["content"]["name"] == "stdout"
        )

    def button(self, msg_id: str, description: str, timeout: float = 30) -> str:
        """The comm id of the button the cell ``msg_id`` showed with this label."""

        def match(msg: dict[str, Any]) -> bool:
            if not _is(msg, "comm_open", msg_id):
                return False
            state = msg["content"].get("data", {}).get("state", {})
            return state.get("_model_name") == "ButtonModel" and state.get("description") == description

        return self.wait_iopub(match, timeout)["content"]["comm_id"]


def _is(msg: dict[str, Any], msg_type: str, parent_id: str) -> bool:
    return msg["msg_type"] == msg_type and msg["parent_header"].get("msg_id") == parent_id


@pytest.fixture(scope="module")
def manager(kernel_name: str) -> Iterator[KernelManager]:
    manager = KernelManager(kernel_name=kernel_name)
    manager.start_kernel()
    try:
        yield manager
    finally:
        manager.shutdown_kernel(now=True)


@pytest.fixture
def frontend(manager: KernelManager) -> Iterator[Frontend]:
    frontend = Frontend(manager)
    try:
        yield frontend
    finally:
        frontend.close()


def _ask(args: str = "", code: str = PROPOSED) -> str:
    return ASK.format(args=args, code=code)


def _records(frontend: Frontend, msg_id: str) -> list[str]:
    return [
        m["content"]["data"]["text/plain"] for m in frontend.iopub if _is(m, "update_display_data", msg_id)
    ]


@pytest.mark.parametrize(
    ("label", "expected"), [("Run it", "DECISION True widget"), ("Don't run", "DECISION False widget")]
)
def test_widget_click_is_handled_while_the_cell_waits(frontend: Frontend, label: str, expected: str) -> None:
    msg_id = frontend.execute(_ask('mode="widget"'))
    target = frontend.button(msg_id, label)
    display = frontend.wait_iopub(lambda m: _is(m, "display_data", msg_id))
    assert "application/vnd.jupyter.widget-view+json" in display["content"]["data"]
    assert "hello from the model" in display["content"]["data"]["text/plain"]
    html_states = [
        m["content"]["data"]["state"].get("value", "")
        for m in frontend.iopub
        if m["msg_type"] == "comm_open" and m["content"]["data"]["state"].get("_model_name") == "HTMLModel"
    ]
    assert any("&lt;b&gt;" in value and "hello from the model" in value for value in html_states)
    time.sleep(0.3)  # the cell is really blocked
    assert msg_id not in frontend.replies
    frontend.click(target)
    reply, out = frontend.finish(msg_id, timeout=10)
    assert reply["content"]["status"] == "ok"
    assert expected in out
    outcome = "approved: ran" if label == "Run it" else "denied"
    assert _records(frontend, msg_id) == [f"run_python: {outcome}"]


def test_without_a_record_the_approval_box_goes_once_answered(frontend: Frontend) -> None:
    """A %%kimi --agent turn lists the steps in its own view: no second record below it."""
    msg_id = frontend.execute(_ask('mode="widget", record=False'))
    frontend.click(frontend.button(msg_id, "Run it"))
    reply, out = frontend.finish(msg_id, timeout=10)
    assert reply["content"]["status"] == "ok" and "DECISION True widget" in out
    assert _records(frontend, msg_id) == [""]


def test_auto_mode_uses_the_widget_for_a_notebook_ui(frontend: Frontend) -> None:
    msg_id = frontend.execute(_ask(), notebook=True)
    frontend.click(frontend.button(msg_id, "Run it"))
    reply, out = frontend.finish(msg_id, timeout=10)
    assert reply["content"]["status"] == "ok"
    assert "DECISION True widget" in out


def test_requests_queued_during_the_wait_run_after_the_cell_in_order(frontend: Frontend) -> None:
    first = frontend.execute(_ask('mode="widget"'))
    deny = frontend.button(first, "Don't run")
    later = [frontend.execute(f"print('later', {i})") for i in range(3)]
    info = frontend.send("kernel_info_request", {})
    comms = frontend.send("comm_info_request", {"target_name": "jupyter.widget"})
    # Read-only info requests are answered while the cell still waits ...
    assert frontend.wait_reply(info, timeout=5)["content"]["status"] == "ok"
    comm_reply = frontend.wait_reply(comms, timeout=5)
    assert deny in comm_reply["content"]["comms"]
    time.sleep(0.3)
    # ... but nothing else runs before the cell is done.
    assert not any(m in frontend.replies for m in (first, *later))
    frontend.click(deny)
    reply, out = frontend.finish(first, timeout=10)
    assert reply["content"]["status"] == "ok"
    assert "DECISION False widget" in out
    counts = [reply["content"]["execution_count"]]
    for i, msg_id in enumerate(later):
        later_reply, later_out = frontend.finish(msg_id, timeout=10)
        assert later_reply["content"]["status"] == "ok"
        assert later_out == f"later {i}\n"
        counts.append(later_reply["content"]["execution_count"])
    assert counts == sorted(counts) and len(set(counts)) == 4
    order = [m for m in frontend.reply_order if m in (first, *later)]
    assert order == [first, *later]


def test_interrupt_stops_the_wait_at_once_and_the_kernel_stays_healthy(frontend: Frontend) -> None:
    msg_id = frontend.execute(_ask('mode="widget"'))
    frontend.button(msg_id, "Run it")
    time.sleep(0.3)
    started = time.monotonic()
    frontend.manager.interrupt_kernel()
    reply = frontend.wait_reply(msg_id, timeout=5)
    assert time.monotonic() - started < 2
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    frontend.finish(msg_id, timeout=5)
    assert _records(frontend, msg_id) == ["run_python: interrupted: not run"]
    started = time.monotonic()
    again = frontend.execute("print(6 * 7)")
    reply, out = frontend.finish(again, timeout=5)
    assert reply["content"]["status"] == "ok" and out == "42\n"
    assert time.monotonic() - started < 1.5
    # and a new approval in the same kernel works
    msg_id = frontend.execute(_ask('mode="widget"'))
    frontend.click(frontend.button(msg_id, "Run it"))
    assert "DECISION True widget" in frontend.finish(msg_id, timeout=10)[1]


def test_widget_timeout_denies(frontend: Frontend) -> None:
    msg_id = frontend.execute(_ask('mode="widget", timeout=0.5'))
    reply, out = frontend.finish(msg_id, timeout=10)
    assert reply["content"]["status"] == "ok"
    assert "DECISION False timeout" in out
    assert _records(frontend, msg_id) == ["run_python: denied (no answer in 0.5 s)"]


@pytest.mark.parametrize(
    ("answer", "expected"), [("y", "DECISION True stdin"), ("n", "DECISION False stdin")]
)
def test_stdin_prompt(frontend: Frontend, answer: str, expected: str) -> None:
    msg_id = frontend.execute(_ask('mode="stdin"'))
    request = frontend.client.get_stdin_msg(timeout=30)
    assert request["msg_type"] == "input_request"
    assert request["content"]["prompt"] == "Run this code? [y/N] "
    frontend.client.input(answer)
    reply, out = frontend.finish(msg_id, timeout=10)
    assert reply["content"]["status"] == "ok"
    assert "hello from the model" in out  # the code was shown before the question
    assert expected in out


def test_auto_mode_without_a_notebook_ui_asks_on_stdin(frontend: Frontend) -> None:
    msg_id = frontend.execute(_ask())
    request = frontend.client.get_stdin_msg(timeout=30)
    assert request["content"]["prompt"] == "Run this code? [y/N] "
    frontend.client.input("yes")
    assert "DECISION True stdin" in frontend.finish(msg_id, timeout=10)[1]


@pytest.mark.parametrize("args", ["", 'mode="widget"', 'mode="stdin"'])
def test_no_stdin_means_deny_at_once(frontend: Frontend, args: str) -> None:
    started = time.monotonic()
    msg_id = frontend.execute(_ask(args), allow_stdin=False, notebook=True)
    reply, out = frontend.finish(msg_id, timeout=10)
    assert time.monotonic() - started < 5
    assert reply["content"]["status"] == "ok"
    assert "DECISION False no-ui" in out
    assert not any(m["msg_type"] == "comm_open" and _is(m, "comm_open", msg_id) for m in frontend.iopub)


def test_auto_approve_in_the_kernel(frontend: Frontend) -> None:
    msg_id = frontend.execute(_ask("auto=True"), allow_stdin=False)
    assert "DECISION True auto" in frontend.finish(msg_id, timeout=10)[1]


def test_widget_in_a_kernel_subshell(frontend: Frontend) -> None:
    """ipykernel 7 subshells: the cell blocks a subshell thread, and the main shell stays free."""
    client = frontend.client
    info = frontend.wait_reply(frontend.send("kernel_info_request", {}), timeout=10)
    if "kernel subshells" not in info["content"].get("supported_features", []):
        pytest.skip("this kernel has no subshells")
    request = client.session.msg("create_subshell_request", {})
    client.control_channel.send(request)
    deadline = time.monotonic() + 10
    while True:
        reply = client.get_control_msg(timeout=max(0.01, deadline - time.monotonic()))
        if reply["parent_header"].get("msg_id") == request["header"]["msg_id"]:
            break
    if reply["content"].get("status") != "ok" or "subshell_id" not in reply["content"]:
        pytest.skip("this kernel has no subshells")
    # no history: two shells writing history at once can collide in IPython's history database
    content = {"code": _ask('mode="widget"'), "silent": False, "store_history": False, "allow_stdin": True}
    msg = client.session.msg("execute_request", content)
    msg["header"]["subshell_id"] = reply["content"]["subshell_id"]
    client.shell_channel.send(msg)
    msg_id = msg["header"]["msg_id"]
    run_it = frontend.button(msg_id, "Run it")
    other = frontend.execute("print('main shell is free')")
    assert frontend.finish(other, timeout=10)[1] == "main shell is free\n"
    assert msg_id not in frontend.replies
    frontend.click(run_it)
    assert "DECISION True widget" in frontend.finish(msg_id, timeout=10)[1]


def test_closing_the_sidebar_while_it_waits_for_an_approval_denies(frontend: Frontend) -> None:
    """The sidebar's comm closes during an approval wait: the code is denied, the turn ends,
    and the kernel is idle again (no interrupt needed)."""
    from kimi_jupyter.testing import KimiSimulator, Reply, ToolCall

    with KimiSimulator(api_key="sk-test-close") as sim:
        sim.queue(Reply(reasoning="Run it.", tool_calls=[ToolCall("run_python", {"code": "closed_ran = True"})]),
                  Reply(text="It was not run."))
        setup = frontend.execute(
            "import os\n%load_ext kimi_jupyter\n"
            f"os.environ.update(KIMI_BASE_URL={sim.base_url!r}, MOONSHOT_API_KEY='sk-test-close', "
            "KIMI_PROVIDER='moonshot')")
        assert frontend.finish(setup)[0]["content"]["status"] == "ok"
        comm_id = "sidebar-under-test"
        frontend.send("comm_open", {"comm_id": comm_id, "target_name": "kimi_jupyter.chat", "data": {}})
        ask = frontend.send("comm_msg", {"comm_id": comm_id, "data": {
            "action": "ask", "request_id": "r1", "prompt": "run something", "options": {"agent": True}}})

        def event(kind: str):
            return lambda m: (m["msg_type"] == "comm_msg" and m["content"]["data"].get("type") == "event"
                              and m["content"]["data"]["event"]["type"] == kind)

        frontend.wait_iopub(event("ApprovalRequested"))
        frontend.send("comm_close", {"comm_id": comm_id, "data": {}})
        resolved = frontend.wait_iopub(event("ApprovalResolved"), timeout=10)["content"]["data"]["event"]
        assert resolved["approved"] is False and resolved["how"] == "closed"
        frontend.wait_iopub(lambda m: _is(m, "status", ask) and m["content"]["execution_state"] == "idle", 10)
        check = frontend.execute("print('RAN' if globals().get('closed_ran') else 'NOT RUN')")
        assert "NOT RUN" in frontend.finish(check, timeout=10)[1]
