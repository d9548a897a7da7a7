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
from .request_size import check_request_size as check_body_size

__all__ = ["BODY_LIMIT", "CONTEXT_FACTOR", "check_request_size"]

BODY_LIMIT = 100_000_000  # bytes: Moonshot's limit on one request body
CONTEXT_FACTOR = 4.0
_CHARS_PER_TOKEN = 4


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


def check_request_size(messages: list[dict[str, Any]], settings: Any, *,
                       raise_error: bool = False, known: tuple[int, int] = (0, 0)) -> str | None:
    """Why ``messages`` must not be sent (a message for the user), or None.

    Refuses a body over `BODY_LIMIT`, naming its biggest parts, and a prompt whose local
    estimate is more than `CONTEXT_FACTOR` times the model's context window. With
    ``raise_error`` the message is raised as `RequestTooLargeError` instead. ``known``:
    ``(count, bound)`` of the first messages, whose size bound is already known.
    """
    problem = None
    try:  # the body: sized from the messages, before anything is encoded (request_size.py)
        check_body_size(messages, limit=BODY_LIMIT, known=known)
    except RequestTooLargeError as error:
        text = str(error)
        problem = f"Refused: {text[:1].lower()}{text[1:]}"
    if problem is None:
        window = getattr(settings, "context_window", None)
        if window:
            tokens = _text_chars(messages) // _CHARS_PER_TOKEN
            if tokens > CONTEXT_FACTOR * window:
                problem = (f"Refused: the text of this request is about {tokens:,} tokens (estimated locally), far "
                           f"over the model's context window of {window:,} tokens. Send less text (a summary, "
                           "fewer cells, a smaller {variable}) or start fresh with %kimi reset. Nothing was sent.")
    if problem and raise_error:
        raise RequestTooLargeError(problem)
    return problem
