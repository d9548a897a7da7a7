"""The local size check: a chat request is sized before its JSON body is built.

Moonshot refuses a request body over 100 MB (a 413 after uploading all of it, which on a
slow link takes minutes). :func:`request_body_bytes` adds up what the JSON body will hold
(text, base64 data URLs, tool definitions, the JSON punctuation around them) without
serialising anything, and :func:`check_request_size` refuses an oversized request with a
message that names the largest parts and what to do: send big media through the Files API
(``Kimi.upload_threshold``), attach fewer images or frames, or start a fresh conversation.

This is the platform's whole-request check, called by ``client/request.build_payload`` for
every request (magic, ``ask()``, sidebar, agent steps). It is pure: messages in, a number or
an error out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import RequestTooLargeError
from ..sizes import json_bound

__all__ = ["MAX_BODY_BYTES", "check_request_size", "largest_parts", "request_body_bytes"]

MAX_BODY_BYTES = 100_000_000  # Moonshot: "the request body is limited to 100 MB"
_ENVELOPE = 512  # model, stream, thinking, max_tokens...: a generous constant
_PART_OVERHEAD = 48  # {"type": "...", "..._url": {"url": "..."}} around a value


def _text_bytes(text: str) -> int:
    # UTF-8 length plus escapes; exact for short strings, close (no re-encoding) for long ones.
    if len(text) < 4096:
        return len(json.dumps(text, ensure_ascii=False).encode("utf-8"))
    return len(text.encode("utf-8", "replace")) + text.count('"') + text.count("\\") + text.count("\n") + 2


def _parts(messages: Sequence[Any]) -> list[tuple[int, str]]:
    """``(bytes, description)`` of every sizeable piece of every message."""
    pieces: list[tuple[int, str]] = []
    for index, message in enumerate(messages, 1):
        if not isinstance(message, Mapping):
            pieces.append((_text_bytes(str(message)), f"message {index}"))
            continue
        role = str(message.get("role") or "message")
        content = message.get("content")
        if isinstance(content, str):
            pieces.append((_text_bytes(content) + 32, f"the text of {role} message {index}"))
        elif isinstance(content, list):
            for part in content:
                if not isinstance(part, Mapping):
                    continue
                kind = part.get("type")
                if kind in ("image_url", "video_url"):
                    holder = part.get(kind)
                    url = holder.get("url", "") if isinstance(holder, Mapping) else str(holder or "")
                    what = "a video" if kind == "video_url" else "an image"
                    how = "uploaded file" if url.startswith("ms://") else "inline"
                    pieces.append((len(url) + _PART_OVERHEAD, f"{what} in {role} message {index} ({how})"))
                else:
                    pieces.append((_text_bytes(str(part.get("text") or "")) + _PART_OVERHEAD,
                                   f"text in {role} message {index}"))
        for key in ("reasoning_content", "reasoning", "name", "tool_call_id"):
            value = message.get(key)
            if isinstance(value, str):
                pieces.append((_text_bytes(value) + len(key) + 4, f"{key} of message {index}"))
        calls = message.get("tool_calls")
        if calls:
            pieces.append((len(json.dumps(calls, ensure_ascii=False).encode("utf-8")), f"tool calls of message {index}"))
        pieces.append((32, f"message {index}"))
    return pieces


def request_body_bytes(messages: Sequence[Any], tools: Sequence[Any] | None = None) -> int:
    """About how many bytes the JSON body of a request with these messages and tools holds."""
    total = _ENVELOPE + sum(size for size, _ in _parts(messages))
    if tools:
        total += len(json.dumps(list(tools), ensure_ascii=False).encode("utf-8"))
    return total


def largest_parts(messages: Sequence[Any], count: int = 3) -> list[tuple[int, str]]:
    """The ``count`` biggest pieces, biggest first."""
    return sorted(_parts(messages), key=lambda p: -p[0])[:count]


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def check_request_size(messages: Sequence[Any], tools: Sequence[Any] | None = None,
                       limit: int = MAX_BODY_BYTES, known: tuple[int, int] = (0, 0)) -> int:
    """The body size (an upper bound of it when that is well under ``limit``);
    :class:`RequestTooLargeError` naming the largest parts when over ``limit``.

    This runs on every request, so it first sums a bound that reads no text
    (`sizes.json_bound`); ``known`` is ``(count, bound)`` for the first ``count`` messages
    (the stored history keeps theirs), so only the rest is walked. Only a request whose
    bound passes the limit is measured exactly (escapes, UTF-8)."""
    count, prefix = known
    bound = _ENVELOPE + prefix + json_bound(list(messages[count:])) + (json_bound(list(tools)) if tools else 0)
    if bound <= limit:
        return bound
    size = request_body_bytes(messages, tools)
    if size <= limit:
        return size
    biggest = "; ".join(f"{what}: {_mb(n)}" for n, what in largest_parts(messages))
    raise RequestTooLargeError(
        f"This request would be about {_mb(size)}, over the {_mb(limit)} limit, so nothing was sent. "
        f"Largest parts: {biggest}. Send big media through the Files API (lower %config "
        "Kimi.upload_threshold; moonshot and moonshot-intl), attach fewer images or plot frames, "
        "or start fresh with `%%kimi --new` / `%kimi reset` (earlier messages are resent each turn)."
    )
