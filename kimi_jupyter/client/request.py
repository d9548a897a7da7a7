"""Request shaping: one settings object and a message list in, one JSON body out.

The preset decides how thinking is switched, whether to ask for usage in the stream, and
which sampling parameters must be dropped because the model fixes them (kimi-k2.5 answers
any other value with a 400). Dropped parameters are reported as notices, never silently.

`encode_body` turns the payload into the bytes sent. It uses orjson, the same compact UTF-8
JSON that httpx writes for ``json=`` (byte for byte for these payloads), because with images
in the history a request body is tens of MB of data URLs: the stdlib encoder takes ~0.5 s
for 50 MB (measured by ``bench/engine.py``, "image turn after 30 image turns"), orjson
about a sixth of that.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from ..events import Notice
from ..providers import FIXED_SAMPLING
from ..settings import Settings

__all__ = ["auth_headers", "build_payload", "encode_body", "json_headers"]


def build_payload(
    settings: Settings,
    messages: list[dict[str, Any]],
    *,
    stream: bool = True,
    tools: list[dict[str, Any]] | None = None,
    response_format: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], list[Notice]]:
    preset = settings.preset
    payload: dict[str, Any] = {"model": settings.model, "messages": messages, "stream": stream}
    payload.update(preset.thinking_fields(settings.thinking))
    if settings.max_tokens:
        payload["max_tokens"] = int(settings.max_tokens)
    if tools:
        payload["tools"] = tools
    if response_format:
        payload["response_format"] = response_format
    if stream and preset.stream_usage:
        payload["stream_options"] = {"include_usage": True}
    notices: list[Notice] = []
    for key, value in (extra or {}).items():
        if key in FIXED_SAMPLING and preset.fixes_sampling(settings.model):
            notices.append(Notice(f"{key}={value!r} was not sent: {settings.model} fixes it itself.", "warning"))
            continue
        payload[key] = value
    return payload, notices


def auth_headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Accept": "text/event-stream, application/json"}


def encode_body(payload: dict[str, Any]) -> bytes:
    """The request body: compact UTF-8 JSON, as httpx writes ``json=payload``.

    A value orjson refuses (a non-string key, an integer over 64 bits, a foreign type in a
    user's tool schema) falls back to the stdlib encoder, which raises as httpx would.
    """
    try:
        return orjson.dumps(payload)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def json_headers(key: str) -> dict[str, str]:
    """`auth_headers` plus the body's content type (the body is sent as bytes)."""
    return {**auth_headers(key), "Content-Type": "application/json"}
