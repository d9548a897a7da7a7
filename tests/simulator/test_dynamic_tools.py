"""Dynamic tools (declared inside system messages) and tool definitions by the contract."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from kimi_jupyter.testing import KimiSimulator

from .wire import WEATHER, post, refused, tool, user

ASK = user("What is the weather in Beijing?")


def declare(*tools: Any, content: Any = "") -> dict[str, Any]:
    return {"role": "system", "content": content, "tools": list(tools)}


def _body(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "kimi-k3", "messages": list(messages), **extra}


@pytest.mark.parametrize("messages", [
    [declare(WEATHER), ASK],
    [{"role": "system", "content": "Be brief."}, user("hi"), {"role": "assistant", "content": "Hello!"},
     declare(WEATHER), ASK],
    [ASK, declare(WEATHER)],
    [declare(WEATHER, content=None), ASK],
], ids=["first", "later", "last", "null-content"])
@pytest.mark.parametrize("stream", [False, True], ids=["nostream", "stream"])
def test_a_dynamic_tool_can_be_called(sim: KimiSimulator, http: httpx.Client, messages: list[dict[str, Any]],
                                      stream: bool) -> None:
    answer = post(http, sim, _body(*messages, tool_choice="required"), stream=stream)
    assert answer.status == 200 and answer.finish_reason == "tool_calls"
    assert answer.calls[0]["function"]["name"] == "get_weather"


def test_dynamic_and_global_tools_are_offered_alike(sim: KimiSimulator, http: httpx.Client) -> None:
    stock = tool("get_stock_price", description="Get the stock price of a company.")
    answer = post(http, sim, _body(declare(WEATHER), ASK, tools=[stock], tool_choice="required"))
    assert answer.calls[0]["function"]["name"] == "get_weather"
    listed = post(http, sim, _body(declare(tool("get_time")), declare(tool("get_news")), user("hi"),
                                   tools=[stock]))
    assert "tools offered: get_stock_price, get_time, get_news" in listed.message["content"]


def test_a_tool_call_to_a_dynamic_tool_can_be_answered(sim: KimiSimulator, http: httpx.Client) -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Beijing"}'}}
    history = [declare(WEATHER), ASK, {"role": "assistant", "content": "", "tool_calls": [call]},
               {"role": "tool", "tool_call_id": "call_1", "content": "Sunny, 26 C"}]
    answer = post(http, sim, {"model": "kimi-k3", "messages": history, "thinking": {"type": "disabled"}})
    assert answer.status == 200 and answer.message["content"]


@pytest.mark.parametrize(("messages", "extra", "fragment"), [
    ([{"role": "user", "content": "hi", "tools": [WEATHER]}, ASK], {}, "only be declared in system messages"),
    ([user("hi"), {"role": "assistant", "content": "hello", "tools": [WEATHER]}, ASK], {},
     "only be declared in system messages"),
    ([declare(WEATHER, content="not empty"), ASK], {}, "content must be empty"),
    ([{"role": "system", "content": "", "tools": {"type": "function"}}, ASK], {}, "must be a list"),
    ([declare(None), ASK], {}, "has no 'function' object"),
    ([declare({"function": {"name": "good_tool", "parameters": {"type": "object"}}}), ASK], {},
     "must have type 'function'"),
    ([declare({"type": "function"}), ASK], {}, "has no 'function' object"),
    ([declare({"type": "function", "function": {"description": "no name"}}), ASK], {}, "invalid tool name"),
    ([declare(tool("1bad_name")), ASK], {}, "invalid tool name"),
    ([declare(tool("bad@name")), ASK], {}, "invalid tool name"),
    ([declare(tool("")), ASK], {}, "invalid tool name"),
    ([declare(tool("a" * 257)), ASK], {}, "invalid tool name"),
    ([declare(tool("good_tool"), {"type": "bogus", "function": {"name": "x"}}), ASK], {}, "type 'function'"),
    ([declare(tool("dup"), tool("dup")), ASK], {}, "duplicate tool name 'dup'"),
    ([declare(tool("dup")), declare(tool("dup")), ASK], {}, "duplicate tool name 'dup'"),
    ([declare(tool("dup")), ASK], {"tools": [tool("dup")]}, "duplicate tool name 'dup'"),
    ([ASK], {"tools": [tool("dup"), tool("dup")]}, "duplicate tool name 'dup'"),
    ([{"role": "tool", "content": "some result"}, ASK], {}, "tool_call_id is missing"),
], ids=["in-user", "in-assistant", "with-content", "not-a-list", "item-not-object", "missing-type",
        "missing-function", "missing-name", "name-starts-with-digit", "name-special-char", "name-empty",
        "name-too-long", "bogus-type", "duplicate-in-one", "duplicate-across", "duplicate-global-dynamic",
        "duplicate-global", "tool-without-call-id"])
def test_malformed_tools_are_refused(sim: KimiSimulator, http: httpx.Client, messages: list[dict[str, Any]],
                                     extra: dict[str, Any], fragment: str) -> None:
    refused(post(http, sim, _body(*messages, **extra)), fragment)


def test_dynamic_tools_count_in_prompt_tokens(sim: KimiSimulator, http: httpx.Client) -> None:
    bare = post(http, sim, _body({"role": "system", "content": ""}, ASK))
    declared = post(http, sim, _body(declare(WEATHER), ASK))
    assert declared.usage["prompt_tokens"] > bare.usage["prompt_tokens"]
