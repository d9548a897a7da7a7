"""Deterministic token accounting, without a tokenizer.

The simulator must report token usage and answer ``/tokenizers/estimate-token-count``, yet
Kimi's tokenizer is not available offline and tests need numbers they can predict. So
tokens are counted by simple, documented rules:

* a string costs ``ceil(utf8_bytes / 4)`` tokens (:func:`text_tokens`);
* every message costs :data:`MESSAGE_OVERHEAD` more, and every request
  :data:`REQUEST_OVERHEAD` more; tool definitions cost the tokens of their JSON (those a
  system message declares too), and so does a ``json_schema`` response format;
* earlier reasoning (``reasoning_content``) counts: Moonshot's contract keeps it
  (``thinking.keep: "all"``);
* an image costs one token per started 28x28 pixel patch (``ceil(w/28) * ceil(h/28)``)
  plus :data:`IMAGE_OVERHEAD`; its size is read from the PNG, JPEG, GIF or WebP header by
  a tiny parser; an image whose size cannot be read costs :data:`IMAGE_OVERHEAD` plus one
  token per started KiB;
* a video costs :data:`VIDEO_TOKENS_PER_MB` per started MiB.

This module also inspects media parts (:class:`Media`), since the same decoding serves
token counting, validation (only ``data:`` URLs) and the demo reply's description of what
it received.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import struct
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# ``(url, kind) -> stored file`` for ``ms://`` parts (see ``files.resolver``); it raises the
# API error for an unknown id.
Resolver = Callable[[str, str], Any]

REQUEST_OVERHEAD = 3
MESSAGE_OVERHEAD = 4
IMAGE_OVERHEAD = 4
IMAGE_PATCH_PIXELS = 28
VIDEO_TOKENS_PER_MB = 2000
_MIB = 1024 * 1024


def text_tokens(text: str) -> int:
    """Tokens of one string: a quarter of its UTF-8 length, rounded up."""
    return (len(text.encode("utf-8")) + 3) // 4


@dataclass(frozen=True)
class Usage:
    """Token usage of one response, before a dialect puts it into its wire shape."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cached_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(frozen=True)
class Media:
    """One ``image_url`` or ``video_url`` content part, as far as it could be decoded.

    ``source`` is ``"data"`` for a decodable data URL, ``"file"`` for an ``ms://`` file
    reference, ``"remote"`` for anything else (http URLs, which Moonshot refuses) and
    ``"invalid"`` for a data URL whose payload does not decode.
    """

    kind: str
    source: str
    url_start: str
    mime: str
    nbytes: int
    format: str | None
    width: int | None
    height: int | None
    message_index: int

    @property
    def tokens(self) -> int:
        """What this part adds to the prompt."""
        if self.kind == "video":
            return VIDEO_TOKENS_PER_MB * max(1, math.ceil(self.nbytes / _MIB))
        if self.width and self.height:
            patches = math.ceil(self.width / IMAGE_PATCH_PIXELS) * math.ceil(self.height / IMAGE_PATCH_PIXELS)
            return IMAGE_OVERHEAD + patches
        return IMAGE_OVERHEAD + max(1, math.ceil(self.nbytes / 1024))


@dataclass(frozen=True)
class PromptStats:
    """Token count of a request's prompt, with the parts the prefix-cache model needs."""

    total: int
    base_tokens: int
    message_tokens: tuple[int, ...]
    media: tuple[Media, ...]


def decode_data_url(url: str) -> tuple[str, bytes]:
    """Split ``data:<mime>[;base64],<payload>`` into its MIME type and bytes.

    Raises ``ValueError`` when ``url`` is not a data URL or its payload does not decode.
    """
    if not url.startswith("data:") or "," not in url:
        raise ValueError("not a data URL")
    header, payload = url[5:].split(",", 1)
    params = header.split(";")
    mime = params[0].strip().lower()
    if "base64" in (p.strip().lower() for p in params[1:]):
        try:
            data = base64.b64decode("".join(payload.split()), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"base64 payload does not decode: {exc}") from None
    else:
        data = urllib.parse.unquote_to_bytes(payload)
    if not data:
        raise ValueError("empty data URL")
    return mime, data


def image_size(data: bytes) -> tuple[str, int, int] | None:
    """``(format, width, height)`` read from a PNG, JPEG, GIF or WebP header, else None."""
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
            width, height = struct.unpack(">II", data[16:24])
            return "png", width, height
        if data[:6] in (b"GIF87a", b"GIF89a"):
            width, height = struct.unpack("<HH", data[6:10])
            return "gif", width, height
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp_size(data)
        if data[:2] == b"\xff\xd8":
            return _jpeg_size(data)
    except struct.error:
        return None
    return None


def _webp_size(data: bytes) -> tuple[str, int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return "webp", width, height
    if chunk == b"VP8L" and data[20:21] == b"\x2f":
        bits = int.from_bytes(data[21:25], "little")
        return "webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return "webp", width & 0x3FFF, height & 0x3FFF
    return None


_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_size(data: bytes) -> tuple[str, int, int] | None:
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD9:  # markers without a length
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return "jpeg", width, height
        i += 2 + length
    return None


def _part_url(part: Mapping[str, Any], key: str) -> str:
    value = part.get(key)
    if isinstance(value, Mapping):
        value = value.get("url")
    return value if isinstance(value, str) else ""


def inspect_media(part: Mapping[str, Any], message_index: int, resolve: Resolver | None = None) -> Media:
    """Decode one ``image_url``/``video_url`` part far enough to price and describe it.

    ``ms://<id>`` parts are priced from the uploaded file when ``resolve`` is given.
    """
    kind = "video" if part.get("type") == "video_url" else "image"
    url = _part_url(part, f"{kind}_url")
    start = url[:40]
    if url.startswith("ms://"):
        if resolve is None:
            return Media(kind, "file", start, "", 0, None, None, None, message_index)
        data = resolve(url, kind).data
        size = image_size(data) if kind == "image" else None
        fmt, width, height = size if size else (None, None, None)
        return Media(kind, "file", start, "", len(data), fmt, width, height, message_index)
    if not url.startswith("data:"):
        return Media(kind, "remote", start, "", 0, None, None, None, message_index)
    try:
        mime, data = decode_data_url(url)
    except ValueError:
        return Media(kind, "invalid", start, "", 0, None, None, None, message_index)
    size = image_size(data) if kind == "image" else None
    fmt, width, height = size if size else (None, None, None)
    return Media(kind, "data", start, mime, len(data), fmt, width, height, message_index)


def _content_tokens(content: Any, message_index: int, media: list[Media], resolve: Resolver | None) -> int:
    if content is None:
        return 0
    if isinstance(content, str):
        return text_tokens(content)
    if not isinstance(content, list):
        return text_tokens(json.dumps(content, ensure_ascii=False))
    tokens = 0
    for part in content:
        if not isinstance(part, Mapping):
            tokens += text_tokens(str(part))
        elif part.get("type") in ("image_url", "video_url"):
            item = inspect_media(part, message_index, resolve)
            media.append(item)
            tokens += item.tokens
        elif isinstance(part.get("text"), str):
            tokens += text_tokens(part["text"])
        else:
            tokens += text_tokens(json.dumps(part, ensure_ascii=False))
    return tokens


def message_tokens(
    message: Mapping[str, Any], message_index: int, media: list[Media], resolve: Resolver | None = None
) -> int:
    """Tokens of one message: overhead, content, name, reasoning and tool calls."""
    tokens = MESSAGE_OVERHEAD + _content_tokens(message.get("content"), message_index, media, resolve)
    for key in ("name", "reasoning_content", "reasoning"):
        value = message.get(key)
        if isinstance(value, str):
            tokens += text_tokens(value)
    tools = message.get("tools")
    if isinstance(tools, list) and tools:
        tokens += text_tokens(json.dumps(tools, ensure_ascii=False))
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, Mapping) else None
        if isinstance(function, Mapping):
            tokens += text_tokens(str(function.get("name") or "")) + text_tokens(
                str(function.get("arguments") or "")
            )
    return tokens


def count_prompt(
    messages: Sequence[Any],
    tools: Sequence[Any] | None = None,
    resolve: Resolver | None = None,
    response_format: Any = None,
) -> PromptStats:
    """Count the prompt tokens of ``messages`` (and ``tools``, and a ``json_schema``
    ``response_format``) by the rules above; ``resolve`` looks ``ms://`` file references up
    (an unknown id raises its API error)."""
    media: list[Media] = []
    base = REQUEST_OVERHEAD + (text_tokens(json.dumps(list(tools), ensure_ascii=False)) if tools else 0)
    if isinstance(response_format, Mapping) and response_format.get("type") == "json_schema":
        base += text_tokens(json.dumps(response_format.get("json_schema"), ensure_ascii=False, default=str))
    per_message = tuple(
        message_tokens(m, i, media, resolve) if isinstance(m, Mapping) else text_tokens(str(m))
        for i, m in enumerate(messages)
    )
    return PromptStats(base + sum(per_message), base, per_message, tuple(media))
