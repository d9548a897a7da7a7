"""One egress: the last step before any byte leaves for the provider.

Every request body the package sends passes `seal` (chat bodies, the token estimate, batch
creation, each line of a batch JSONL file) and every upload passes `check_upload` (documents
for ``file-extract``, images, videos, batch files). Both run after every cut and every
formatting step, so no path earlier on (a tool result, a document, a variable summary, a
traceback, a clipped repr) has to get redaction right for the key to stay home.

What counts as the key: every secret of `kimi_jupyter.secrets.secrets_of` (the configured
key and the keys in the environment), whole, JSON-escaped, and any piece of it that a cut
can leave: a run of at least `kimi_jupyter.secrets.PIECE` characters at its start or at its
end (a value cut in the middle of a key keeps one of those). `seal` replaces each with
``***``; the masked body is still valid JSON (the mask has no quote or backslash).

An upload is not rewritten (a document's bytes are not ours to change): `check_upload`
reads it once, in blocks, and refuses it with `KeyInUploadError` when the key or a piece of
it is in there. Nothing is sent then.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import IO, Any

from ..errors import KimiError
from ..secrets import MASK, PIECE, PIECE_MIN, _usable, distinctive, redact_text

__all__ = ["KeyInUploadError", "check_upload", "pieces", "seal"]

_BLOCK = 1024 * 1024


class KeyInUploadError(KimiError):
    """An upload's content holds the API key (or a piece of it): it was not sent."""


def _variants(secrets: Iterable[str] | str | None) -> tuple[str, ...]:
    """Each secret as written and as JSON writes it inside a string (a quote or backslash in it)."""
    out: list[str] = []
    for s in _usable(secrets):
        for v in (s, json.dumps(s, ensure_ascii=False)[1:-1]):
            if v not in out:
                out.append(v)
    return tuple(out)


def pieces(secrets: Iterable[str] | str | None) -> tuple[bytes, ...]:
    """The byte strings whose presence means a secret (or a cut piece of one) is there."""
    found: list[bytes] = []
    for s in _variants(secrets):
        items = [s]
        if len(s) >= PIECE_MIN:
            items += [p for p in (s[:PIECE], s[-PIECE:]) if distinctive(p)]
        for item in items:
            b = item.encode("utf-8")
            if b not in found:
                found.append(b)
    return tuple(found)


def seal(body: bytes, secrets: Iterable[str] | str | None) -> bytes:
    """``body`` (UTF-8 JSON) with every secret and every cut piece of one masked.

    One C substring search per piece when nothing is there (the same bytes come back)."""
    found = pieces(secrets)
    if not found or not any(p in body for p in found):
        return body
    text = body.decode("utf-8", "surrogateescape")
    text = redact_text(text, _variants(secrets))
    return text.encode("utf-8", "surrogateescape")


def seal_json(value: Any, secrets: Iterable[str] | str | None) -> bytes:
    """``value`` as the compact JSON body httpx would send for ``json=``, then `seal`-ed."""
    from .request import encode_body

    return seal(encode_body(value), secrets)


def check_upload(raw: IO[bytes], secrets: Iterable[str] | str | None, name: str) -> None:
    """Refuse an upload whose bytes hold a secret or a piece of one; ``raw`` is rewound to
    where it was. Reads one block at a time (memory does not grow with the file)."""
    found = pieces(secrets)
    if not found:
        return
    overlap = max(len(p) for p in found) - 1
    start = raw.tell()
    tail = b""
    try:
        while True:
            block = raw.read(_BLOCK)
            if not block:
                return
            window = tail + block
            if any(p in window for p in found):
                raise KeyInUploadError(
                    f"Not uploaded: {name} contains your API key (or a piece of it). Remove the key from "
                    "the file and try again; nothing was sent.")
            tail = window[-overlap:] if overlap else b""
    finally:
        raw.seek(start, os.SEEK_SET)


def mask_text(text: str, secrets: Iterable[str] | str | None, mask: str = MASK) -> str:
    """`kimi_jupyter.secrets.redact_text` with another mask (exports write ``[redacted]``)."""
    return redact_text(text, secrets, mask)
