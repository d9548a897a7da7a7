"""The response examples in shared/seeds parse to the right text, reasoning, usage and tools."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kimi_jupyter.client.chunks import TurnState
from kimi_jupyter.response import Response

SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"


def seed_responses(name_prefix):
    matches = sorted(SEEDS.glob(f"{name_prefix}_*.txt"))
    if not matches:
        pytest.skip("shared/seeds not present beside the repository")
    text = matches[0].read_text(encoding="utf-8")
    decoder = json.JSONDecoder()
    found, i = [], 0
    while (i := text.find("{", i)) >= 0:
        try:
            obj, end = decoder.raw_decode(text, i)
        except ValueError:
            i += 1
            continue
        if isinstance(obj, dict) and "choices" in obj:
            found.append(obj)
        i = end
    return found


def parse(body):
    state = TurnState()
    return Response().feed_all(state.handle_message(body) + state.finish())


def test_openrouter_style_seed_reasoning_field_and_reasoning_tokens():
    (body,) = seed_responses("000")
    r = parse(body)
    assert r.text.startswith(" 你好!很高兴认识你。") and "Kimi" in r.text
    assert r.reasoning.startswith(" 用户用中文打招呼") and r.reasoning.endswith("最终润色确保自然。")
    assert (r.usage.prompt, r.usage.completion, r.usage.total, r.usage.reasoning, r.usage.cached) == (38, 888, 926, 798, 0)
    assert r.finish_reason == "stop"


def test_cloudsway_seed_tool_call_reasoning_content_and_usage():
    bodies = seed_responses("002")
    assert len(bodies) == 4
    tool, answer, json_mode, partial = (parse(b) for b in bodies)
    assert tool.finish_reason == "tool_calls" and tool.text == "我来帮您计算北京和上海之间的直线距离。"
    (call,) = tool.tool_calls
    assert (call.id, call.name, json.loads(call.arguments)) == ("get_distance:0", "get_distance", {"location1": "北京", "location2": "上海"})
    assert tool.usage.prompt == 83 and tool.usage.reasoning is None and tool.usage.cached is None
    assert answer.reasoning.startswith("用户询问北京和上海的直线距离") and "1,000 公里" in answer.text
    assert (answer.usage.prompt, answer.usage.completion, answer.usage.cached) == (59, 258, 0)
    assert json.loads(json_mode.text)["text"].startswith("你好,李雷")
    assert partial.reasoning and partial.text.startswith("你好!我是 **Kimi**") and partial.usage.total == 344
