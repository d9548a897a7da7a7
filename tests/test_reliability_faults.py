"""Issue 9: the fault matrix through the simulator for ``ask()`` and ``aask()``.

Every documented failure of the Kimi API (docs/kimi-protocol.md, "Errors") and every broken
stream ends in a `Failed` event whose message says what to do, never in an exception;
retries are bounded and shown ("retrying in N s"), rate limits wait the seconds the server
names, partial text is kept, and the conversation stays usable: the next request succeeds
and its messages are well-formed. The same matrix runs in a real kernel in
``test_reliability_kernel.py``.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from typing import Any

import pytest

from kimi_jupyter import aask, ask
from kimi_jupyter.events import Failed, Retrying
from kimi_jupyter.session import get_session
from kimi_jupyter.testing import Fault, Reply

pytestmark = pytest.mark.timeout(60)

ANSWER = "alpha beta gamma delta epsilon zeta eta theta"
FAST = {"retry_backoff": 0.01, "timeout_read": 0.5, "max_retries": 2, "thinking": False}
RETRY_LINE = re.compile(r"retrying in \d+(\.\d+)? s")


def answer_reply() -> Reply:
    words = ANSWER.split()
    return Reply(chunks=[w + " " for w in words[:-1]] + [words[-1]])


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def check_well_formed(messages: list[dict[str, Any]]) -> None:
    """Roles in a valid order, every tool call answered, ends with the user's question."""
    assert messages and messages[-1]["role"] == "user"
    body = messages[1:] if messages[0]["role"] == "system" else messages
    assert body[0]["role"] == "user"
    pending: set[str] = set()
    previous = None
    for message in body:
        role = message["role"]
        assert role in ("user", "assistant", "tool"), message
        if role == "tool":
            assert message["tool_call_id"] in pending and isinstance(message["content"], str)
            pending.discard(message["tool_call_id"])
        else:
            assert not pending, f"tool calls without results before a {role} message"
        if role == "assistant":
            assert previous in ("user", "tool"), "two assistant messages in a row"
            assert isinstance(message.get("content"), str)
            pending = {call["id"] for call in message.get("tool_calls") or ()}
        if role == "user":
            assert previous != "user" or isinstance(message["content"], list), "two user questions in a row"
        previous = role
    assert not pending


def call(mode: str, prompt: str, **options: Any) -> Any:
    options = {**FAST, "display": "text", "history": True, **options}
    if mode == "ask":
        return ask(prompt, **options)
    return asyncio.run(aask(prompt, **options))


# fault, times it fires, requests expected, phrases, partial text kept, ends with the answer
MATRIX = {
    "quota": (Fault.quota(), 1, 1, ["quota is exhausted", "retrying will not help", "Top up"], None, False),
    "401": (Fault.unauthorized(), 1, 1, ["API key was rejected (401)", "MOONSHOT_API_KEY"], None, False),
    "404": (Fault.model_not_found(), 1, 1, ["not found", "(404)", "%kimi models"], None, False),
    "context": (Fault.context_too_long(), 1, 1, ["too long for the model's context window", "--new",
                                                  "%kimi reset"], None, False),
    "filter": (Fault.content_filter(), 1, 1, ["high risk", "Rephrase"], None, False),
    "500": (Fault.server_error(500), 3, 3, ["server had an error (500)", "gave up after 2 retries"], None, False),
    "502": (Fault.server_error(502), 3, 3, ["server had an error (502)", "gave up after 2 retries"], None, False),
    "503": (Fault.server_error(503), 3, 3, ["server had an error (503)", "gave up after 2 retries"], None, False),
    "504": (Fault.server_error(504), 3, 3, ["server had an error (504)", "gave up after 2 retries"], None, False),
    "overloaded": (Fault.overloaded(), 1, 2, [], None, True),
    "500-then-ok": (Fault.server_error(500), 2, 3, [], None, True),
    "cut": (Fault.cut(after=4), 1, 1, ["stream was cut", "partial answer above is kept", "Run the cell again"],
            "alpha beta gamma ", False),
    "cut-before-text": (Fault.cut(after=0), 1, 2, [], None, True),
    "malformed": (Fault.malformed(after=3), 1, 1, ["Skipped a malformed chunk"], None, True),
    "stall": (Fault.stall(5, after=4), 1, 1, ["sent nothing for 0.5 s (read timeout)", "partial answer is kept",
                                               "Kimi.timeout_read"], "alpha beta gamma ", False),
    "stall-before-text": (Fault.stall(5, after=0), 1, 2, [], None, True),
}


@pytest.mark.parametrize("mode", ["ask", "aask"])
@pytest.mark.parametrize("case", list(MATRIX))
def test_fault_matrix(kimi_sim_env, capsys, mode, case):
    sim = kimi_sim_env
    fault, times, requests, phrases, partial, completes = MATRIX[case]
    sim.fault(fault, times=times)
    sim.queue(answer_reply(), answer_reply(), answer_reply())  # broken streams use up their reply
    started = time.monotonic()
    response = call(mode, f"question about {case}")
    assert time.monotonic() - started < 5
    shown = capsys.readouterr()
    out = shown.out + shown.err
    assert "Traceback" not in out
    assert len(sim.chat_requests) == requests
    retries = [e for e in response.events if isinstance(e, Retrying)]
    assert len(retries) == requests - 1 == response.retries
    assert len(RETRY_LINE.findall(out)) == requests - 1, out
    if completes:
        assert response.error is None and response.text == ANSWER
    else:
        failed = [e for e in response.events if isinstance(e, Failed)]
        assert len(failed) == 1 and response.events[-1] is failed[0]
        assert response.text == (partial or "")
        assert f"[failed: {response.error}]" in out
        for phrase in phrases:
            assert phrase in response.error, f"{phrase!r} not in {response.error!r}"
    for phrase in phrases:
        assert phrase in out
    if partial:
        assert partial in out and "theta" not in out

    # The conversation is usable: the next request is answered and well-formed.
    conversation = get_session().conversation.messages
    kept = ANSWER if completes else partial
    assert [m["role"] for m in conversation] == (["user", "assistant"] if kept else [])
    sim.reset()
    sim.queue(Reply(text="recovered"))
    after = call(mode, "and now?")
    assert after.error is None and after.text == "recovered"
    sent = sim.chat_requests[-1].messages
    check_well_formed(sent)
    if kept:
        assert [m["role"] for m in sent] == ["user", "assistant", "user"] and sent[1]["content"] == kept
    else:
        assert [m["role"] for m in sent] == ["user"]


@pytest.mark.parametrize("mode", ["ask", "aask"])
def test_rate_limit_waits_the_named_seconds(kimi_sim_env, capsys, mode):
    sim = kimi_sim_env
    sim.fault(Fault.rate_limit(wait=1), times=1)
    sim.queue(Reply(text="after the wait"))
    started = time.monotonic()
    response = call(mode, "busy?")
    elapsed = time.monotonic() - started
    out = capsys.readouterr().out
    assert response.error is None and response.text == "after the wait"
    assert 1.0 <= elapsed < 4
    assert "retrying in 1 s (Rate limit reached (429); wait 1 s." in out
    (retry,) = [e for e in response.events if isinstance(e, Retrying)]
    assert retry.wait == 1.0 and retry.attempt == 1
    assert len(sim.chat_requests) == 2


def test_rate_limits_are_bounded_too(kimi_sim_env):
    sim = kimi_sim_env
    sim.fault(Fault.status(429, "rate_limit_reached_error", "please try again after 0.05 seconds",
                           {"Retry-After": "0.05"}), times=None)
    response = ask("busy?", **FAST, display="none")
    assert response.error_kind == "RateLimitError" and "gave up after 2 retries" in response.error
    assert len(sim.chat_requests) == 3


def test_rate_limit_over_the_cap_fails_at_once_and_names_the_wait(kimi_sim_env):
    sim = kimi_sim_env
    sim.fault(Fault.rate_limit(wait=600), times=1)
    started = time.monotonic()
    response = ask("busy?", **FAST, display="none")
    assert time.monotonic() - started < 2
    assert response.error_kind == "RateLimitError" and "wait 600 s" in response.error
    assert response.retries == 0 and len(sim.chat_requests) == 1


@pytest.mark.parametrize("mode", ["ask", "aask"])
def test_connection_refused(kimi_sim_env, monkeypatch, capsys, mode):
    monkeypatch.setenv("KIMI_BASE_URL", f"http://127.0.0.1:{closed_port()}/v1")
    started = time.monotonic()
    response = call(mode, "anyone?")
    assert time.monotonic() - started < 3
    out = capsys.readouterr().out
    assert response.error_kind == "KimiConnectionError"
    assert "Could not connect to 127.0.0.1" in response.error and "KIMI_BASE_URL" in response.error
    assert "gave up after 2 retries" in response.error
    assert len(RETRY_LINE.findall(out)) == 2 and "Traceback" not in out
    assert get_session().conversation.messages == []
    monkeypatch.setenv("KIMI_BASE_URL", kimi_sim_env.base_url)
    kimi_sim_env.queue(Reply(text="back"))
    assert call(mode, "again").text == "back"
    assert [m["role"] for m in kimi_sim_env.chat_requests[-1].messages] == ["user"]


def test_a_stall_longer_than_every_retry_is_bounded(kimi_sim_env):
    """A server that never answers: three read timeouts, then one clear message."""
    kimi_sim_env.fault(Fault.stall(10, after=0), times=None)
    started = time.monotonic()
    response = ask("hello?", **{**FAST, "timeout_read": 0.3}, display="none")
    assert time.monotonic() - started < 3
    assert response.error_kind == "KimiTimeoutError" and "gave up after 2 retries" in response.error
    assert "Kimi.timeout_read" in response.error and len(kimi_sim_env.chat_requests) == 3


def test_non_streaming_faults_say_the_same(kimi_sim_env):
    sim = kimi_sim_env
    sim.fault(Fault.cut(after=0), times=1)
    sim.queue(Reply(text="whole"), Reply(text="whole"))
    response = ask("x", **FAST, stream=False, display="none")
    assert response.error is None and response.text == "whole" and response.retries == 1
    sim.fault(Fault.malformed(), times=1)
    sim.queue(Reply(text="whole"))
    response = ask("x", **FAST, stream=False, display="none")
    assert response.error_kind == "MalformedResponseError" and "not JSON" in response.error


async def test_cancelled_aask_keeps_the_partial_answer_and_the_session_usable(kimi_sim_env):
    sim = kimi_sim_env
    sim.queue(Reply(chunks=[f"w{i} " for i in range(200)], chunk_delay=0.02))
    task = asyncio.ensure_future(aask("long story", history=True, thinking=False))
    deadline = time.monotonic() + 5
    while not sim.chat_requests and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 1.0
    last = get_session().last
    assert last.error_kind == "Interrupted" and last.text.startswith("w0 w1 ") and "w199" not in last.text
    sim.queue(Reply(text="next"))
    response = await aask("go on", history=True, thinking=False)
    assert response.text == "next"
    sent = sim.chat_requests[-1].messages
    check_well_formed(sent)
    assert [m["role"] for m in sent] == ["user", "assistant", "user"] and sent[1]["content"] == last.text
