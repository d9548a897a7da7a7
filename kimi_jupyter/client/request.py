"""Request shaping: one settings object and a message list in, one JSON body out.

The preset decides how thinking is switched, whether to ask for usage in the stream, whether
a prefill goes out as a partial-mode message, and which sampling parameters must be dropped
because the model fixes them (kimi-k2.5 answers any other value with a 400). Dropped
parameters are reported as notices, never silently. The whole request is sized before its
JSON body is built (``request_size.check_request_size``).
"""

from __future__ import annotations

from typing import Any

from ..events import Notice
from ..partial import partial_message
from ..providers import FIXED_SAMPLING
from ..request_size import check_request_size
from ..settings import Settings

__all__ = ["build_payload", "auth_headers"]


def build_payload(
    settings: Settings,
    messages: list[dict[str, Any]],
    *,
    stream: bool = True,
    tools: list[dict[str, Any]] | None = None,
    response_format: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    prefill: str | None = None,
) -> tuple[dict[str, Any], list[Notice]]:
    preset = settings.preset
    notices: list[Notice] = []
    if prefill and preset.partial_mode:
        messages = [*messages, partial_message(prefill)]
    elif prefill:
        notices.append(Notice(f"The prefill was not sent: the {preset.name} provider does not support partial "
                              "mode (moonshot, moonshot-intl and cloudsway do).", "warning"))
    check_request_size(messages, tools)
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
    for key, value in (extra or {}).items():
        if key in FIXED_SAMPLING and preset.fixes_sampling(settings.model):
            notices.append(Notice(f"{key}={value!r} was not sent: {settings.model} fixes it itself.", "warning"))
            continue
        payload[key] = value
    return payload, notices


def auth_headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Accept": "text/event-stream, application/json"}
