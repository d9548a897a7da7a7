"""Thinking by the contract: the thinking object, effort and keep, reasoning and its tokens."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from kimi_jupyter.testing import KimiSimulator, Reply

from .wire import post, refused, user

QUESTION = [user("A farm has 35 heads and 94 legs of chickens and rabbits. How many of each? Reason step by step.")]


def _body(model: str = "kimi-k3", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": QUESTION, **extra}


@pytest.mark.parametrize("stream", [False, True], ids=["nostream", "stream"])
def test_reasoning_grows_with_effort_and_defaults_to_max(sim: KimiSimulator, http: httpx.Client,
                                                          stream: bool) -> None:
    def length(**thinking: Any) -> int:
        answer = post(http, sim, _body(thinking={"type": "enabled", "keep": "all", **thinking}), stream=stream)
        assert answer.status == 200 and answer.message["content"]
        return len(answer.reasoning)

    low, high, top, default = length(effort="low"), length(effort="high"), length(effort="max"), length()
    assert 0 < low < high < top == default


def test_the_answer_names_the_effort_in_force(sim: KimiSimulator, http: httpx.Client) -> None:
    cases = [({"effort": "low"}, {}, "low"), ({}, {}, "max"), ({}, {"reasoning_effort": "high"}, "high"),
             ({"effort": "low"}, {"reasoning_effort": "max"}, "low")]
    for thinking, extra, expected in cases:
        answer = post(http, sim, _body(thinking={"type": "enabled", **thinking}, **extra))
        assert f"thinking effort: {expected}" in answer.message["content"]
        assert answer.reasoning.startswith(f"Thinking effort: {expected}.")


def test_reasoning_effort_applies_only_when_thinking_effort_is_absent(sim: KimiSimulator,
                                                                      http: httpx.Client) -> None:
    def length(**extra: Any) -> int:
        return len(post(http, sim, _body(**extra)).reasoning)

    assert length(reasoning_effort="low") < length(reasoning_effort="max")
    assert length(thinking={"effort": "low"}, reasoning_effort="max") == length(thinking={"effort": "low"})


@pytest.mark.parametrize("model", ["kimi-k3", "kimi-k2.6", "kimi-k2.5"])
@pytest.mark.parametrize("stream", [False, True], ids=["nostream", "stream"])
def test_no_reasoning_when_thinking_is_disabled(sim: KimiSimulator, http: httpx.Client, model: str,
                                                stream: bool) -> None:
    answer = post(http, sim, _body(model, thinking={"type": "disabled", "effort": "high"}), stream=stream)
    assert answer.status == 200 and answer.message["content"] and answer.reasoning == ""
    assert "thinking effort" not in answer.message["content"]


def test_thinking_is_on_by_default(sim: KimiSimulator, http: httpx.Client) -> None:
    for extra in ({}, {"thinking": {"keep": "all"}}):
        assert post(http, sim, _body(**extra)).reasoning


@pytest.mark.parametrize(("extra", "fragment"), [
    ({"thinking": {"type": "enabled", "effort": "medium"}}, "thinking.effort"),
    ({"thinking": {"type": "enabled", "effort": 3}}, "thinking.effort"),
    ({"reasoning_effort": "extreme"}, "reasoning_effort"),
    ({"thinking": {"type": "enabled", "keep": "none"}}, "thinking.keep"),
    ({"thinking": {"keep": "after_last_user"}}, "thinking.keep"),
    ({"thinking": {"type": "sometimes"}}, "thinking.type"),
    ({"thinking": "enabled"}, "'thinking' must be an object"),
])
def test_malformed_thinking_is_refused(sim: KimiSimulator, http: httpx.Client, extra: dict[str, Any],
                                       fragment: str) -> None:
    refused(post(http, sim, _body(**extra)), fragment)


def test_disabled_thinking_ignores_keep_and_effort(sim: KimiSimulator, http: httpx.Client) -> None:
    answer = post(http, sim, _body(thinking={"type": "disabled", "keep": "none", "effort": "whatever"}))
    assert answer.status == 200 and answer.reasoning == ""


def test_k25_has_no_effort_levels(sim: KimiSimulator, http: httpx.Client) -> None:
    low = post(http, sim, _body("kimi-k2.5", thinking={"type": "enabled", "effort": "low"}))
    top = post(http, sim, _body("kimi-k2.5", thinking={"type": "enabled", "effort": "max"}))
    assert low.status == top.status == 200
    assert low.reasoning == top.reasoning and "thinking effort" not in low.message["content"]


def test_scripted_reasoning_is_sent_as_scripted(sim: KimiSimulator, http: httpx.Client) -> None:
    sim.queue(Reply(text="42", reasoning="Scripted."))
    answer = post(http, sim, _body(thinking={"effort": "low"}))
    assert answer.reasoning == "Scripted." and answer.message["content"] == "42"


HISTORY = [
    user("Remember a number."),
    {"role": "assistant", "content": "Done.", "reasoning_content": "The number is 7382; I keep it to myself."},
    user("Which number?"),
]


@pytest.mark.parametrize("stream", [False, True], ids=["nostream", "stream"])
def test_kept_reasoning_counts_in_prompt_tokens(sim: KimiSimulator, http: httpx.Client, stream: bool) -> None:
    stripped = [{k: v for k, v in m.items() if k != "reasoning_content"} for m in HISTORY]
    thinking = {"type": "enabled", "keep": "all"}
    kept = post(http, sim, {"model": "kimi-k3", "messages": HISTORY, "thinking": thinking}, stream=stream)
    without = post(http, sim, {"model": "kimi-k3", "messages": stripped, "thinking": thinking}, stream=stream)
    assert kept.usage["prompt_tokens"] > without.usage["prompt_tokens"]


def test_completion_tokens_count_the_reasoning(sim: KimiSimulator, http: httpx.Client) -> None:
    sim.queue(Reply(text="ok", reasoning="r" * 400), Reply(text="ok", reasoning="r" * 400))
    on = post(http, sim, _body(thinking={"type": "enabled"}))
    off = post(http, sim, _body(thinking={"type": "disabled"}))
    assert on.usage["completion_tokens"] == off.usage["completion_tokens"] + 100
    assert on.usage["total_tokens"] == on.usage["prompt_tokens"] + on.usage["completion_tokens"]
