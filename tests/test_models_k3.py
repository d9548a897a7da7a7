"""The models after K2.5 against the simulator on 127.0.0.1: effort and ``keep`` in the
thinking field, prompt_cache_options, cache-write pricing, tool_choice and response_format
per model, public image URLs, retired ids' successors, unknown models, web search on K3,
the balance, and structured output's bounds and retry."""

from __future__ import annotations

import pytest

from kimi_jupyter.account import balance_text
from kimi_jupyter.client import KimiClient
from kimi_jupyter.client.chunks import parse_usage
from kimi_jupyter.errors import ConfigError
from kimi_jupyter.events import Failed, Notice, event_from_json, event_to_json
from kimi_jupyter.models import ModelRegistry, models_report, not_found_hint, registry
from kimi_jupyter.settings import resolve_settings
from kimi_jupyter.structured import MAX_DEPTH, Schema, SchemaError, loads_bounded
from kimi_jupyter.testing import KimiSimulator, Reply

KEY = "sk-test-simulator"
MODELS = ["kimi-k2.5", "kimi-k2.6", "kimi-k3", "kimi-k3.1-pro"]


@pytest.fixture(scope="module")
def sim():
    with KimiSimulator(api_key=KEY, models=MODELS) as s:
        yield s


@pytest.fixture(autouse=True)
def fresh(sim):
    sim.reset()


def settings_for(sim, provider="moonshot-intl", **extra):
    return resolve_settings(explicit={"base_url": sim.base_url, "api_key": KEY, "provider": provider,
                                      "max_retries": 0, **extra}, environ={})


def send(sim, messages=None, **extra):
    wire = {k: extra.pop(k) for k in ("tools", "response_format", "extra") if k in extra}
    with KimiClient(settings_for(sim, **extra)) as client:
        stream = client.stream_chat(messages or [{"role": "user", "content": "hi"}], **wire)
        events = list(stream)
    return stream.response, events, sim.chat_requests[-1].json if sim.chat_requests else None


def notices(events):
    return [e.text for e in events if isinstance(e, Notice)]


def test_the_registry_knows_the_models_after_k25():
    reg = ModelRegistry()
    k3 = reg.get("kimi-k3")
    assert k3.context_window == 1_048_576 and k3.always_thinks and k3.efforts == ("low", "high", "max")
    assert k3.tool_choices == ("auto", "none", "required") and k3.json_schema and not k3.public_image_urls
    assert reg.get("kimi-k2.6").tool_choices == ("auto", "none") and reg.get("kimi-k2.6").thinking == "switch"
    assert reg.get("kimi-k2.7-code").always_thinks and reg.get("kimi-k2.7-code-highspeed") is not None
    assert reg.window("kimi-k3.1-pro") == 1_048_576 and reg.price("kimi-k3.1-pro", "moonshot-intl") is None
    price = reg.price("kimi-k3", "moonshot-intl", cache_ttl="1h")
    assert (price.input, price.input_cached, price.output, price.cache_write, price.currency) == (
        3.0, 0.3, 15.0, 6.0, "USD")
    assert reg.price("kimi-k3", "moonshot-intl").cache_write == 3.0  # the server's default TTL, 5m
    assert reg.price("kimi-k3", "moonshot") is None  # no CNY price was published: none is borrowed
    assert reg.get("kimi-k2.5").successors == ("kimi-k2.6", "kimi-k3")


def test_effort_goes_inside_thinking_with_keep_all_and_never_twice(sim):
    sim.queue(Reply(text="ok", reasoning="brief"))
    response, _events, body = send(sim, model="kimi-k3", effort="low")
    assert body["thinking"] == {"type": "enabled", "keep": "all", "effort": "low"}
    assert "reasoning_effort" not in body and "temperature" not in body and "top_p" not in body
    assert response.error is None and response.text == "ok"


def test_effort_on_a_model_without_effort_is_a_notice_and_nothing_is_sent(sim):
    sim.queue(Reply(text="ok"))
    _, events, body = send(sim, model="kimi-k2.6", effort="high")
    assert body["thinking"] == {"type": "enabled"}
    assert any("effort='high' was not sent: kimi-k2.6 has no thinking effort levels" in n for n in notices(events))
    with pytest.raises(ConfigError, match="effort"):
        settings_for(sim, effort="extreme")


def test_k3_always_thinks_so_thinking_off_is_said_not_sent(sim):
    sim.queue(Reply(text="ok"))
    _, events, body = send(sim, model="kimi-k3", thinking=False)
    assert body["thinking"]["type"] == "enabled"
    assert any("kimi-k3 always thinks" in n for n in notices(events))


def test_prompt_cache_ttl_sends_prompt_cache_options_and_cache_writes_are_priced(sim):
    sim.queue(Reply(text="ok", usage={"prompt_tokens": 1_000_000, "completion_tokens": 1_000_000,
                                      "cached_tokens": 200_000}))
    response, _, body = send(sim, model="kimi-k3", prompt_cache_ttl="1h")
    assert body["prompt_cache_options"] == {"ttl": "1h"}
    usage = response.usage
    # 800k uncached input at $3, 200k cached at $0.30, 1M output at $15 (per 1M tokens).
    assert usage.currency == "USD" and usage.cost == pytest.approx(0.8 * 3 + 0.2 * 0.3 + 15)
    assert "200000 cached" in usage.describe()
    sim.queue(Reply(text="ok"))
    _, _, body = send(sim, model="kimi-k3", prompt_cache_ttl="off")
    assert "prompt_cache_options" not in body
    with pytest.raises(ConfigError, match="prompt_cache_ttl"):
        settings_for(sim, prompt_cache_ttl="2h")


def test_cache_writes_in_usage_are_shown_and_billed_at_the_ttl_price():
    price = registry().price("kimi-k3", "moonshot-intl", cache_ttl="1h")
    raw = {"prompt_tokens": 1_000_000, "completion_tokens": 0, "prompt_tokens_details": {"cached_tokens": 100_000},
           "cache_write_tokens": 500_000}
    usage = parse_usage(raw, price)
    assert usage.cache_write == 500_000 and usage.cached == 100_000
    # 400k plain input at $3, 100k cache hits at $0.30, 500k written at $6 (1h TTL).
    assert usage.cost == pytest.approx(0.4 * 3 + 0.1 * 0.3 + 0.5 * 6)
    assert "100000 cached, 500000 written to cache" in usage.describe()
    assert (usage + usage).cache_write == 1_000_000
    assert event_from_json(event_to_json(usage)) == usage
    assert "cache_write" not in event_to_json(parse_usage({"prompt_tokens": 1, "completion_tokens": 1}, price))


def test_tool_choice_and_response_format_follow_the_model(sim):
    tools = [{"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}]
    schema_format = {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}}}
    sim.queue(Reply(text="{}"), Reply(text="{}"))
    _, events, body = send(sim, model="kimi-k2.6", tools=tools, extra={"tool_choice": "required"})
    assert "tool_choice" not in body and any("tool_choice='required' was not sent" in n for n in notices(events))
    _, events, body = send(sim, model="kimi-k3", tools=tools, extra={"tool_choice": "required"},
                           response_format=schema_format)
    assert body["tool_choice"] == "required" and body["response_format"] == schema_format
    sim.queue(Reply(text="{}"))
    _, events, body = send(sim, model="kimi-k2.5", response_format=schema_format)
    assert body["response_format"] == {"type": "json_object"}
    assert any("no json_schema response format" in n for n in notices(events))


def test_a_public_image_url_is_refused_before_anything_is_sent(sim):
    content = [{"type": "text", "text": "what is this?"},
               {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]
    response, _events, body = send(sim, [{"role": "user", "content": content}], model="kimi-k3")
    assert body is None and "does not take public image URLs" in response.error


def test_a_retired_id_names_its_successors_and_an_unknown_one_gets_one_notice(sim):
    assert not_found_hint(
        "kimi-k2-0905-preview", ["kimi-k2.6", "kimi-k3"]).split(" Available")[0] == "kimi-k2-0905-preview has been retired; its successors: kimi-k2.6, kimi-k3."
    assert "no longer lists kimi-k2.5; its successors here: kimi-k3" in not_found_hint("kimi-k2.5", ["kimi-k3"])
    with KimiClient(settings_for(sim)) as client:
        client.model_entries()
    sim_models = KimiSimulator(api_key=KEY, models=["kimi-k9-preview"])
    with sim_models as other:
        other.queue(Reply(text="a"), Reply(text="b"))
        first = send(other, model="kimi-k9-preview")[1]
        second = send(other, model="kimi-k9-preview")[1]
    told = [n for n in notices(first) if "not in kimi_jupyter's model registry" in n]
    assert len(told) == 1 and not any("model registry" in n for n in notices(second))


def test_models_report_shows_windows_and_thinking(sim):
    with KimiClient(settings_for(sim)) as client:
        entries = client.model_entries()
    text = models_report("http://sim/v1", "kimi-k3", "moonshot-intl", entries)
    k3 = next(line for line in text.splitlines() if line.startswith("* kimi-k3 "))
    assert "1,048,576" in k3 and "$3 / $0.3 / $15" in k3 and "always, effort low|high|max" in k3


def test_web_search_on_k3_is_refused_with_the_reason(sim):
    from kimi_jupyter.web import web_settings

    with pytest.raises(ConfigError, match=r"always thinks.*web_search"):
        web_settings(settings_for(sim, model="kimi-k3"))
    settings, _ = web_settings(settings_for(sim, model="kimi-k2.6"))
    assert settings.thinking is False


def test_balance_on_moonshot_and_its_absence_elsewhere(sim):
    with KimiClient(settings_for(sim)) as client:
        text, ok = balance_text(client, client.settings)
    assert ok and text.startswith("Balance: available $") and sim.requests[-1].path.endswith("/users/me/balance")
    with KimiClient(settings_for(sim, provider="openrouter")) as client:
        text, ok = balance_text(client, client.settings)
    assert not ok and "no balance endpoint" in text


def test_structured_output_bounds_and_validation():
    deep = "[" * 100_000 + "]" * 100_000
    value, problem = loads_bounded(deep)  # no RecursionError
    assert value is None and f"deeper than {MAX_DEPTH}" in problem
    schema = Schema({"name": str, "total": float}, name="invoice")
    assert schema.check('{"name": "a", "total": 2}') == ({"name": "a", "total": 2}, None)
    _, problem = schema.check('{"name": "a"}')
    assert "'total' is a required property" in problem
    info = registry().get("kimi-k3")
    fmt = schema.response_format(info)
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "invoice" and fmt["json_schema"]["strict"]
    assert fmt["json_schema"]["schema"]["type"] == "object"
    assert schema.response_format(registry().get("kimi-k2.5")) == {"type": "json_object"}
    with pytest.raises(SchemaError, match="not a valid JSON schema"):
        Schema({"type": "object", "properties": {"a": {"type": 5}}})


def test_ask_with_a_schema_asks_once_more_with_the_error_and_marks_what_still_fails(kimi_sim_env):
    from kimi_jupyter import ask

    kimi_sim_env.queue(Reply(text='{"name": "Acme"}'), Reply(text='{"name": "Acme", "total": 12.5}'))
    response = ask("Extract the invoice", schema={"name": str, "total": float}, display="none")
    assert response.json() == {"name": "Acme", "total": 12.5}
    retry = kimi_sim_env.chat_requests[-1].json["messages"][-1]["content"]
    retry_text = retry if isinstance(retry, str) else " ".join(p.get("text", "") for p in retry)
    assert "'total' is a required property" in retry_text and "Extract the invoice" in retry_text
    kimi_sim_env.queue(Reply(text="no json"), Reply(text="still none"))
    response = ask("Extract again", schema={"name": str}, display="none")
    assert any("does not match the schema after one retry" in n for n in response.notices)
    assert not any(isinstance(e, Failed) for e in response.events)


def test_the_default_model_stays_while_the_server_lists_it_then_its_successor_is_used():
    with KimiSimulator(api_key=KEY, models=["kimi-k2.6", "kimi-k3"]) as other:
        settings = resolve_settings(explicit={"base_url": other.base_url, "api_key": KEY, "provider": "moonshot"},
                                    environ={})
        assert settings.model == "kimi-k2.5"  # nothing known about this server yet
        with KimiClient(settings) as client:
            client.model_entries()  # what %kimi models (or a 404) asks
        settings = resolve_settings(explicit={"base_url": other.base_url, "api_key": KEY, "provider": "moonshot"},
                                    environ={})
        assert settings.model == "kimi-k2.6" and "kimi-k2.5 is not served there" in settings.sources["model"]
        chosen = resolve_settings(explicit={"base_url": other.base_url, "api_key": KEY, "provider": "moonshot",
                                            "model": "kimi-k2.5"}, environ={})
        assert chosen.model == "kimi-k2.5"  # a model the user names is never replaced
    with KimiSimulator(api_key=KEY, models=MODELS) as listed:
        with KimiClient(settings_for(listed)) as client:
            client.model_entries()
        assert resolve_settings(explicit={"base_url": listed.base_url, "api_key": KEY, "provider": "moonshot"},
                                environ={}).model == "kimi-k2.5"


def test_a_reply_with_cache_writes_is_priced_and_the_usage_table_says_so():
    """Canned Moonshot-shaped stream (httpx.MockTransport): usage inside the choice, with
    cache hits and writes; the 1h TTL price applies and %kimi usage's table notes the writes."""
    import json

    import httpx

    from kimi_jupyter.display.tables import usage_table

    usage = {"prompt_tokens": 1_000_000, "completion_tokens": 0, "total_tokens": 1_000_000,
             "cached_tokens": 100_000, "cache_write_tokens": 500_000}
    chunks = [{"id": "c", "object": "chat.completion.chunk", "model": "kimi-k3",
               "choices": [{"index": 0, "delta": {"content": "ok"}, "finish_reason": None}]},
              {"id": "c", "object": "chat.completion.chunk", "model": "kimi-k3",
               "choices": [{"index": 0, "delta": {}, "finish_reason": "stop", "usage": usage}]}]
    body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
    seen = []

    def handler(request):
        seen.append(json.loads(request.content))
        return httpx.Response(200, content=body.encode(), headers={"content-type": "text/event-stream"})

    settings = resolve_settings(explicit={"api_key": "sk-test-0123456789abcdefghijklmn", "model": "kimi-k3",
                                          "base_url": "https://api.moonshot.ai/v1", "prompt_cache_ttl": "1h"},
                                environ={})
    client = KimiClient(settings, http=httpx.Client(transport=httpx.MockTransport(handler)))
    response = client.chat([{"role": "user", "content": "hi"}])
    assert seen[0]["prompt_cache_options"] == {"ttl": "1h"}
    assert response.usage.cache_write == 500_000
    assert response.usage.cost == pytest.approx(0.4 * 3 + 0.1 * 0.3 + 0.5 * 6)
    table = usage_table([("magic", response.usage, 1)])["text/plain"]
    assert "500,000 prompt tokens written to the prompt cache" in table


def test_the_budget_notice_shows_the_balance_on_moonshot(sim):
    from kimi_jupyter.session import Session
    from kimi_jupyter.turn import NullRenderer, TurnRequest, run_turn

    session = Session()
    big = {"prompt_tokens": 1_000_000, "completion_tokens": 0}
    sim.queue(Reply(text="first", usage=big), Reply(text="second"))
    settings = settings_for(sim, model="kimi-k3", budget=3.5)  # K3 input: $3 per 1M tokens
    run_turn(session, TurnRequest("one", settings), NullRenderer())
    response = run_turn(session, TurnRequest("two", settings), NullRenderer())
    (notice,) = [n for n in response.notices if "of the session budget" in n]
    assert "Balance: available $50" in notice


def test_ask_takes_effort_like_any_setting(kimi_sim_env):
    from kimi_jupyter import ask

    kimi_sim_env.queue(Reply(text="done"))
    response = ask("think hard", model="kimi-k3", effort="max", display="none")
    assert response.text == "done"
    assert kimi_sim_env.chat_requests[-1].json["thinking"] == {"type": "enabled", "keep": "all", "effort": "max"}
