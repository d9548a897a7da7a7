"""The size of a request, checked before its body is built.

Moonshot refuses request bodies over 100 MB with a 413, but only after the whole body has
been encoded (for five 49 MB videos: a 342 MB body, +1.6 GB of memory, 41 s) and uploaded.
`check_request_size` measures the messages instead, without encoding them: the length of
each string (media travel as base64 data URLs, so their string length is their size on the
wire), plus a small allowance per value for JSON syntax. It also refuses a prompt whose
local token estimate is far over the model's context window (`CONTEXT_FACTOR` times): the
estimate (characters / 4) is rough, so only a request that cannot possibly fit is refused;
the server decides the rest.

The check is one pass over the strings (``str.isascii`` and ``len``, both in C), so it costs
microseconds per megabyte and runs on every request, in the client itself.
"""

from __future__ import annotations

from typing import Any

from ..errors import RequestTooLargeError

__all__ = ["BODY_LIMIT", "CONTEXT_FACTOR", "check_request_size", "request_size"]

BODY_LIMIT = 100_000_000  # bytes: Moonshot's limit on one request body
CONTEXT_FACTOR = 4.0
_CHARS_PER_TOKEN = 4


def _strlen(s: str) -> int:
    # JSON of a non-ASCII string is at most 6 bytes per character (\\uXXXX); UTF-8 is <= 4.
    return len(s) + 2 if s.isascii() else len(s) * 3 + 2


def _size(value: Any, depth: int = 0) -> int:
    kind = type(value)
    if kind is str:
        return _strlen(value)
    if depth > 64:
        return 0
    if kind is dict or isinstance(value, dict):
        return 2 + sum(_size(k, depth + 1) + 1 + _size(v, depth + 1) + 1 for k, v in value.items())
    if kind is list or kind is tuple:
        return 2 + sum(_size(v, depth + 1) + 1 for v in value)
    if isinstance(value, (bytes, bytearray)):
        return len(value) * 4 // 3 + 4
    return 8


def _describe(message: dict[str, Any], index: int) -> list[tuple[int, str]]:
    """(size, label) of the parts of one message."""
    role = message.get("role", "message") if isinstance(message, dict) else "message"
    content = message.get("content") if isinstance(message, dict) else None
    where = f"message {index + 1} ({role})"
    if isinstance(content, list):
        out = []
        for n, part in enumerate(content, 1):
            kind = part.get("type", "part") if isinstance(part, dict) else "part"
            label = {"image_url": "an image", "video_url": "a video", "text": "text"}.get(kind, kind)
            out.append((_size(part), f"{label} in {where}, part {n}"))
        return out
    return [(_size(message), where)]


def _text_chars(messages: list[dict[str, Any]]) -> int:
    total = 0
    for m in messages:
        if not isinstance(m, dict):
            continue
        content = m.get("content")
        if isinstance(content, str):
            total += len(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
                    total += len(part["text"])
        for field in ("reasoning_content",):
            if isinstance(m.get(field), str):
                total += len(m[field])
    return total


def request_size(messages: list[dict[str, Any]]) -> int:
    """An upper estimate of the JSON size of ``messages`` in bytes, without encoding them."""
    return _size(messages)


def _mb(n: int) -> str:
    return f"{n / 1_000_000:,.1f} MB"


def check_request_size(messages: list[dict[str, Any]], settings: Any, *,
                       raise_error: bool = False) -> str | None:
    """Why ``messages`` must not be sent (a message for the user), or None.

    Refuses a body over `BODY_LIMIT`, naming its biggest parts, and a prompt whose local
    estimate is more than `CONTEXT_FACTOR` times the model's context window. With
    ``raise_error`` the message is raised as `RequestTooLargeError` instead.
    """
    size = request_size(messages)
    problem = None
    if size > BODY_LIMIT:
        parts: list[tuple[int, str]] = []
        for i, m in enumerate(messages):
            parts.extend(_describe(m, i))
        parts.sort(key=lambda p: p[0], reverse=True)
        biggest = "; ".join(f"{label}: {_mb(n)}" for n, label in parts[:3])
        problem = (f"Refused: this request would be about {_mb(size)}, over the {_mb(BODY_LIMIT)} the API accepts "
                   f"in one request. Biggest parts: {biggest}. Send shorter or smaller videos, fewer or smaller "
                   "images, or start a new conversation (%kimi reset). Nothing was sent.")
    else:
        preset = getattr(settings, "preset", None)
        window = getattr(preset, "context_window", None)
        if window:
            tokens = _text_chars(messages) // _CHARS_PER_TOKEN
            if tokens > CONTEXT_FACTOR * window:
                problem = (f"Refused: the text of this request is about {tokens:,} tokens (estimated locally), far "
                           f"over the model's context window of {window:,} tokens. Send less text (a summary, "
                           "fewer cells, a smaller {variable}) or start fresh with %kimi reset. Nothing was sent.")
    if problem and raise_error:
        raise RequestTooLargeError(problem)
    return problem
