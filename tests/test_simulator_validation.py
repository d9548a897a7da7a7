"""The simulator refuses requests the way Moonshot does."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

from kimi_jupyter.testing import KimiSimulator, Reply, ToolCall

KEY = "sk-test-simulator"
AUTH = {"Authorization": f"Bearer {KEY}"}
HTTP = httpx.Client(timeout=10)  # one client: building an SSL context per call would dominate the run time


@pytest.fixture(scope="module", autouse=True)
def _close_http() -> Iterator[None]:
    yield
    HTTP.close()


def chat(url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
    return HTTP.post(
        url + "/chat/completions", json=body, headers=AUTH if headers is None else headers, timeout=10
    )


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def k25(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "kimi-k2.5", "messages": list(messages) or [user("hi")], **extra}


def png_data_url(width: int = 8, height: int = 6) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "red").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def assert_error(response: httpx.Response, status: int, error_type: str, *fragments: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["type"] == error_type
    for fragment in fragments:
        assert fragment in error["message"], error["message"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"temperature": 0.3}, "invalid temperature: only 1 is allowed for this model"),
        ({"temperature": 0.6}, "invalid temperature: only 1 is allowed for this model"),
        ({"temperature": 1.0, "thinking": {"type": "disabled"}}, "invalid temperature: only 0.6 is allowed"),
        ({"top_p": 1.0}, "invalid top_p: only 0.95 is allowed for this model"),
        ({"n": 2}, "invalid n: only 1 is allowed for this model"),
        ({"presence_penalty": 0.5}, "invalid presence_penalty: only 0 is allowed"),
        ({"frequency_penalty": -1}, "invalid frequency_penalty: only 0 is allowed"),
    ],
)
def test_k25_sampling_values_are_fixed(kimi_sim: KimiSimulator, extra: dict[str, Any], message: str) -> None:
    assert_error(chat(kimi_sim.base_url, k25(**extra)), 400, "invalid_request_error", message)


def test_the_fixed_sampling_values_themselves_are_accepted(kimi_sim: KimiSimulator) -> None:
    fixed = {"top_p": 0.95, "n": 1, "presence_penalty": 0, "frequency_penalty": 0.0}
    assert chat(kimi_sim.base_url, k25(temperature=1.0, **fixed)).status_code == 200
    assert (
        chat(kimi_sim.base_url, k25(temperature=0.6, thinking={"type": "disabled"}, **fixed)).status_code
        == 200
    )
    old = {"model": "moonshot-v1-8k", "messages": [user("x")], "temperature": 0.3, "top_p": 0.5}
    assert chat(kimi_sim.base_url, old).status_code == 200


def test_sampling_rules_apply_on_cloudsway_but_not_on_gateways_or_self_hosted(
    kimi_sim: KimiSimulator,
) -> None:
    assert chat(kimi_sim.url_for("cloudsway"), k25(temperature=0.2)).status_code == 400
    assert chat(kimi_sim.url_for("vllm"), k25(temperature=0.2)).status_code == 200
    body = {"model": "moonshotai/kimi-k2.5", "messages": [user("x")], "temperature": 0.2}
    assert chat(kimi_sim.url_for("openrouter"), body).status_code == 200


@pytest.mark.parametrize("kind", ["image_url", "video_url"])
@pytest.mark.parametrize("dialect", ["moonshot", "openrouter", "cloudsway"])
def test_media_must_be_data_urls(kimi_sim: KimiSimulator, kind: str, dialect: str) -> None:
    model = "moonshotai/kimi-k2.5" if dialect == "openrouter" else "kimi-k2.5"
    part = {"type": kind, kind: {"url": "https://example.com/cat.png"}}
    response = chat(
        kimi_sim.url_for(dialect), {"model": model, "messages": [user([part, {"type": "text", "text": "?"}])]}
    )
    assert_error(response, 400, "invalid_request_error", "only base64 data URLs", "message at index 0")


def test_data_url_images_are_accepted_and_self_hosted_servers_take_remote_urls(
    kimi_sim: KimiSimulator,
) -> None:
    part = {"type": "image_url", "image_url": {"url": png_data_url()}}
    assert chat(kimi_sim.base_url, k25(user([part]))).status_code == 200
    remote = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    assert chat(kimi_sim.url_for("vllm"), k25(user([remote]))).status_code == 200


def test_undecodable_data_urls_are_refused_everywhere(kimi_sim: KimiSimulator) -> None:
    part = {"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}
    for dialect in ("moonshot", "vllm"):
        assert_error(
            chat(kimi_sim.url_for(dialect), k25(user([part]))),
            400,
            "invalid_request_error",
            "malformed data URL",
        )


def tool_turn(reasoning: str | None, call_id: str = "functions.get_weather:0") -> list[dict[str, Any]]:
    assistant: dict[str, Any] = {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
        ],
    }
    if reasoning is not None:
        assistant["reasoning_content"] = reasoning
    return [
        user("weather?"),
        assistant,
        {"role": "tool", "tool_call_id": call_id, "name": "get_weather", "content": "sunny"},
    ]


@pytest.mark.parametrize("reasoning", [None, ""])
def test_tool_call_turns_must_carry_reasoning_content_while_thinking(
    kimi_sim: KimiSimulator, reasoning: str | None
) -> None:
    response = chat(kimi_sim.base_url, k25(*tool_turn(reasoning)))
    assert_error(
        response,
        400,
        "invalid_request_error",
        "thinking is enabled but reasoning_content is missing in assistant tool call message at index 1",
    )


def test_reasoning_content_is_not_required_without_thinking_or_when_present(kimi_sim: KimiSimulator) -> None:
    assert chat(kimi_sim.base_url, k25(*tool_turn(None), thinking={"type": "disabled"})).status_code == 200
    assert chat(kimi_sim.base_url, k25(*tool_turn("I should call the tool."))).status_code == 200
    openrouter = {"model": "moonshotai/kimi-k2.5", "messages": tool_turn(None)}
    openrouter["messages"][1]["reasoning"] = "carried back as reasoning"
    assert chat(kimi_sim.url_for("openrouter"), openrouter).status_code == 200


def test_tool_messages_need_an_id_that_answers_an_earlier_call(kimi_sim: KimiSimulator) -> None:
    messages = tool_turn("r")
    del messages[2]["tool_call_id"]
    assert_error(
        chat(kimi_sim.base_url, k25(*messages)),
        400,
        "invalid_request_error",
        "tool_call_id is missing",
        "index 2",
    )
    messages = tool_turn("r")
    messages[2]["tool_call_id"] = "functions.other:7"
    assert_error(
        chat(kimi_sim.base_url, k25(*messages)),
        400,
        "invalid_request_error",
        "functions.other:7",
        "not found",
    )


def test_every_tool_call_needs_a_result_before_the_next_message(kimi_sim: KimiSimulator) -> None:
    messages = [*tool_turn("r")[:2], user("never mind")]
    assert_error(
        chat(kimi_sim.base_url, k25(*messages)), 400, "invalid_request_error", "without tool results"
    )


def function_tool(name: str, parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    schema = parameters or {"type": "object", "properties": {"city": {"type": "string"}}}
    return {"type": "function", "function": {"name": name, "description": "d", "parameters": schema}}


@pytest.mark.parametrize("name", ["ab", "1tool", "has space", "x" * 65, "bad.dot"])
def test_tool_names_must_match_the_pattern(kimi_sim: KimiSimulator, name: str) -> None:
    response = chat(kimi_sim.base_url, k25(tools=[function_tool(name)]))
    assert_error(response, 400, "invalid_request_error", "invalid tool name")


def test_good_tools_builtin_web_search_and_the_tool_limit(kimi_sim: KimiSimulator) -> None:
    web = {"type": "builtin_function", "function": {"name": "$web_search"}}
    tools = [function_tool("get_weather"), function_tool("run-python_2"), web]
    # $web_search needs thinking off on K2.5 (see test_web_search.py for the refusal).
    assert chat(kimi_sim.base_url, k25(tools=tools, thinking={"type": "disabled"})).status_code == 200
    many = [function_tool(f"tool_{i}") for i in range(129)]
    assert_error(chat(kimi_sim.base_url, k25(tools=many)), 400, "invalid_request_error", "too many tools")
    assert chat(kimi_sim.base_url, k25(tools=many[:128])).status_code == 200
    other_builtin = {"type": "builtin_function", "function": {"name": "$code_runner"}}
    assert chat(kimi_sim.base_url, k25(tools=[other_builtin])).status_code == 400


def test_nested_schema_properties_need_a_type(kimi_sim: KimiSimulator) -> None:
    schema = {
        "type": "object",
        "properties": {"where": {"type": "object", "properties": {"city": {"description": "x"}}}},
    }
    response = chat(kimi_sim.base_url, k25(tools=[function_tool("get_weather", schema)]))
    assert_error(
        response, 400, "invalid_request_error", "get_weather.parameters.properties.where.properties.city"
    )


def test_web_search_results_must_echo_the_arguments(kimi_sim: KimiSimulator) -> None:
    web = {"type": "builtin_function", "function": {"name": "$web_search"}}
    arguments = '{"search_result": {"search_id": "abc"}, "usage": {"total_tokens": 1234}}'
    kimi_sim.queue(Reply(tool_calls=[ToolCall("$web_search", arguments)]))
    first = chat(kimi_sim.base_url, k25(user("news?"), tools=[web], thinking={"type": "disabled"})).json()
    call = first["choices"][0]["message"]["tool_calls"][0]
    assert call["function"] == {"name": "$web_search", "arguments": arguments}
    history = [user("news?"), first["choices"][0]["message"]]
    echoed = {"role": "tool", "tool_call_id": call["id"], "name": "$web_search", "content": arguments}
    ok = chat(kimi_sim.base_url, k25(*history, echoed, tools=[web], thinking={"type": "disabled"}))
    assert ok.status_code == 200
    changed = {**echoed, "content": '{"search_result": {}}'}
    bad = chat(kimi_sim.base_url, k25(*history, changed, tools=[web], thinking={"type": "disabled"}))
    assert_error(bad, 400, "invalid_request_error", "$web_search", "unchanged")


def test_wrong_or_missing_key_is_401(kimi_sim: KimiSimulator) -> None:
    wrong = chat(kimi_sim.base_url, k25(), {"Authorization": "Bearer sk-wrong"})
    assert_error(wrong, 401, "invalid_authentication_error", "Invalid Authentication")
    assert "sk-wrong" not in wrong.text
    missing = chat(kimi_sim.base_url, k25(), {})
    assert_error(missing, 401, "invalid_authentication_error")
    assert HTTP.get(kimi_sim.base_url + "/models").status_code == 401
    assert [r.status for r in kimi_sim.requests] == [401, 401, 401]


def test_no_api_key_accepts_any_key_or_none() -> None:
    with KimiSimulator(api_key=None) as sim:
        assert chat(sim.base_url, k25(), {"Authorization": "Bearer anything"}).status_code == 200
        assert chat(sim.base_url, k25(), {}).status_code == 200


def test_unknown_model_is_404_naming_it(kimi_sim: KimiSimulator) -> None:
    response = chat(kimi_sim.base_url, {"model": "kimi-k9", "messages": [user("x")]})
    assert_error(response, 404, "resource_not_found_error", "kimi-k9")


def test_prompt_over_the_context_limit_is_400() -> None:
    with KimiSimulator(context_limit=100) as sim:
        assert chat(sim.base_url, k25(user("short"))).status_code == 200
        response = chat(sim.base_url, k25(user("x" * 1000)))
        assert_error(response, 400, "invalid_request_error", "exceeded model token limit", "context")


def test_too_large_bodies_are_refused() -> None:
    with KimiSimulator(max_body_bytes=10_000) as sim:
        response = chat(sim.base_url, k25(user("x" * 20_000)))
        assert_error(response, 413, "invalid_request_error", "request body")
        assert chat(sim.base_url, k25(user("small"))).status_code == 200


def test_malformed_bodies_and_unknown_paths(kimi_sim: KimiSimulator) -> None:
    bad = HTTP.post(kimi_sim.base_url + "/chat/completions", content=b"{nope", headers=AUTH)
    assert_error(bad, 400, "invalid_request_error", "not valid JSON")
    assert_error(chat(kimi_sim.base_url, {"model": "kimi-k2.5"}), 400, "invalid_request_error", "messages")
    assert_error(
        chat(kimi_sim.base_url, {"model": "kimi-k2.5", "messages": []}), 400, "invalid_request_error"
    )
    assert_error(
        HTTP.get(kimi_sim.root_url + "/nowhere", headers=AUTH), 404, "resource_not_found_error", "/nowhere"
    )
    assert_error(HTTP.get(kimi_sim.base_url + "/embeddings", headers=AUTH), 404, "resource_not_found_error")
    assert HTTP.get(kimi_sim.base_url + "/chat/completions", headers=AUTH).status_code == 405
    gateway = HTTP.get(kimi_sim.url_for("openrouter") + "/users/me/balance", headers=AUTH)
    assert gateway.status_code == 404 and gateway.json()["error"]["code"] == 404
