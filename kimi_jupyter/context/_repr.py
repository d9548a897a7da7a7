"""Bounded, never-raising text renderings of arbitrary objects.

Notebook objects can have enormous reprs, reprs that raise, or reprs that are slow for big
containers. Every place in the context layer that turns an object into text goes through
these helpers so that a prompt never grows without bound and never fails on ``__repr__``.

Big strings and byte strings are sliced before they are formatted (the repr of a 2 GiB
``bytes`` would need 2-8 GiB and tens of seconds only to be cut to 4,000 characters).

A ``__repr__`` written in Python gets `REPR_SECONDS` to finish: on the main thread of a
POSIX process (where notebook cells run) a ``SIGALRM`` timer interrupts it and the value is
shown as ``<TYPE: repr took longer than 2 s>``. Where that cannot be applied (another thread,
Windows, a timer the user's code already set, a slow repr inside C code that does not
return to Python, such as one huge C-level formatting call) the repr runs unbounded in time;
its output is still cut to size. Reprs that a library calls itself (pandas formatting the
object cells of a DataFrame summary) do not go through here and are not bounded in time.
"""

from __future__ import annotations

import reprlib
import signal
import threading
import types
from collections import deque
from typing import Any

__all__ = ["REPR_SECONDS", "bounded_repr", "clip", "safe_repr", "type_name", "timed_repr"]

_CONTAINERS = (list, tuple, dict, set, frozenset, deque)
REPR_SECONDS = 2.0


class ReprTimeout(BaseException):
    """Raised inside a user ``__repr__`` that ran out of time (a BaseException, so the
    repr's own ``except Exception`` does not swallow it)."""


def _raise_timeout(signum: int, frame: Any) -> None:
    raise ReprTimeout


def _user_code(obj: Any) -> bool:
    method = getattr(type(obj), "__repr__", None)
    return isinstance(method, types.FunctionType)


def timed_repr(obj: Any, seconds: float = REPR_SECONDS, render: Any = repr, *, always: bool = False) -> str:
    """``render(obj)`` (default ``repr``), interrupted after ``seconds`` when that can be
    done (see the module docstring) and the repr is Python code (or ``always``, for a
    container whose items may be); raises `ReprTimeout` then, and whatever the repr raises
    otherwise."""
    if (not (always or _user_code(obj)) or not hasattr(signal, "setitimer")
            or threading.current_thread() is not threading.main_thread()):
        return render(obj)  # type: ignore[no-any-return]
    try:
        if signal.getitimer(signal.ITIMER_REAL)[0] > 0:
            return render(obj)  # type: ignore[no-any-return]  # a timer runs already (the user's, or an outer repr's)
        previous = signal.signal(signal.SIGALRM, _raise_timeout)
    except (ValueError, OSError):
        return render(obj)  # type: ignore[no-any-return]
    try:
        signal.setitimer(signal.ITIMER_REAL, seconds)
        return render(obj)  # type: ignore[no-any-return]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _sliced(obj: Any, limit: int) -> str | None:
    """The repr of the first part of a big str/bytes, or None for anything else."""
    try:
        if isinstance(obj, (str, bytes, bytearray)) and len(obj) > limit:
            head = obj[:limit]
        elif isinstance(obj, memoryview) and obj.nbytes > limit:
            head = obj.cast("B")[:limit].tobytes() if obj.contiguous else b""
        else:
            return None
        return repr(type(obj)(head) if type(obj) in (str, bytes, bytearray) else head)
    except Exception:
        return None


def _slow(obj: Any) -> str:
    seconds = REPR_SECONDS
    return f"<{type_name(obj)}: repr took longer than {seconds:g} s; not shown>"


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
    sliced = _sliced(obj, limit)
    if sliced is not None:
        return clip(sliced, limit)
    try:
        text = timed_repr(obj)
        if not isinstance(text, str):
            raise TypeError("__repr__ returned a non-string")
    except ReprTimeout:
        return clip(_slow(obj), limit)
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
            text = timed_repr(obj, render=_reprlib(limit).repr, always=True)
            size = len(obj)
            if size > 100:
                note = f"  [{type_name(obj)} of {size:,} items, abbreviated]"
        except ReprTimeout:
            return _slow(obj)
        except Exception:
            return f"<unprintable {type_name(obj)}>"
    else:
        sliced = _sliced(obj, limit)
        if sliced is not None:
            size = obj.nbytes if isinstance(obj, memoryview) else len(obj)
            note = f" [{type_name(obj)} of {size:,} {'characters' if isinstance(obj, str) else 'bytes'}, cut]"
            return clip(sliced, max(1, limit - len(note))) + note if limit > len(note) + 10 else clip(sliced, limit)
        try:
            text = timed_repr(obj)
            if not isinstance(text, str):
                raise TypeError("__repr__ returned a non-string")
        except ReprTimeout:
            return _slow(obj)
        except Exception:
            return f"<unprintable {type_name(obj)}>"
    if len(text) + len(note) <= limit:
        return text + note
    note = f"… [repr truncated, {len(text):,} chars in all]"
    if limit <= len(note) + 10:
        return clip(text, limit)
    return text[: limit - len(note)] + note
