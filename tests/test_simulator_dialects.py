"""Wire shapes of every simulator dialect, streamed and not (against the real server)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kimi_jupyter.testing import KimiSimulator, Reply, ToolCall

KEY = "sk-test-simulator"
AUTH = {"Authorization": f"Bearer {KEY}"}
HTTP = httpx.Client(timeout=10)  # one client: building an SSL context per call would dominate the run time


@pytest.fixture(scope="module", autouse=True)
def _close_http() -> Iterator[None]:
    yield
    HTTP.close()


MODEL_FOR = {
    "moonshot": "kimi-k2.5",
    "openrouter": "moonshotai/kimi-k2.5",
    "vllm": "kimi-k2.5",
    "llamacpp": "kimi-k2.5",
    "cloudsway": "kimi-k2.5",
}


def parse_sse(raw: str) -> list[Any]:
    events: list[Any] = []
    for line in raw.splitlines():
        if line.startswith("data: "):
            payload = line[len("data: ") :]
            events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


def chat(url: str, body: dict[str, Any]) -> httpx.Response:
    return HTTP.post(url + "/chat/completions", json=body, headers=AUTH, timeout=10)


def stream(url: str, body: dict[str, Any]) -> tuple[list[Any], str]:
    with HTTP.stream(
        "POST", url + "/chat/completions", json={**body, "stream": True}, headers=AUTH, timeout=10
    ) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        raw = r.read().decode()
    return parse_sse(raw), raw


def ask(dialect: str, text: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"model": MODEL_FOR[dialect], "messages": [{"role": "user", "content": text}], **extra}


def chunks_of(events: list[Any]) -> list[dict[str, Any]]:
    return [e for e in events if isinstance(e, dict)]


def deltas(events: list[Any]) -> list[dict[str, Any]]:
    return [c["choices"][0]["delta"] for c in chunks_of(events) if c["choices"]]


@pytest.fixture
def sim() -> Any:
    with KimiSimulator(api_key=KEY) as simulator:
        yield simulator


def test_every_chunk_has_the_openai_chunk_fields(sim: KimiSimulator) -> None:
    for dialect in MODEL_FOR:
        sim.queue(Reply(text="Hello there", reasoning="Think."))
        events, raw = stream(sim.url_for(dialect), ask(dialect))
        assert events[-1] == "[DONE]" and raw.rstrip().endswith("data: [DONE]")
        for chunk in chunks_of(events):
            assert chunk["object"] == "chat.completion.chunk"
            assert chunk["id"] and isinstance(chunk["created"], int) and chunk["model"] == MODEL_FOR[dialect]
            for choice in chunk["choices"]:
                assert {"index", "delta", "finish_reason"} <= set(choice)


def test_moonshot_streams_reasoning_content_first_and_usage_inside_the_choice(
    kimi_sim: KimiSimulator,
) -> None:
    kimi_sim.queue(Reply(text="Hello world, I am Kimi.", reasoning="The user greets me; greet back."))
    events, _ = stream(kimi_sim.base_url, ask("moonshot"))
    ds = deltas(events)
    assert ds[0] == {"role": "assistant", "content": ""}
    kinds = [
        "r" if "reasoning_content" in d else "c" for d in ds if d.get("reasoning_content") or d.get("content")
    ]
    assert (
        kinds == sorted(kinds, reverse=True) and "r" in kinds and "c" in kinds
    )  # all reasoning before content
    assert "".join(d.get("reasoning_content", "") for d in ds) == "The user greets me; greet back."
    assert "".join(d.get("content") or "" for d in ds) == "Hello world, I am Kimi."
    final = chunks_of(events)[-1]
    assert final["choices"][0]["finish_reason"] == "stop"
    usage = final["choices"][0]["usage"]
    assert set(usage) == {"prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens"}
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert all("usage" not in c for c in chunks_of(events))  # never top level


def test_moonshot_non_stream_has_reasoning_content_and_top_level_usage(kimi_sim: KimiSimulator) -> None:
    kimi_sim.queue(Reply(text="Answer", reasoning="Reasoning"))
    body = chat(kimi_sim.base_url, ask("moonshot")).json()
    assert body["object"] == "chat.completion"
    message = body["choices"][0]["message"]
    assert message == {"role": "assistant", "content": "Answer", "reasoning_content": "Reasoning"}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["cached_tokens"] == 0
    assert body["usage"]["completion_tokens"] == 2 + 3  # ceil(6/4) + ceil(9/4)


@pytest.mark.parametrize("stream_it", [True, False])
def test_moonshot_thinking_disabled_sends_no_reasoning(kimi_sim: KimiSimulator, stream_it: bool) -> None:
    kimi_sim.queue(Reply(text="Plain", reasoning="hidden"))
    body = ask("moonshot", thinking={"type": "disabled"})
    if stream_it:
        _, raw = stream(kimi_sim.base_url, body)
        assert "reasoning" not in raw
    else:
        message = chat(kimi_sim.base_url, body).json()["choices"][0]["message"]
        assert "reasoning_content" not in message and message["content"] == "Plain"


def test_models_that_cannot_think_send_no_reasoning_and_thinking_models_always_do(
    kimi_sim: KimiSimulator,
) -> None:
    kimi_sim.queue(Reply(text="a", reasoning="r"), Reply(text="b", reasoning="r"))
    old = chat(kimi_sim.base_url, {"model": "moonshot-v1-8k", "messages": [{"role": "user", "content": "x"}]})
    assert "reasoning_content" not in old.json()["choices"][0]["message"]
    body = {
        "model": "kimi-k2-thinking",
        "thinking": {"type": "disabled"},
        "messages": [{"role": "user", "content": "x"}],
    }
    assert chat(kimi_sim.base_url, body).json()["choices"][0]["message"]["reasoning_content"] == "r"


def test_openrouter_streams_comments_reasoning_details_and_duplicate_trailing_usage(
    sim: KimiSimulator,
) -> None:
    sim.queue(Reply(text="Hi!", reasoning="Say hi."))
    events, raw = stream(sim.url_for("openrouter"), ask("openrouter"))
    assert raw.startswith(": OPENROUTER PROCESSING\n")
    ds = deltas(events)
    reasoning = [d for d in ds if d.get("reasoning")]
    assert "".join(d["reasoning"] for d in reasoning) == "Say hi."
    assert all(d["reasoning_details"][0]["type"] == "reasoning.text" for d in reasoning)
    assert "".join(d["reasoning_details"][0]["text"] for d in reasoning) == "Say hi."
    assert "".join(d.get("content") or "" for d in ds) == "Hi!"
    chunks = chunks_of(events)
    final, trailing = chunks[-2], chunks[-1]
    assert (
        final["choices"][0]["finish_reason"] == "stop"
        and final["choices"][0]["native_finish_reason"] == "stop"
    )
    assert trailing["choices"] == [] and trailing["usage"] == final["usage"]
    assert [c for c in chunks if "usage" in c] == [final, trailing]  # the same usage twice: never add them up
    usage = final["usage"]
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 2
    assert usage["prompt_tokens_details"]["cached_tokens"] == 0
    assert final["model"] == "moonshotai/kimi-k2.5"


@pytest.mark.parametrize("switch", [{"reasoning": {"enabled": False}}, {"reasoning": {"effort": "none"}}])
def test_openrouter_reasoning_switch_turns_thinking_off(sim: KimiSimulator, switch: dict[str, Any]) -> None:
    sim.queue(Reply(text="x", reasoning="r"))
    _, raw = stream(sim.url_for("openrouter"), ask("openrouter", **switch))
    assert '"reasoning"' not in raw


def test_openrouter_non_stream_message_has_reasoning_and_details(sim: KimiSimulator) -> None:
    sim.queue(Reply(text="x", reasoning="why"))
    body = chat(sim.url_for("openrouter"), ask("openrouter")).json()
    choice = body["choices"][0]
    assert choice["message"]["reasoning"] == "why"
    assert choice["message"]["reasoning_details"][0] == {
        "type": "reasoning.text",
        "text": "why",
        "format": "unknown",
        "index": 0,
    }
    assert choice["native_finish_reason"] == "stop"
    assert body["usage"]["completion_tokens_details"]["reasoning_tokens"] == 1


def test_vllm_sends_usage_only_when_include_usage_is_set(sim: KimiSimulator) -> None:
    sim.queue(Reply(text="one", reasoning="r1"), Reply(text="two"))
    events, raw = stream(sim.url_for("vllm"), ask("vllm"))
    assert "usage" not in raw
    assert "".join(d.get("reasoning") or "" for d in deltas(events)) == "r1"
    events, _ = stream(sim.url_for("vllm"), ask("vllm", stream_options={"include_usage": True}))
    chunks = chunks_of(events)
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 1
    assert [c for c in chunks if "usage" in c] == [chunks[-1]]


def test_vllm_switches_thinking_by_chat_template_kwargs_and_ignores_unknown_fields(
    sim: KimiSimulator,
) -> None:
    sim.queue(Reply(text="t", reasoning="hidden"))
    body = ask(
        "vllm", chat_template_kwargs={"thinking": False}, temperature=0.2, top_p=0.5, whatever={"x": 1}
    )
    message = chat(sim.url_for("vllm"), body).json()["choices"][0]["message"]
    assert message["content"] == "t" and not message.get("reasoning")


def test_llamacpp_never_streams_usage_and_has_no_reasoning(sim: KimiSimulator) -> None:
    sim.queue(Reply(text="hey", reasoning="r"), Reply(text="hey", reasoning="r"))
    body = ask("llamacpp", stream_options={"include_usage": True}, thinking={"type": "enabled"})
    _, raw = stream(sim.url_for("llamacpp"), body)
    assert "usage" not in raw and "reasoning" not in raw
    response = chat(sim.url_for("llamacpp"), body).json()
    assert response["usage"]["total_tokens"] > 0
    assert response["choices"][0]["message"] == {"role": "assistant", "content": "hey"}


def test_llamacpp_serves_any_model_name(sim: KimiSimulator) -> None:
    body = {"model": "whatever.gguf", "messages": [{"role": "user", "content": "x"}]}
    assert chat(sim.url_for("llamacpp"), body).status_code == 200


def test_cloudsway_takes_an_endpoint_path_and_sends_null_extras(sim: KimiSimulator) -> None:
    url = sim.url_for("cloudsway", endpoint="MaaS_Kimi_K2.5_20260127")
    assert url.endswith("/cloudsway/v1/ai/MaaS_Kimi_K2.5_20260127")
    sim.queue(Reply(text="ok", reasoning="because"), Reply(text="ok", reasoning="because"))
    events, _ = stream(url, ask("cloudsway"))
    chunks = chunks_of(events)
    assert chunks[0]["choices"] == []  # an initial chunk with empty choices
    assert "".join(d.get("reasoning_content") or "" for d in deltas(events)) == "because"
    assert chunks[-1]["usage"]["prompt_tokens_details"]["cached_tokens"] == 0
    assert chunks[-1]["choices"][0]["native_finish_reason"] is None
    body = chat(url, ask("cloudsway")).json()
    message = body["choices"][0]["message"]
    assert message["reasoning_content"] == "because" and message["reasoning_details"] is None
    assert message["function_call"] is None and body["choices"][0]["native_finish_reason"] is None
    assert body["usage"]["completion_tokens_details"] is None
    assert sim.chat_requests[-1].dialect == "cloudsway"


TOOL_IDS = {
    "moonshot": (r"functions\.get_weather:0", r"functions\.get_time:1"),
    "cloudsway": (r"get_weather:0", r"get_time:1"),
    "vllm": (r"functions\.get_weather:0", r"functions\.get_time:1"),
    "openrouter": (r"call_[0-9a-f]{24}", r"call_[0-9a-f]{24}"),
    "llamacpp": (r"call_[0-9a-f]{24}", r"call_[0-9a-f]{24}"),
}


@pytest.mark.parametrize("dialect", sorted(TOOL_IDS))
def test_parallel_tool_calls_stream_as_fragments_with_dialect_ids(sim: KimiSimulator, dialect: str) -> None:
    weather = {"city": "Paris", "unit": "celsius"}
    sim.queue(
        Reply(
            reasoning="I need the weather and the time.",
            tool_calls=[ToolCall("get_weather", weather), ToolCall("get_time", '{"tz": "Europe/Paris"}')],
        )
    )
    events, _ = stream(sim.url_for(dialect), ask(dialect, "weather and time in Paris?"))
    calls: dict[int, dict[str, Any]] = {}
    fragments: dict[int, int] = {}
    for delta in deltas(events):
        for call in delta.get("tool_calls") or ():
            index = call["index"]
            if index not in calls:
                assert call["type"] == "function" and call["function"]["arguments"] == ""
                calls[index] = {"id": call["id"], "name": call["function"]["name"], "arguments": ""}
                fragments[index] = 0
            else:
                assert set(call) == {"index", "function"} and set(call["function"]) == {"arguments"}
                calls[index]["arguments"] += call["function"]["arguments"]
                fragments[index] += 1
    assert [calls[i]["name"] for i in sorted(calls)] == ["get_weather", "get_time"]
    assert json.loads(calls[0]["arguments"]) == weather
    assert calls[1]["arguments"] == '{"tz": "Europe/Paris"}'
    assert all(count >= 2 for count in fragments.values())
    for index, pattern in enumerate(TOOL_IDS[dialect]):
        assert re.fullmatch(pattern, calls[index]["id"]), calls[index]["id"]
    assert calls[0]["id"] != calls[1]["id"]
    finishes = [c["choices"][0]["finish_reason"] for c in chunks_of(events) if c["choices"]]
    assert finishes[-1] == "tool_calls"


def test_non_stream_tool_calls_and_ids_that_continue_across_the_conversation(kimi_sim: KimiSimulator) -> None:
    kimi_sim.queue(Reply(reasoning="look up", tool_calls=[ToolCall("get_weather", {"city": "Oslo"})]))
    first = chat(kimi_sim.base_url, ask("moonshot", "weather in Oslo")).json()
    choice = first["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["id"] == "functions.get_weather:0" and call["function"]["arguments"] == '{"city": "Oslo"}'
    history = [
        {"role": "user", "content": "weather in Oslo"},
        {**choice["message"]},
        {"role": "tool", "tool_call_id": call["id"], "name": "get_weather", "content": "-3 C"},
        {"role": "user", "content": "and Bergen?"},
    ]
    kimi_sim.queue(Reply(reasoning="again", tool_calls=[ToolCall("get_weather", {"city": "Bergen"})]))
    second = chat(kimi_sim.base_url, {"model": "kimi-k2.5", "messages": history}).json()
    assert second["choices"][0]["message"]["tool_calls"][0]["id"] == "functions.get_weather:1"


def test_explicit_tool_call_id_and_chunks_are_sent_as_given(kimi_sim: KimiSimulator) -> None:
    kimi_sim.queue(Reply(chunks=["Hel", "lo ", "wor", "ld"], reasoning_chunks=["a", "b"]))
    events, _ = stream(kimi_sim.base_url, ask("moonshot"))
    ds = deltas(events)
    assert [d["content"] for d in ds if d.get("content")] == ["Hel", "lo ", "wor", "ld"]
    assert [d["reasoning_content"] for d in ds if "reasoning_content" in d] == ["a", "b"]
    kimi_sim.queue(
        Reply(text="abcdefghij", chunk_chars=3, tool_calls=[ToolCall("f_x", "{}", id="my-id")], reasoning="r")
    )
    events, _ = stream(kimi_sim.base_url, ask("moonshot"))
    ds = deltas(events)
    assert [d["content"] for d in ds if d.get("content")] == ["abc", "def", "ghi", "j"]
    assert [c["id"] for d in ds for c in d.get("tool_calls") or () if "id" in c] == ["my-id"]


def test_reply_overrides_model_finish_reason_and_usage(kimi_sim: KimiSimulator) -> None:
    kimi_sim.queue(
        Reply(
            text="x",
            model="kimi-k2.5-custom",
            finish_reason="length",
            usage={"prompt_tokens": 1000, "cached_tokens": 600},
        )
    )
    body = chat(kimi_sim.base_url, ask("moonshot")).json()
    assert body["model"] == "kimi-k2.5-custom" and body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["prompt_tokens"] == 1000 and body["usage"]["cached_tokens"] == 600
    assert body["usage"]["total_tokens"] == 1000 + body["usage"]["completion_tokens"]


def test_max_tokens_cuts_the_answer_with_finish_reason_length(kimi_sim: KimiSimulator) -> None:
    kimi_sim.queue(Reply(text="x" * 400, reasoning="y" * 40))
    body = chat(kimi_sim.base_url, ask("moonshot", max_tokens=30)).json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "length"
    assert choice["message"]["reasoning_content"] == "y" * 40
    assert choice["message"]["content"] == "x" * 80  # 30 - 10 reasoning tokens = 20 tokens = 80 bytes
    assert body["usage"]["completion_tokens"] == 30


def test_cached_tokens_model_a_shared_message_prefix(kimi_sim: KimiSimulator) -> None:
    history = [
        {"role": "system", "content": "You are Kimi." * 20},
        {"role": "user", "content": "first question"},
    ]
    first = chat(kimi_sim.base_url, {"model": "kimi-k2.5", "messages": history}).json()
    assert first["usage"]["cached_tokens"] == 0
    answer = first["choices"][0]["message"]
    follow = [
        *history,
        {"role": "assistant", "content": answer["content"]},
        {"role": "user", "content": "second"},
    ]
    second = chat(kimi_sim.base_url, {"model": "kimi-k2.5", "messages": follow}).json()
    assert second["usage"]["cached_tokens"] == first["usage"]["prompt_tokens"]
    assert second["usage"]["prompt_tokens"] > second["usage"]["cached_tokens"]
    kimi_sim.reset()
    assert (
        chat(kimi_sim.base_url, {"model": "kimi-k2.5", "messages": follow}).json()["usage"]["cached_tokens"]
        == 0
    )


def test_models_lists_each_dialects_ids_and_can_be_configured() -> None:
    with KimiSimulator(api_key=KEY) as sim:
        ids = [m["id"] for m in HTTP.get(sim.base_url + "/models", headers=AUTH).json()["data"]]
        for model in (
            "kimi-k2.5",
            "kimi-k2-thinking",
            "kimi-k2-thinking-turbo",
            "moonshot-v1-8k",
            "kimi-latest",
        ):
            assert model in ids
        listing = HTTP.get(sim.url_for("openrouter") + "/models", headers=AUTH).json()
        assert listing["object"] == "list" and "moonshotai/kimi-k2.5" in [m["id"] for m in listing["data"]]
        assert listing["data"][0]["object"] == "model"
        one = HTTP.get(sim.base_url + "/models/kimi-k2.5", headers=AUTH)
        assert one.status_code == 200 and one.json()["id"] == "kimi-k2.5"
        assert HTTP.get(sim.base_url + "/models/nope", headers=AUTH).status_code == 404
    with KimiSimulator(models=["my-kimi"]) as sim:
        assert [m["id"] for m in HTTP.get(sim.base_url + "/models").json()["data"]] == ["my-kimi"]
        assert (
            chat(
                sim.base_url, {"model": "kimi-k2.5", "messages": [{"role": "user", "content": "x"}]}
            ).status_code
            == 404
        )
    with KimiSimulator(models={"openrouter": ["moonshotai/kimi-k3"]}) as sim:
        assert [m["id"] for m in HTTP.get(sim.url_for("openrouter") + "/models").json()["data"]] == [
            "moonshotai/kimi-k3"
        ]
        assert "kimi-k2.5" in [m["id"] for m in HTTP.get(sim.base_url + "/models").json()["data"]]


def test_default_dialect_is_served_at_v1(sim: KimiSimulator) -> None:
    with KimiSimulator(dialect="openrouter") as other:
        other.queue(Reply(text="x", reasoning="r"))
        _, raw = stream(other.base_url, ask("openrouter"))
        assert raw.startswith(": OPENROUTER PROCESSING")
        assert other.requests[0].dialect == "openrouter"
    assert sim.url_for("moonshot").endswith("/moonshot/v1")
    sim.queue(Reply(text="x", reasoning="r"))
    events, _ = stream(sim.url_for("moonshot"), ask("moonshot"))
    assert any("reasoning_content" in d for d in deltas(events))
