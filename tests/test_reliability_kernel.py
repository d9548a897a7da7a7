"""Issue 9, in a real kernel: the %%kimi fault matrix and interrupts.

One kernel serves the whole module; every case starts from ``%kimi reset`` and a reset
simulator. Each fault must end in the documented message (no traceback, the execute reply
is "ok"), keep what had streamed, leave the kernel idle and the conversation usable: the
next ordinary cell gets an answer and sends well-formed messages. Interrupts (during a
stalled stream, during a rate-limit wait, while the agent waits for approval by widget or
by stdin) leave the kernel idle again within a second and never run the proposed code.

The sidebar's share of the matrix belongs to the sidebar's own tests (issue 6).
"""

from __future__ import annotations

import ast
import queue
import re
import time
from typing import Any

import pytest

from kimi_jupyter.testing import Fault, KimiSimulator, Reply, ToolCall

from .kernels import assert_cell_outcome, collect, run, running_kernel, text_of
from .test_reliability_faults import check_well_formed, closed_port

pytestmark = pytest.mark.timeout(120)

KEY = "sk-test-simulator"
ANSWER = "alpha beta gamma delta epsilon zeta eta theta"
MAX_RETRIES = 2
RETRY_LINE = r"retrying in \d+(\.\d+)? s"
SETUP = f"""
%load_ext kimi_jupyter
%config Kimi.retry_backoff = 0.01
%config Kimi.max_retries = {MAX_RETRIES}
%config Kimi.timeout_read = 0.5
%config Kimi.thinking = False
import os
"""


@pytest.fixture(scope="module")
def sim():
    with KimiSimulator(api_key=KEY) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def kernel(sim, tmp_path_factory):
    env = {"KIMI_BASE_URL": sim.base_url, "MOONSHOT_API_KEY": KEY, "KIMI_PROVIDER": "moonshot"}
    with running_kernel(env, tmp_path_factory.mktemp("reliability")) as (manager, client):
        reply, messages = run(client, SETUP)
        assert reply["status"] == "ok", text_of(messages)
        yield manager, client


@pytest.fixture(autouse=True)
def fresh(sim, kernel):
    sim.reset()
    reply, _ = run(kernel[1], "%kimi reset")
    assert reply["status"] == "ok"
    yield
    sim.reset()


def cell(client: Any, body: str, options: str = "--display text") -> tuple[dict[str, Any], str, list]:
    reply, messages = run(client, f"%%kimi {options}\n{body}", timeout=30)
    return reply, text_of(messages), messages


def assert_idle_and_usable(sim: KimiSimulator, client: Any, partial: str | None) -> None:
    """The kernel answers at once, and the next %%kimi works with a well-formed history."""
    started = time.monotonic()
    reply, messages = run(client, "print('still alive')", timeout=5)
    assert reply["status"] == "ok" and "still alive" in text_of(messages)
    assert time.monotonic() - started < 1.0
    sim.reset()
    sim.queue(Reply(text="recovered fine"))
    reply, shown, _ = cell(client, "And now?")
    assert reply["status"] == "ok" and "recovered fine" in shown, shown
    sent = sim.chat_requests[-1]
    assert sent.status == 200
    check_well_formed(sent.messages)
    roles = [m["role"] for m in sent.messages]
    if partial is None:
        assert roles == ["user"], "a turn that failed before any text must not enter the memory"
    else:
        assert roles == ["user", "assistant", "user"]
        assert sent.messages[1]["content"] == partial


# Each case: fault, how often it fires, requests expected, phrases the output must contain,
# partial text kept (None: nothing streamed), whether the turn ends with the full answer.
MATRIX = {
    "quota": (Fault.quota(), 1, 1, ["quota is exhausted", "retrying will not help", "Top up"], None, False),
    "401": (Fault.unauthorized(), 1, 1, ["API key was rejected (401)", "MOONSHOT_API_KEY"], None, False),
    "404": (Fault.model_not_found(), 1, 1, ["was not found", "(404)", "%kimi models", "-m MODEL"], None, False),
    "context": (Fault.context_too_long(), 1, 1, ["too long for the model's context window", "%kimi reset",
                                                  "--new"], None, False),
    "filter": (Fault.content_filter(), 1, 1, ["refused this request as high risk", "Rephrase"], None, False),
    "500": (Fault.server_error(500), 3, 3, ["server had an error (500)", "gave up after 2 retries"], None, False),
    "502": (Fault.server_error(502), 3, 3, ["server had an error (502)", "gave up after 2 retries"], None, False),
    "503": (Fault.server_error(503), 3, 3, ["server had an error (503)", "gave up after 2 retries"], None, False),
    "504": (Fault.server_error(504), 3, 3, ["server had an error (504)", "gave up after 2 retries"], None, False),
    "5xx-then-ok": (Fault.server_error(503), 1, 2, ["theta"], None, True),
    "cut": (Fault.cut(after=4), 1, 1, ["stream was cut", "partial answer above is kept", "Run the cell again"],
            "alpha beta gamma ", False),
    "malformed": (Fault.malformed(after=2), 1, 1, ["Skipped a malformed chunk"], None, True),
    "stall": (Fault.stall(5, after=4), 1, 1, ["sent nothing for 0.5 s (read timeout)", "partial answer is kept",
                                               "Kimi.timeout_read"], "alpha beta gamma ", False),
    "stall-before-text": (Fault.stall(5, after=0), 1, 2, ["read timeout", "theta"], None, True),
}


@pytest.mark.parametrize("case", list(MATRIX))
def test_fault_matrix(sim, kernel, case):
    _, client = kernel
    fault, times, requests, phrases, partial, completes = MATRIX[case]
    sim.fault(fault, times=times)
    answer = Reply(chunks=[word + " " for word in ANSWER.split()[:-1]] + ["theta"])
    sim.queue(answer, answer)  # a broken stream uses up its reply; the retry gets the second
    started = time.monotonic()
    reply, shown, messages = cell(client, f"Question for {case}")
    assert time.monotonic() - started < 8
    assert_cell_outcome(reply, messages, ok=completes)
    for phrase in phrases:
        assert phrase in shown, f"{phrase!r} missing from:\n{shown}"
    assert len(sim.chat_requests) == requests
    retries = requests - 1
    assert len(re.findall(RETRY_LINE, shown)) == retries, shown
    if partial is not None:
        assert partial in shown and "theta" not in shown
    _, check = run(client, "print(repr((_kimi.text, _kimi.error is None)))")
    text, ok = ast.literal_eval(text_of(check).strip())
    assert ok is completes and ("[failed:" in shown) is not completes
    if completes:
        assert text == ANSWER
    else:
        assert text == (partial or "")
    # The next ordinary cell: idle kernel, an answer, a well-formed history.
    assert_idle_and_usable(sim, client, ANSWER if completes else partial)


def test_rate_limit_waits_the_named_seconds_and_says_so(sim, kernel):
    _, client = kernel
    sim.fault(Fault.rate_limit(wait=1), times=1)
    sim.queue(Reply(text="after the wait"))
    started = time.monotonic()
    reply, shown, _ = cell(client, "busy?")
    elapsed = time.monotonic() - started
    assert reply["status"] == "ok" and "after the wait" in shown
    assert "retrying in 1 s" in shown and "Rate limit reached (429)" in shown
    assert 1.0 <= elapsed < 5
    assert len(sim.chat_requests) == 2
    assert_idle_and_usable(sim, client, "after the wait")


def test_rate_limit_longer_than_the_cap_fails_at_once_naming_the_wait(sim, kernel):
    _, client = kernel
    sim.fault(Fault.rate_limit(wait=600), times=1)
    started = time.monotonic()
    reply, shown, messages = cell(client, "busy?")
    assert time.monotonic() - started < 3
    assert_cell_outcome(reply, messages, ok=False)
    assert "wait 600 s" in shown and "retrying" not in shown
    assert len(sim.chat_requests) == 1
    assert_idle_and_usable(sim, client, None)


def test_connection_refused_via_kimi_base_url(sim, kernel):
    _, client = kernel
    port = closed_port()
    reply, _ = run(client, f"_saved_url = os.environ['KIMI_BASE_URL']\n"
                           f"os.environ['KIMI_BASE_URL'] = 'http://127.0.0.1:{port}/v1'")
    assert reply["status"] == "ok"
    try:
        started = time.monotonic()
        reply, shown, messages = cell(client, "anyone there?")
        assert time.monotonic() - started < 5
        assert_cell_outcome(reply, messages, ok=False)
        assert "Could not connect to 127.0.0.1" in shown and "KIMI_BASE_URL" in shown
        assert f"gave up after {MAX_RETRIES} retries" in shown
        assert len(re.findall(RETRY_LINE, shown)) == MAX_RETRIES
    finally:
        run(client, "os.environ['KIMI_BASE_URL'] = _saved_url")
    assert sim.chat_requests == []
    assert_idle_and_usable(sim, client, None)


def test_markdown_view_shows_the_retry_and_saves_the_failure(sim, kernel):
    """Outside text mode the retry note is painted live and the saved bundle names the failure."""
    _, client = kernel
    sim.fault(Fault.server_error(502), times=3)
    reply, _, messages = cell(client, "hello?", options="--display markdown")
    assert_cell_outcome(reply, messages, ok=False)
    painted = [m["content"]["data"].get("text/markdown", "") for m in messages
               if m["msg_type"] in ("display_data", "update_display_data")]
    assert any("retrying in" in p for p in painted)
    final = [m for m in messages if m["msg_type"] == "update_display_data"][-1]["content"]["data"]
    for mime in ("text/plain", "text/html", "text/markdown"):
        assert "server had an error (502)" in final[mime] and "gave up after 2 retries" in final[mime]


# -- interrupts ------------------------------------------------------------------------


def execute(client: Any, code: str, *, allow_stdin: bool, notebook: bool) -> str:
    """An execute_request as a notebook frontend sends it (cellId metadata when ``notebook``)."""
    content = {"code": code, "silent": False, "store_history": True, "user_expressions": {},
               "allow_stdin": allow_stdin, "stop_on_error": True}
    msg = client.session.msg("execute_request", content, metadata={"cellId": "c-1"} if notebook else {})
    client.shell_channel.send(msg)
    return msg["header"]["msg_id"]


def wait_for(client: Any, msg_id: str, predicate: Any, timeout: float = 15) -> str:
    """The text of the iopub messages of ``msg_id`` up to the first one matching ``predicate``."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            msg = client.get_iopub_msg(timeout=0.1)
        except queue.Empty:
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        seen.append(msg)
        if predicate(msg):
            return text_of(seen)
    raise AssertionError(f"nothing matched within {timeout} s: {[m['msg_type'] for m in seen]}")


def interrupt_and_collect(manager: Any, client: Any, msg_id: str, before: str) -> tuple[dict[str, Any], str, float]:
    """Interrupt now; the execute reply, everything the cell showed, seconds until idle."""
    started = time.monotonic()
    manager.interrupt_kernel()
    reply, messages = collect(client, msg_id, timeout=10)
    return reply, before + text_of(messages), time.monotonic() - started


def test_interrupt_while_the_stream_is_stalled(sim, kernel):
    manager, client = kernel
    sim.fault(Fault.stall(30, after=2), times=1)
    sim.queue(Reply(chunks=["first ", "second ", "never"]))
    run(client, "%config Kimi.timeout_read = 60")
    try:
        msg_id = client.execute("%%kimi --display text\nTell me slowly")
        before = wait_for(client, msg_id, lambda m: m["msg_type"] == "stream" and "first" in m["content"]["text"])
        time.sleep(0.2)
        reply, shown, elapsed = interrupt_and_collect(manager, client, msg_id, before)
    finally:
        run(client, "%config Kimi.timeout_read = 0.5")
    assert elapsed < 1.0
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt"
    assert "first" in shown and "Interrupted" in shown and "never" not in shown
    assert_idle_and_usable(sim, client, "first ")


def test_interrupt_during_a_rate_limit_wait(sim, kernel):
    manager, client = kernel
    sim.fault(Fault.rate_limit(wait=30), times=1)
    msg_id = client.execute("%%kimi --display text\nbusy?")
    before = wait_for(client, msg_id, lambda m: m["msg_type"] == "stream" and "retrying in 30 s" in m["content"]["text"])
    time.sleep(0.2)
    reply, shown, elapsed = interrupt_and_collect(manager, client, msg_id, before)
    assert elapsed < 1.0
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt"
    assert "Interrupted" in shown
    assert len(sim.chat_requests) == 1  # the retry never went out
    assert_idle_and_usable(sim, client, None)


AGENT_CODE = "agent_ran = True\nprint('MODEL' + 'CODE' + 'RAN')"


@pytest.mark.parametrize("channel", ["widget", "stdin"])
def test_interrupt_while_the_agent_waits_for_approval(sim, kernel, channel):
    manager, client = kernel
    sim.queue(
        Reply(text="I will compute it.", tool_calls=[ToolCall("run_python", {"code": AGENT_CODE})]),
        Reply(text="never sent"),
    )
    run(client, "agent_ran = False")
    msg_id = execute(client, "%%kimi --agent --display text\nCompute something", allow_stdin=True,
                     notebook=channel == "widget")
    before = ""
    if channel == "widget":
        before = wait_for(client, msg_id, lambda m: m["msg_type"] == "comm_open"
                          and m["content"]["data"].get("state", {}).get("description") == "Run it")
    else:
        request = client.get_stdin_msg(timeout=15)
        assert request["content"]["prompt"] == "Run this code? [y/N] "
    time.sleep(0.3)
    reply, shown, elapsed = interrupt_and_collect(manager, client, msg_id, before)
    assert elapsed < 1.0
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt"
    assert "Interrupted" in shown and "MODELCODERAN" not in shown
    reply, messages = run(client, "print('RAN' if agent_ran else 'NOT RUN')", timeout=5)
    assert "NOT RUN" in text_of(messages)
    assert len(sim.chat_requests) == 1  # the tool result never went back
    # The memory closes the exchange without a dangling tool call.
    assert_idle_and_usable(sim, client, "I will compute it.")
