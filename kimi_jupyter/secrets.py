"""The API key never leaves: redaction for every value that goes to the model, the screen,
a log, the cache or the history.

``redact(value, secrets)`` returns ``value`` with every configured secret (and so every
string that contains one) replaced by ``***``, whatever its shape: ``str``, ``bytes``,
message lists and dicts (keys and values), tuples. Anything else is returned as it is. When
there is nothing to redact the very same object comes back (no copy), and the check is one
``in`` per string (a C substring search), so it is cheap to call on every request.

``secrets_of(settings)`` is what to redact for a given configuration: the configured key,
plus any key set in the environment under the key variables (``MOONSHOT_API_KEY``,
``KIMI_API_KEY``), so a key that is in the environment but overridden by ``%config`` is not
sent either. Secrets shorter than `MIN_SECRET` characters are ignored: replacing every "ab"
in a prompt would mangle it, and no provider issues keys that short.

``validate_key`` refuses keys that cannot be sent in an HTTP header (non-ASCII, whitespace,
line breaks, control characters) with one message that never echoes the key.

What this does not cover: code the user approves (``run_python``) runs with the user's
rights and can read the key and send it anywhere itself; a key transformed before it is
shown (base64, reversed, split in two) is not recognised.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["distinctive", "key_notice_once", "MASK", "MIN_SECRET", "redact", "redact_text", "secrets_of", "validate_key", "KEY_ENV_VARS"]

MASK = "***"
MIN_SECRET = 6
#: A cut piece of a key is masked too: wherever the first `PIECE` characters of a key (of at
#: least `PIECE_MIN` characters) appear, as much of the key as follows them is masked, and
#: wherever its last `PIECE` characters appear, as much of the key as precedes them. A value
#: cut in the middle of a key (a bounded repr, a frame cell, a clipped tool result, a window
#: that starts inside it) therefore shows at most `PIECE` - 1 characters of it.
#: A piece that is a plain lower-case word ("imulator" of a test key ending in "simulator")
#: is not used: it would mask ordinary words, and a random key's end is one of those about
#: once in a thousand keys.
PIECE = 8
PIECE_MIN = 12
PREFIX, PREFIX_MIN = PIECE, PIECE_MIN  # the names before pieces at the end were masked too
KEY_ENV_VARS = ("MOONSHOT_API_KEY", "KIMI_API_KEY")


def secrets_of(settings: Any, environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The strings to redact for ``settings``: its key and the keys in the environment."""
    found: list[str] = []
    key: Any = getattr(settings, "api_key", None)
    value = key.get() if hasattr(key, "get") else key
    if isinstance(value, str):
        found.append(value)
    env = os.environ if environ is None else environ
    for name in KEY_ENV_VARS:
        v = env.get(name)
        if v:
            found.append(v.strip())
    out: list[str] = []
    for s in found:
        if len(s) >= MIN_SECRET and s not in out:
            out.append(s)
    # Longest first, so a key that contains another is masked whole.
    return tuple(sorted(out, key=len, reverse=True))


def _usable(secrets: Iterable[str] | str | None) -> tuple[str, ...]:
    if not secrets:
        return ()
    if isinstance(secrets, str):
        secrets = (secrets,)
    return tuple(s for s in secrets if isinstance(s, str) and len(s) >= MIN_SECRET)


def redact_text(text: str, secrets: Iterable[str] | str | None, mask: str = MASK) -> str:
    """``text`` with each secret (and each cut piece of one) replaced by ``mask``."""
    for s in _usable(secrets):
        text = _mask(text, s, mask)
    return text


def _mask(text: str, s: str, mask: str = MASK) -> str:
    if s in text:
        text = text.replace(s, mask)
    if len(s) >= PIECE_MIN:
        head = s[:PIECE]
        if head in text and distinctive(head):
            text = _mask_heads(text, s, head, mask)
        tail = s[-PIECE:]
        if tail in text and distinctive(tail):
            text = _mask_tails(text, s, tail, mask)
    return text


def distinctive(piece: str) -> bool:
    """Whether a cut piece of a key is worth masking: anything but a plain lower-case word."""
    return not (piece.isalpha() and piece.islower())


def _mask_heads(text: str, s: str, head: str, mask: str) -> str:
    out: list[str] = []
    at = 0
    while True:
        i = text.find(head, at)
        if i < 0:
            break
        j = i + len(head)
        k = len(head)
        while j < len(text) and k < len(s) and text[j] == s[k]:
            j += 1
            k += 1
        out.append(text[at:i])
        out.append(mask)
        at = j
    out.append(text[at:])
    return "".join(out)


def _mask_tails(text: str, s: str, tail: str, mask: str) -> str:
    """The mirror of `_mask_heads`: each end piece of ``s`` and as much of ``s`` as precedes it."""
    flip = _mask_heads(text[::-1], s[::-1], tail[::-1], mask[::-1])
    return flip[::-1]


def redact(value: Any, secrets: Iterable[str] | str | None) -> Any:
    """``value`` with every secret masked, in strings, bytes, dicts, lists and tuples.

    Returns the same object when nothing needed masking, a redacted copy otherwise (the
    input is never changed in place).
    """
    found = _usable(secrets)
    if not found:
        return value
    if type(value) is str:  # the common case: a message sent as one string
        for s in found:
            value = _mask(value, s)
        return value
    encoded = tuple(s.encode("utf-8") for s in found)
    return _walk(value, found, encoded, 0)


def _walk(value: Any, found: tuple[str, ...], encoded: tuple[bytes, ...], depth: int) -> Any:
    kind = type(value)
    if kind is str:
        for s in found:
            value = _mask(value, s)
        return value
    if depth > 64:  # a structure this deep is not a message; masking stops at the strings above
        return value
    if kind is dict or isinstance(value, dict):
        changed = False
        out = {}
        for k, v in value.items():
            nk = _walk(k, found, encoded, depth + 1) if type(k) is str else k
            nv = _walk(v, found, encoded, depth + 1)
            changed = changed or nk is not k or nv is not v
            out[nk] = nv
        return out if changed else value
    if kind is list or kind is tuple:
        items = [_walk(v, found, encoded, depth + 1) for v in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return items if kind is list else tuple(items)
    if kind is bytes or kind is bytearray:
        if not any(b in value for b in encoded):
            return value
        out_b = bytes(value)
        for b in encoded:
            out_b = out_b.replace(b, MASK.encode())
        return out_b if kind is bytes else bytearray(out_b)
    if isinstance(value, str):  # a str subclass
        return _walk(str(value), found, encoded, depth)
    return value


def validate_key(key: str) -> str | None:
    """Why ``key`` cannot be used (never quoting it), or None when it can."""
    if not key.isascii():
        return ("The API key contains a non-ASCII character (often a typographic quote or an "
                "invisible character from copying)")
    if any(c in key for c in "\r\n"):
        return "The API key contains a line break"
    if any(c.isspace() for c in key):
        return "The API key contains whitespace"
    if not key.isprintable():
        return "The API key contains a control character"
    return None


_ANNOUNCED: set[tuple[str, str, str]] = set()


def key_notice_once(settings: Any) -> str | None:
    """`Settings.key_destination_notice`, once per (host, key source, URL source) in this
    process: the first turn that would send the key there says so, later ones do not."""
    text = settings.key_destination_notice()
    if not text:
        return None
    sources = getattr(settings, "sources", {}) or {}
    mark = (str(settings.base_url), sources.get("api_key", ""), sources.get("base_url", ""))
    if mark in _ANNOUNCED:
        return None
    _ANNOUNCED.add(mark)
    return text
