"""Request shaping: one settings object and a message list in, one JSON body out.

The preset decides how thinking is switched (the model registry, through `model_rules`,
adds effort, ``keep`` and what else depends on the model), whether to ask for usage in the stream, whether
a prefill goes out as a partial-mode message, and which sampling parameters must be dropped
because the model fixes them (kimi-k2.5 answers any other value with a 400). Dropped
parameters are reported as notices, never silently. The whole request is sized before its
JSON body is built (``request_size.check_request_size``).

`encode_body` turns the payload into the bytes sent. It uses orjson, the same compact UTF-8
JSON that httpx writes for ``json=`` (byte for byte for these payloads), because with images
in the history a request body is tens of MB of data URLs: the stdlib encoder takes ~0.5 s
for 50 MB (measured by ``bench/engine.py``, "image turn after 30 image turns"), orjson
about a sixth of that. The body goes out as a `SentBody`, whose bytes are released when the
request ends (see there).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson

from ..events import Notice
from ..models import fixes_sampling
from ..partial import partial_message
from ..providers import FIXED_SAMPLING
from ..settings import Settings
from .model_rules import apply_model_rules
from .request_size import check_request_size

__all__ = ["auth_headers", "build_payload", "encode_body", "json_headers", "SentBody", "AsyncSentBody"]


def build_payload(
    settings: Settings,
    messages: list[dict[str, Any]],
    *,
    stream: bool = True,
    tools: list[dict[str, Any]] | None = None,
    response_format: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    prefill: str | None = None,
    known_size: tuple[int, int] = (0, 0),
) -> tuple[dict[str, Any], list[Notice]]:
    """The JSON body; ``known_size`` is ``(count, bound)`` of the first messages' size bound
    (the turn engine keeps it per stored message), so the size check walks only the rest."""
    preset = settings.preset
    notices: list[Notice] = []
    if prefill and preset.partial_mode:
        messages = [*messages, partial_message(prefill)]
    elif prefill:
        notices.append(Notice(f"The prefill was not sent: the {preset.name} provider does not support partial "
                              "mode (moonshot, moonshot-intl and cloudsway do).", "warning"))
    check_request_size(messages, tools, known=known_size)
    payload: dict[str, Any] = {"model": settings.model, "messages": messages, "stream": stream}
    if settings.max_tokens:
        payload["max_tokens"] = int(settings.max_tokens)
    if tools:
        payload["tools"] = tools
    if response_format:
        payload["response_format"] = response_format
    if stream and preset.stream_usage:
        payload["stream_options"] = {"include_usage": True}
    for key, value in (extra or {}).items():
        if key in FIXED_SAMPLING and fixes_sampling(preset, settings.model):
            notices.append(Notice(f"{key}={value!r} was not sent: {settings.model} fixes it itself.", "warning"))
            continue
        payload[key] = value
    # thinking (effort, keep), prompt cache, tool_choice, response_format, image sources
    apply_model_rules(settings, payload, messages[known_size[0]:], notices)
    return payload, notices


def auth_headers(key: str) -> dict[str, str]:
    # Only the encodings `client.bounded` inflates step by step (httpx would offer br/zstd
    # too when those packages are installed, and inflate a whole network read of them at once).
    return {"Authorization": f"Bearer {key}", "Accept": "text/event-stream, application/json",
            "Accept-Encoding": "gzip, deflate"}


def encode_body(payload: dict[str, Any]) -> bytes:
    """The request body: compact UTF-8 JSON, as httpx writes ``json=payload``.

    A value orjson refuses (a non-string key, an integer over 64 bits, a foreign type in a
    user's tool schema) falls back to the stdlib encoder, which raises as httpx would.
    """
    try:
        return orjson.dumps(payload)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def json_headers(key: str, body: bytes) -> dict[str, str]:
    """`auth_headers` plus the body's type and length (the length keeps it one plain body)."""
    return {**auth_headers(key), "Content-Type": "application/json", "Content-Length": str(len(body))}


class _Held:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def release(self) -> None:
        self._data = b""


class SentBody(_Held):
    """One request's encoded body, handed to httpx as a one-piece stream; ``release()`` it
    when the request is over.

    httpx leaves a finished streamed request (with its body) in a reference cycle with the
    response and connection objects, which only the cyclic garbage collector frees. With
    images in the history each body is tens of MB, and 30 photo turns held up to 1.9 GB at
    once (``bench/engine.py``, memory row); releasing the bytes when the request ends
    leaves only small objects in the cycle.
    """

    def __iter__(self) -> Iterator[bytes]:
        yield self._data


class AsyncSentBody(_Held):
    """`SentBody` for httpx.AsyncClient."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._data
