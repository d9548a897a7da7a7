import json

from kimi_jupyter.client.chunks import TurnState, parse_usage
from kimi_jupyter.events import Done, ReasoningDelta, TextDelta, ToolCallRequested, Usage
from kimi_jupyter.providers import Prices


def chunk(delta=None, finish=None, usage=None, choice_usage=None, choices=True):
    c = {"id": "x", "object": "chat.completion.chunk", "model": "kimi-k2.5"}
    if choices:
        choice = {"index": 0, "delta": delta or {}, "finish_reason": finish}
        if choice_usage:
            choice["usage"] = choice_usage
        c["choices"] = [choice]
    else:
        c["choices"] = []
    if usage:
        c["usage"] = usage
    return c


def run(chunks, prices=None):
    state = TurnState(prices)
    events = []
    for c in chunks:
        events.extend(state.handle_chunk(c))
    events.extend(state.finish())
    return events


def test_reasoning_content_then_content():
    events = run([chunk({"role": "assistant", "reasoning_content": "hmm"}), chunk({"content": "Hi"}), chunk(finish="stop")])
    assert events[:2] == [ReasoningDelta("hmm"), TextDelta("Hi")]
    assert events[-1] == Done("stop")


def test_reasoning_field_wins_over_details_never_both():
    delta = {"reasoning": "abc", "reasoning_details": [{"type": "reasoning.text", "text": "abc"}]}
    events = run([chunk(delta), chunk(finish="stop")])
    assert [e for e in events if isinstance(e, ReasoningDelta)] == [ReasoningDelta("abc")]


def test_reasoning_details_alone_are_read():
    events = run([chunk({"reasoning_details": [{"type": "reasoning.text", "text": "x"}, {"text": "y"}]}), chunk(finish="stop")])
    assert ReasoningDelta("xy") in events


def test_usage_inside_choice_is_not_double_counted_with_trailing_top_level():
    u = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    events = run([chunk({"content": "a"}), chunk(finish="stop", choice_usage=u, usage=u), chunk(choices=False, usage=u)])
    usages = [e for e in events if isinstance(e, Usage)]
    assert usages == [Usage(prompt=10, completion=5, total=15)]


def test_no_usage_is_not_reported_rather_than_zero():
    events = run([chunk({"content": "a"}), chunk(finish="stop")])
    usage = next(e for e in events if isinstance(e, Usage))
    assert usage.reported is False and usage.prompt is None
    assert "not reported" in usage.describe()


def test_cached_and_reasoning_tokens_both_shapes_and_cost():
    prices = Prices(input=4.0, output=21.0, input_cached=0.7, currency="CNY")
    top = parse_usage({"prompt_tokens": 1000, "completion_tokens": 100, "cached_tokens": 400}, prices)
    nested = parse_usage({"prompt_tokens": 1000, "completion_tokens": 100,
                          "prompt_tokens_details": {"cached_tokens": 400},
                          "completion_tokens_details": {"reasoning_tokens": 60}}, prices)
    assert top.cached == nested.cached == 400
    assert nested.reasoning == 60
    expected = (600 * 4.0 + 400 * 0.7 + 100 * 21.0) / 1e6
    assert abs(top.cost - expected) < 1e-12 and top.currency == "CNY"
    assert top.total == 1100


def test_null_details_are_tolerated():
    u = parse_usage({"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3,
                     "completion_tokens_details": None, "prompt_tokens_details": None}, None)
    assert u.cached is None and u.reasoning is None and u.cost is None


def test_tool_call_fragments_joined_by_index_and_finalised_at_finish():
    deltas = [
        {"tool_calls": [{"index": 0, "id": "functions.get_weather:0", "type": "function",
                         "function": {"name": "get_weather", "arguments": ""}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]},
        {"tool_calls": [{"index": 1, "id": "functions.get_time:1", "type": "function",
                         "function": {"name": "get_time", "arguments": '{"tz"'}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '"Beijing"}'}}]},
        {"tool_calls": [{"index": 1, "function": {"arguments": ': "UTC"}'}}]},
    ]
    state = TurnState()
    emitted = []
    for d in deltas:
        emitted.extend(state.handle_chunk(chunk(d)))
    assert not [e for e in emitted if isinstance(e, ToolCallRequested)], "not final before finish_reason"
    emitted.extend(state.handle_chunk(chunk(finish="tool_calls")))
    calls = [e for e in emitted if isinstance(e, ToolCallRequested)]
    assert [(c.id, c.name, json.loads(c.arguments)) for c in calls] == [
        ("functions.get_weather:0", "get_weather", {"city": "Beijing"}),
        ("functions.get_time:1", "get_time", {"tz": "UTC"}),
    ]
    assert state.finish()[-1] == Done("tool_calls")


def test_cut_during_tool_call_drops_incomplete_call():
    state = TurnState()
    state.handle_chunk(chunk({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": "{"}}]}))
    events = state.finish(cut=True)
    assert not [e for e in events if isinstance(e, ToolCallRequested)]
    assert not [e for e in events if isinstance(e, Done)]
