"""Requests to the simulator and the answers, one shape for streamed and non-streamed ones.

``post`` sends a chat request and gives back the status and a body shaped like a
non-streamed answer either way (a Moonshot stream folded: usage from the last chunk's
``choices[0].usage``), so most rules are checked in both modes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from kimi_jupyter.testing import KimiSimulator

KEY = "sk-test-simulator"


@dataclass
class Answer:
    status: int
    body: dict[str, Any]

    @property
    def message(self) -> dict[str, Any]:
        return self.body["choices"][0]["message"]

    @property
    def finish_reason(self) -> str:
        return self.body["choices"][0]["finish_reason"]

    @property
    def reasoning(self) -> str:
        return self.message.get("reasoning_content") or ""

    @property
    def calls(self) -> list[dict[str, Any]]:
        return self.message.get("tool_calls") or []

    @property
    def usage(self) -> dict[str, Any]:
        return self.body["usage"]

    @property
    def error(self) -> dict[str, Any]:
        return self.body["error"]


def post(http: httpx.Client, sim: KimiSimulator, body: dict[str, Any], *, stream: bool = False) -> Answer:
    """Send ``body`` (``stream`` set as asked); a stream is folded into one answer."""
    response = http.post(sim.base_url + "/chat/completions", json={**body, "stream": stream})
    if response.status_code != 200 or not stream:
        return Answer(response.status_code, response.json())
    return Answer(200, fold(response.text))


def fold(sse: str) -> dict[str, Any]:
    """A Moonshot stream as a non-streamed body (usage from the last chunk's ``choices[0]``)."""
    message: dict[str, Any] = {"role": "assistant", "content": ""}
    reasoning, calls, finish, usage = "", {}, None, None
    for line in sse.splitlines():
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        for choice in json.loads(line[6:])["choices"]:
            delta = choice.get("delta") or {}
            message["content"] += delta.get("content") or ""
            reasoning += delta.get("reasoning_content") or ""
            for call in delta.get("tool_calls") or ():
                slot = calls.setdefault(call["index"], {"id": None, "type": "function",
                                                         "function": {"name": "", "arguments": ""}})
                slot["id"] = call.get("id") or slot["id"]
                slot["function"]["name"] += (call.get("function") or {}).get("name") or ""
                slot["function"]["arguments"] += (call.get("function") or {}).get("arguments") or ""
            finish = choice.get("finish_reason") or finish
            usage = choice.get("usage") or usage
    if reasoning:
        message["reasoning_content"] = reasoning
    if calls:
        message["tool_calls"] = [calls[i] for i in sorted(calls)]
    return {"choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage}


def refused(answer: Answer, *fragments: str) -> None:
    """A 400 in Moonshot's error shape whose message holds every fragment."""
    assert answer.status == 400, answer.body
    assert set(answer.body) == {"error"}
    assert answer.error["type"] == "invalid_request_error"
    assert isinstance(answer.error["message"], str) and answer.error["message"]
    for fragment in fragments:
        assert fragment in answer.error["message"], answer.error["message"]


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def tool(name: str, parameters: dict[str, Any] | None = None, description: str = "A tool.") -> dict[str, Any]:
    function: dict[str, Any] = {"name": name, "description": description}
    function["parameters"] = parameters if parameters is not None else {"type": "object", "properties": {}}
    return {"type": "function", "function": function}


WEATHER = tool(
    "get_weather",
    {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
     "required": ["city", "unit"]},
    "Get the weather of a city.",
)
