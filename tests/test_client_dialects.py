"""Our client against the simulator speaking each provider's dialect (real HTTP)."""

from __future__ import annotations

import json

import pytest

from kimi_jupyter.client import AsyncKimiClient, KimiClient
from kimi_jupyter.events import Usage
from kimi_jupyter.settings import resolve_settings
from kimi_jupyter.testing import Reply, ToolCall

KEY = "sk-test-simulator"

# dialect -> (provider preset, model, reasoning arrives, usage reported while streaming)
DIALECTS = {
    "moonshot": ("moonshot", "kimi-k2.5", True, True),
    "openrouter": ("openrouter", "moonshotai/kimi-k2.5", True, True),
    "vllm": ("openai", "kimi-k2.5", True, True),
    "llamacpp": ("openai", "kimi-k2.5", False, False),
    "cloudsway": ("cloudsway", "kimi-k2.5", True, True),
}


def settings_for(sim, dialect, **extra):
    provider, model, _, _ = DIALECTS[dialect]
    options = {"api_key": KEY, "provider": provider, "model": model, "retry_backoff": 0.01}
    if dialect == "cloudsway":
        options.update(base_url=sim.root_url + "/cloudsway/v1/ai/{endpoint}", endpoint="my-endpoint")
    else:
        options["base_url"] = sim.url_for(dialect)
    options.update(extra)
    return resolve_settings(explicit=options, environ={})


REPLY = Reply(text="The answer.", reasoning="Some thought.",
              tool_calls=[ToolCall("get_variable", {"name": "df"})], chunk_chars=3)


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_every_dialect_gives_text_reasoning_tool_calls_and_usage_once(kimi_sim, dialect, stream):
    _, _, has_reasoning, stream_usage = DIALECTS[dialect]
    kimi_sim.queue(REPLY)
    client = KimiClient(settings_for(kimi_sim, dialect, stream=stream))
    response = client.chat([{"role": "user", "content": "hi"}])
    client.close()
    assert response.error is None, response.error
    assert response.text == "The answer."
    assert response.reasoning == ("Some thought." if has_reasoning else "")
    (call,) = response.tool_calls
    assert call.name == "get_variable" and json.loads(call.arguments) == {"name": "df"}
    assert response.finish_reason == "tool_calls"
    usages = [e for e in response.events if isinstance(e, Usage)]
    assert len(usages) == 1  # never counted twice, wherever the dialect puts it
    if stream and not stream_usage:
        assert usages[0].reported is False
    else:
        assert usages[0].reported and usages[0].prompt > 0 and usages[0].completion > 0
    request = kimi_sim.chat_requests[-1]
    assert request.dialect == dialect and request.status == 200


def test_cloudsway_endpoint_path_is_in_the_url(kimi_sim):
    kimi_sim.queue(Reply(text="ok"))
    KimiClient(settings_for(kimi_sim, "cloudsway")).chat([{"role": "user", "content": "x"}])
    assert kimi_sim.chat_requests[-1].path == "/cloudsway/v1/ai/my-endpoint/chat/completions"


@pytest.mark.parametrize("dialect,switch", [
    ("moonshot", {"thinking": {"type": "disabled"}}),
    ("openrouter", {"reasoning": {"enabled": False}}),
    ("vllm", {"chat_template_kwargs": {"thinking": False}}),
])
def test_thinking_off_is_sent_the_dialects_way_and_honoured(kimi_sim, dialect, switch):
    kimi_sim.queue(Reply(text="quick", reasoning="should not arrive"))
    response = KimiClient(settings_for(kimi_sim, dialect, thinking=False)).chat([{"role": "user", "content": "x"}])
    body = kimi_sim.chat_requests[-1].json
    assert all(body[k] == v for k, v in switch.items())
    assert response.reasoning == "" and response.text == "quick"


def test_reasoning_content_round_trip_passes_the_validator(kimi_sim):
    """A tool-call turn sent back with its reasoning is accepted; without it, the 400 says why."""
    client = KimiClient(settings_for(kimi_sim, "moonshot"))
    kimi_sim.queue(REPLY, Reply(text="done"))
    first = client.chat([{"role": "user", "content": "q"}])
    call = first.tool_calls[0]
    assistant = {"role": "assistant", "content": first.text, "reasoning_content": first.reasoning,
                 "tool_calls": [{"id": call.id, "type": "function",
                                 "function": {"name": call.name, "arguments": call.arguments}}]}
    tool = {"role": "tool", "tool_call_id": call.id, "name": call.name, "content": "df: 3 rows"}
    ok = client.chat([{"role": "user", "content": "q"}, assistant, tool])
    assert ok.error is None and ok.text == "done"
    del assistant["reasoning_content"]
    bad = client.chat([{"role": "user", "content": "q"}, assistant, tool])
    assert "reasoning_content is missing" in bad.error


def test_models_and_token_estimate(kimi_sim):
    client = KimiClient(settings_for(kimi_sim, "moonshot"))
    assert "kimi-k2.5" in client.list_models()
    assert client.estimate_tokens([{"role": "user", "content": "hello world"}]) > 0


async def test_async_client_against_every_dialect(kimi_sim):
    for dialect in DIALECTS:
        kimi_sim.queue(Reply(text=f"hi {dialect}"))
        async with AsyncKimiClient(settings_for(kimi_sim, dialect)) as client:
            response = await client.chat([{"role": "user", "content": "x"}])
        assert response.text == f"hi {dialect}", dialect
