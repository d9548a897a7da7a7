"""Bounded, never-raising text renderings of arbitrary objects.

Notebook objects can have enormous reprs, reprs that raise, or reprs that are slow for big
containers. Every place in the context layer that turns an object into text goes through
these helpers so that a prompt never grows without bound and never fails on ``__repr__``.
"""

from __future__ import annotations

import reprlib
from collections import deque
from typing import Any

__all__ = ["bounded_repr", "clip", "safe_repr", "type_name"]

_CONTAINERS = (list, tuple, dict, set, frozenset, deque)


def type_name(obj: Any) -> str:
    """``module.QualName`` of ``type(obj)``, shortened for builtins; never raises."""
    cls = type(obj)
    try:
        module = cls.__module__
        name = cls.__qualname__
    except Exception:
        return "object"
    if not isinstance(module, str) or not isinstance(name, str):
        return "object"
    if module == "builtins":
        return name
    return f"{module}.{name}"


def clip(text: str, limit: int, marker: str = "…") -> str:
    """Cut ``text`` to at most ``limit`` characters, ending with ``marker`` when cut."""
    limit = max(0, limit)
    if len(text) <= limit:
        return text
    if limit <= len(marker):
        return text[:limit]
    return text[: limit - len(marker)] + marker


def safe_repr(obj: Any, limit: int = 200) -> str:
    """``repr(obj)`` cut to ``limit`` characters, or ``<unprintable TYPE>`` if it raises."""
    try:
        text = repr(obj)
        if not isinstance(text, str):
            raise TypeError("__repr__ returned a non-string")
    except Exception:
        return f"<unprintable {type_name(obj)}>"
    return clip(text, limit)


def _reprlib(limit: int) -> reprlib.Repr:
    r = reprlib.Repr()
    r.maxlevel = 5
    r.maxtuple = r.maxlist = r.maxset = r.maxfrozenset = r.maxdeque = 100
    r.maxarray = 100
    r.maxdict = 60
    r.maxstring = max(40, min(limit, 2000))
    r.maxlong = 400
    r.maxother = max(40, min(limit, 400))
    return r


def bounded_repr(obj: Any, limit: int = 4000) -> str:
    """A repr of at most ``limit`` characters that says when it was shortened.

    Builtin containers are rendered with :mod:`reprlib` so a list of ten million items costs
    no more than a short one; anything else uses its own ``__repr__``. A raising
    ``__repr__`` yields ``<unprintable TYPE>``.
    """
    limit = max(1, limit)
    note = ""
    if isinstance(obj, _CONTAINERS):
        try:
            text = _reprlib(limit).repr(obj)
            size = len(obj)
            if size > 100:
                note = f"  [{type_name(obj)} of {size:,} items, abbreviated]"
        except Exception:
            return f"<unprintable {type_name(obj)}>"
    else:
        try:
            text = repr(obj)
            if not isinstance(text, str):
                raise TypeError("__repr__ returned a non-string")
        except Exception:
            return f"<unprintable {type_name(obj)}>"
    if len(text) + len(note) <= limit:
        return text + note
    note = f"… [repr truncated, {len(text):,} chars in all]"
    if limit <= len(note) + 10:
        return clip(text, limit)
    return text[: limit - len(note)] + note
