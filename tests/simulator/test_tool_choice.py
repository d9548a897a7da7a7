"""tool_choice by the contract: "auto", "none" and "required" only, and what each one yields."""

from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema
import pytest

from kimi_jupyter.testing import KimiSimulator, Reply, ToolCall

from .wire import WEATHER, post, refused, tool, user

ASK = [user("What is the weather in Beijing today?")]


def _body(**extra: Any) -> dict[str, Any]:
    return {"model": "kimi-k3", "messages": ASK, **extra}


@pytest.mark.parametrize(("extra", "fragment"), [
    ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
     "naming a function is not supported"),
    ({"tools": [WEATHER], "tool_choice": "bogus"}, "tool_choice must be"),
    ({"tools": [WEATHER], "tool_choice": "any"}, "tool_choice must be"),
    ({"tool_choice": "required"}, "needs at least one tool"),
    ({"tools": [], "tool_choice": "required"}, "empty 'tools' list"),
    ({"tools": [], "tool_choice": "none"}, "empty 'tools' list"),
])
def test_unsupported_tool_choice_is_refused(sim: KimiSimulator, http: httpx.Client, extra: dict[str, Any],
                                            fragment: str) -> None:
    refused(post(http, sim, _body(**extra)), fragment)


@pytest.mark.parametrize("choice", ["auto", "none"])
def test_auto_and_none_need_no_tools(sim: KimiSimulator, http: httpx.Client, choice: str) -> None:
    answer = post(http, sim, _body(tool_choice=choice))
    assert answer.status == 200 and answer.message["content"] and not answer.calls
    assert answer.finish_reason == "stop"


@pytest.mark.parametrize("stream", [False, True], ids=["nostream", "stream"])
def test_required_calls_an_offered_tool_with_valid_arguments(sim: KimiSimulator, http: httpx.Client,
                                                             stream: bool) -> None:
    answer = post(http, sim, _body(tools=[WEATHER], tool_choice="required"), stream=stream)
    assert answer.status == 200 and answer.finish_reason == "tool_calls"
    (call,) = answer.calls
    assert call["function"]["name"] == "get_weather" and call["id"]
    arguments = json.loads(call["function"]["arguments"])
    jsonschema.validate(arguments, WEATHER["function"]["parameters"])


def test_required_picks_the_tool_the_question_is_about(sim: KimiSimulator, http: httpx.Client) -> None:
    stock = tool("get_stock_price", description="Get the stock price of a company.")
    answer = post(http, sim, _body(tools=[stock, WEATHER], tool_choice="required"))
    assert [c["function"]["name"] for c in answer.calls] == ["get_weather"]
    answer = post(http, sim, {"model": "kimi-k3", "messages": [user("Stock price of ACME?")],
                              "tools": [WEATHER, stock], "tool_choice": "required"})
    assert [c["function"]["name"] for c in answer.calls] == ["get_stock_price"]


def test_required_arguments_follow_nested_schemas(sim: KimiSimulator, http: httpx.Client) -> None:
    parameters = {
        "type": "object",
        "properties": {
            "location": {"type": "object", "properties": {"lat": {"type": "number", "minimum": -90, "maximum": 90},
                                                          "lon": {"type": "number"}}, "required": ["lat", "lon"]},
            "days": {"type": "integer", "minimum": 1, "maximum": 14},
            "fields": {"type": "array", "items": {"enum": ["rain", "wind"]}, "minItems": 2},
        },
        "required": ["location", "days", "fields"],
        "additionalProperties": False,
    }
    answer = post(http, sim, _body(tools=[tool("forecast", parameters)], tool_choice="required"))
    jsonschema.validate(json.loads(answer.calls[0]["function"]["arguments"]), parameters)


def test_required_adds_a_call_to_a_scripted_text_reply(sim: KimiSimulator, http: httpx.Client) -> None:
    sim.queue(Reply(text="I would rather not."))
    answer = post(http, sim, _body(tools=[WEATHER], tool_choice="required"))
    assert answer.finish_reason == "tool_calls" and answer.calls[0]["function"]["name"] == "get_weather"


@pytest.mark.parametrize("stream", [False, True], ids=["nostream", "stream"])
def test_none_never_calls_even_when_a_call_was_scripted(sim: KimiSimulator, http: httpx.Client,
                                                        stream: bool) -> None:
    sim.queue(Reply(tool_calls=[ToolCall("get_weather", {"city": "Beijing"})]))
    answer = post(http, sim, _body(tools=[WEATHER], tool_choice="none"), stream=stream)
    assert answer.status == 200 and not answer.calls and answer.finish_reason == "stop"
    assert answer.message["content"]


def test_auto_keeps_the_scripted_answer(sim: KimiSimulator, http: httpx.Client) -> None:
    sim.queue(Reply(tool_calls=[ToolCall("get_weather", {"city": "Beijing"})]), Reply(text="Sunny."))
    first = post(http, sim, _body(tools=[WEATHER], tool_choice="auto"))
    assert first.calls[0]["function"]["name"] == "get_weather"
    second = post(http, sim, _body(tools=[WEATHER]))
    assert not second.calls and second.message["content"] == "Sunny."


def test_gateways_do_not_apply_moonshots_tool_choice_rules(sim: KimiSimulator, http: httpx.Client) -> None:
    body = {"model": "kimi-k2.5", "messages": ASK, "tools": [WEATHER],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}}}
    assert http.post(sim.url_for("vllm") + "/chat/completions", json=body).status_code == 200
