"""response_format by the contract: text, json_object and json_schema, and answers that follow it."""

from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema
import pytest

from kimi_jupyter.testing import KimiSimulator, Reply

from .wire import post, refused, user

WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "temperature": {"type": "number"}},
    "required": ["city", "temperature"],
    "additionalProperties": False,
}


def _body(response_format: Any, text: str = "Return the weather of Beijing as JSON.") -> dict[str, Any]:
    return {"model": "kimi-k3", "messages": [user(text)], "response_format": response_format}


def _schema(schema: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, **extra}}


@pytest.mark.parametrize(("response_format", "fragment"), [
    ({"type": "bogus"}, "response_format.type"),
    ("json_object", "must be an object"),
    ({"type": "json_schema"}, "'json_schema' object"),
    ({"type": "json_schema", "json_schema": "weather"}, "'json_schema' object"),
    ({"type": "json_schema", "json_schema": {"schema": {"type": "object"}}}, "name is required"),
    ({"type": "json_schema", "json_schema": {"name": "", "schema": {"type": "object"}}}, "name is required"),
    ({"type": "json_schema", "json_schema": {"name": "weather"}}, "schema must be"),
    ({"type": "json_schema", "json_schema": {"name": "weather", "schema": "x"}}, "schema must be"),
    (_schema({"type": "object"}, strict="yes"), "strict must be a boolean"),
])
def test_malformed_response_format_is_refused(sim: KimiSimulator, http: httpx.Client, response_format: Any,
                                              fragment: str) -> None:
    refused(post(http, sim, _body(response_format)), fragment)


SCHEMAS = [
    WEATHER_SCHEMA,
    {"type": "object", "properties": {"capital": {"type": "boolean"}}, "required": ["capital"]},
    {"type": "object", "properties": {"city": {"type": "string"}}},  # nothing required
    {"type": "object", "properties": {
        "tags": {"type": "array", "items": {"type": "string", "minLength": 12}, "minItems": 3, "uniqueItems": True},
        "score": {"type": "integer", "exclusiveMinimum": 0, "maximum": 5},
        "ratio": {"type": "number", "minimum": 0.5, "multipleOf": 0.25},
        "kind": {"enum": ["a", "b"]}, "fixed": {"const": 7},
        "when": {"type": "string", "format": "date-time"},
        "maybe": {"type": ["null", "string"], "maxLength": 3},
    }, "required": ["tags", "score", "ratio", "kind", "fixed", "when", "maybe"], "additionalProperties": False},
    {"$defs": {"point": {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]}},
     "type": "object", "properties": {"a": {"$ref": "#/$defs/point"},
                                      "b": {"anyOf": [{"type": "integer", "minimum": 3}, {"type": "null"}]},
                                      "c": {"allOf": [{"type": "object", "properties": {"y": {"type": "string"}},
                                                       "required": ["y"]}, {"required": ["z"]}]}},
     "required": ["a", "b", "c"]},
    {"type": "object", "minProperties": 2, "properties": {"p": {"type": "string"}, "q": {"type": "boolean"}}},
]


@pytest.mark.parametrize("schema", SCHEMAS, ids=[f"schema{i}" for i in range(len(SCHEMAS))])
@pytest.mark.parametrize("stream", [False, True], ids=["nostream", "stream"])
def test_json_schema_answers_follow_the_schema(sim: KimiSimulator, http: httpx.Client, schema: dict[str, Any],
                                               stream: bool) -> None:
    answer = post(http, sim, _body(_schema(schema, strict=True)), stream=stream)
    assert answer.status == 200 and answer.finish_reason == "stop"
    content = answer.message["content"]
    assert "\n" not in content and "\t" not in content  # compact JSON
    jsonschema.validate(json.loads(content), schema)


def test_non_strict_json_schema_still_answers_a_json_object(sim: KimiSimulator, http: httpx.Client) -> None:
    answer = post(http, sim, _body(_schema({"type": "object", "properties": {"city": {"type": "string"}}},
                                           strict=False)))
    assert isinstance(json.loads(answer.message["content"]), dict)


def test_json_object_answers_hold_the_keys_the_question_names(sim: KimiSimulator, http: httpx.Client) -> None:
    answer = post(http, sim, _body({"type": "json_object"}, "Answer as JSON with a key named 'city'."))
    assert "city" in json.loads(answer.message["content"])


def test_text_format_is_plain_text(sim: KimiSimulator, http: httpx.Client) -> None:
    answer = post(http, sim, _body({"type": "text"}))
    assert answer.status == 200 and answer.message["content"].startswith("*(Simulated reply")


def test_scripted_replies_are_not_rewritten_to_the_schema(sim: KimiSimulator, http: httpx.Client) -> None:
    sim.queue(Reply(text='{"city": 5}'))  # a test of the client's own validation needs a wrong answer
    answer = post(http, sim, _body(_schema(WEATHER_SCHEMA)))
    assert answer.message["content"] == '{"city": 5}'


def test_the_schema_counts_in_prompt_tokens(sim: KimiSimulator, http: httpx.Client) -> None:
    plain = post(http, sim, {"model": "kimi-k3", "messages": [user("Is Beijing the capital?")]})
    shaped = post(http, sim, {"model": "kimi-k3", "messages": [user("Is Beijing the capital?")],
                              "response_format": _schema(WEATHER_SCHEMA)})
    assert shaped.usage["prompt_tokens"] > plain.usage["prompt_tokens"]
    estimate = http.post(sim.base_url + "/tokenizers/estimate-token-count",
                         json={"model": "kimi-k3", "messages": [user("Is Beijing the capital?")],
                               "response_format": _schema(WEATHER_SCHEMA)}).json()
    assert estimate["data"]["total_tokens"] == shaped.usage["prompt_tokens"]
