"""A response cache so that re-running a notebook neither re-bills nor changes its story.

A turn is keyed on everything that shapes the answer: provider, model, thinking, limits,
system prompt, the messages (image and video data replaced by their SHA-256, so keys stay
small), tools and response format. The entry keeps the turn's events exactly as they were
shown and the messages the turn added to the conversation, so a replay renders the same
text, reasoning, usage and tool steps. A replay adds to the memory only the request and the
replayed answer (`Turn._replay`), never the entry's messages.
Entries hold no API key and no base URL (a gateway URL can carry credentials).

A cache file is untrusted input (anyone who can write the folder can plant one): `load`
opens only regular files of at most `MAX_ENTRY_BYTES` (a FIFO in place of an entry would
block the cell), checks the schema and every field's type, and treats anything else as a
miss, setting `ResponseCache.problem` to a one-line notice. A replayed entry never shows a
tool step or an approval as if it happened now: `replay_events` turns the recorded run's
tool and approval events into notices that say they were recorded, not run in this replay.

Writes leave the caller at once: `ResponseCache.store` encodes the entry (a snapshot) and
hands it to one writer thread per process (`CacheWriter`), which writes what is queued in
batches (a temporary file each, then an atomic rename), so no row of a ``map()`` and no
cell waits for the disk. An entry queued but not yet written is already a hit for `load`.
`flush_writes()` waits until everything queued is on disk: ``map()`` calls it when a run
ends, also when it is stopped or interrupted, and the interpreter calls it at exit.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from .events import (
    _EVENT_TYPES,
    ApprovalRequested,
    ApprovalResolved,
    Event,
    Notice,
    ReasoningDelta,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    event_to_json,
)

__all__ = ["ResponseCache", "CachedTurn", "CacheWriter", "request_key", "replay_events", "parse_entry",
           "flush_writes", "MAX_ENTRY_BYTES"]

FORMAT = 1
MAX_ENTRY_BYTES = 64 * 1024 * 1024
_ROLES = {"system", "user", "assistant", "tool"}


def _hash_media(value: Any, odd: list[bool] | None = None) -> Any:
    """A copy of a message structure with data URLs replaced by their digest.

    ``odd`` gets an item when the structure holds a value orjson might write differently
    from ``json.dumps`` (a float, a subclass). orjson refuses the other differences (an
    integer over 64 bits, a non-string key) with an error, and `request_key` falls back."""
    kind = type(value)
    if kind is str:
        if len(value) > 256 and value.startswith("data:"):
            head, _, data = value.partition(",")
            return f"{head},sha256:{hashlib.sha256(data.encode()).hexdigest()}"
        return value
    if kind is dict:
        return {k: _hash_media(v, odd) for k, v in value.items()}
    if kind is list:
        return [_hash_media(v, odd) for v in value]
    if kind is bool or kind is int or value is None:
        return value
    if odd is not None:
        odd.append(True)
    if isinstance(value, dict):
        return {k: _hash_media(v, odd) for k, v in value.items()}
    if isinstance(value, list):
        return [_hash_media(v, odd) for v in value]
    if isinstance(value, str):  # a str subclass
        return _hash_media(str(value), odd)
    return value


def _has_media_or_floats(value: Any) -> bool:
    """Whether `_hash_media` would change anything or find a float (else the shape is hashed
    as it is, without a copy)."""
    kind = type(value)
    if kind is str:
        return len(value) > 256 and value.startswith("data:")
    if kind is dict:
        for item in value.values():  # noqa: SIM110 (a loop, not any(): no generator per level)
            if _has_media_or_floats(item):
                return True
        return False
    if kind is list:
        for item in value:  # noqa: SIM110
            if _has_media_or_floats(item):
                return True
        return False
    return not (kind is bool or kind is int or value is None)


def request_key(shape: dict[str, Any]) -> str:
    """The SHA-256 of the shape's canonical JSON (sorted keys, compact, UTF-8).

    orjson writes the same bytes as ``json.dumps(sort_keys=True, ensure_ascii=False,
    separators=(",", ":"))`` for strings, integers, booleans and null, at a fraction of the
    cost (a cached map() row computes one key); a shape with anything else (floats, whose
    shortest forms differ) is written by ``json.dumps``, so keys do not change."""
    odd: list[bool] = []
    hashed = _hash_media(shape, odd) if _has_media_or_floats(shape) else shape
    if odd:
        canonical = json.dumps(hashed, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()
    else:
        try:
            canonical = orjson.dumps(hashed, option=orjson.OPT_SORT_KEYS)
        except (TypeError, orjson.JSONEncodeError):  # a big integer, a non-string key, a lone surrogate
            canonical = json.dumps(hashed, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()
    return hashlib.sha256(b"kimi-cache-v%d\n" % FORMAT + canonical).hexdigest()


@dataclass
class CachedTurn:
    events: list[Event]
    conversation: list[dict[str, Any]]


class DamagedEntry(ValueError):
    """A cache entry that is not what `ResponseCache.store` writes."""


# A decoded entry holds only JSON's own types, so a field is checked by its exact type
# (``bool`` is not an ``int`` here, as in the annotation).
_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,), "int": (int,), "float": (int, float), "bool": (bool,), "dict[str, Any]": (dict,),
    "None": (type(None),),
}

# Per event type, its fields as (name, allowed types, required), worked out once.
_FIELDS: dict[type, list[tuple[str, frozenset[type], bool]]] = {}


def _fields_of(cls: type) -> list[tuple[str, frozenset[type], bool]]:
    found = _FIELDS.get(cls)
    if found is None:
        found = _FIELDS[cls] = [
            (f.name, frozenset(t for option in str(f.type).split(" | ") for t in _TYPES.get(option, ())),
             f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
            for f in dataclasses.fields(cls)]
    return found


def _event(data: Any) -> Event:
    if type(data) is not dict or type(data.get("type")) is not str:
        raise DamagedEntry("an event is not an object with a type")
    cls = _EVENT_TYPES.get(data["type"])
    if cls is None:
        raise DamagedEntry(f"unknown event type {data['type'][:40]!r}")
    specs, defaults, factories = _plan(cls)
    state = dict(defaults) if defaults is not None else {}
    for name, allowed, required in specs:
        if name in data:
            value = data[name]
            if type(value) not in allowed:
                raise DamagedEntry(f"{cls.__name__}.{name} has the wrong type")
            state[name] = value
        elif required:
            raise DamagedEntry(f"{cls.__name__} lacks {name}")
    if defaults is None:
        return cls(**state)  # type: ignore[no-any-return]
    for name, factory in factories:
        if name not in state:
            state[name] = factory()
    # The frozen events without slots are built without their generated ``__init__``
    # (which sets each field through ``object.__setattr__``): half the cost, the same
    # object (the client builds its per-token deltas the same way, see
    # ``events.text_slot_setter``).
    event = object.__new__(cls)
    object.__setattr__(event, "__dict__", state)
    return event  # type: ignore[no-any-return]


# Per event type: its fields as (name, allowed types, required), and for a frozen type
# without slots or __post_init__ its defaults and default factories (else None, []).
_PLANS: dict[type, tuple[list[tuple[str, frozenset[type], bool]], dict[str, Any] | None,
                         list[tuple[str, Any]]]] = {}


def _plan(cls: type) -> tuple[list[tuple[str, frozenset[type], bool]], dict[str, Any] | None, list[tuple[str, Any]]]:
    found = _PLANS.get(cls)
    if found is None:
        fields = dataclasses.fields(cls)
        plain = "__slots__" not in cls.__dict__ and not hasattr(cls, "__post_init__")
        found = _PLANS[cls] = (
            _fields_of(cls),
            {f.name: f.default for f in fields if f.default is not dataclasses.MISSING} if plain else None,
            [(f.name, f.default_factory) for f in fields if f.default_factory is not dataclasses.MISSING],
        )
    return found


def _message(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict) or data.get("role") not in _ROLES:
        raise DamagedEntry("a conversation message has no valid role")
    content = data.get("content")
    if content is not None and not isinstance(content, (str, list)):
        raise DamagedEntry("a conversation message has content of the wrong type")
    if isinstance(content, list) and not all(isinstance(p, dict) and isinstance(p.get("type"), str) for p in content):
        raise DamagedEntry("a content part is not an object with a type")
    calls = data.get("tool_calls")
    if calls is not None and not (isinstance(calls, list) and all(isinstance(c, dict) for c in calls)):
        raise DamagedEntry("tool_calls is not a list of objects")
    return data


def parse_entry(data: Any) -> CachedTurn:
    """A `CachedTurn` from a decoded entry, or `DamagedEntry` saying what is wrong."""
    if not isinstance(data, dict):
        raise DamagedEntry("the entry is not a JSON object")
    if data.get("format") != FORMAT:
        raise DamagedEntry("the entry has another format version")
    events, conversation = data.get("events"), data.get("conversation")
    if not isinstance(events, list) or not isinstance(conversation, list):
        raise DamagedEntry("events or conversation is not a list")
    return CachedTurn([_event(e) for e in events], [_message(m) for m in conversation])


_STEPS = (ToolCallStarted, ApprovalRequested, ApprovalResolved, ToolCallFinished)


def replay_events(events: list[Event]) -> list[Event]:
    """The recorded events as a replay shows them: tool steps and approvals of the recorded
    run become notices that say so; nothing looks as if it ran, or was approved, now."""
    names: dict[str, str] = {}
    out: list[Event] = []
    for event in events:
        if not isinstance(event, _STEPS):  # text, reasoning, usage, notices: replayed as they were
            out.append(event)
        elif isinstance(event, ToolCallStarted):
            names[event.id] = event.name
            out.append(Notice(f"Recorded tool step {event.name}: replayed, not run in this replay.", "info"))
        elif isinstance(event, ApprovalRequested):
            names[event.id] = event.name
        elif isinstance(event, ApprovalResolved):
            decision = "approved" if event.approved else "denied"
            out.append(Notice(f"The recorded run's {names.get(event.id, 'tool')} step was {decision} then; "
                              "nothing was asked or run in this replay.", "info"))
        elif isinstance(event, ToolCallFinished):
            result = event.error or event.result
            short = result if len(result) <= 200 else result[:200] + "…"
            out.append(Notice(f"Recorded result of {names.get(event.id, 'a tool')} (not run in this replay): "
                              f"{short}", "info"))
        else:
            out.append(event)
    return out


class ResponseCache:
    def __init__(self, directory: str | os.PathLike[str], writer: CacheWriter | None = None):
        # Absolute, so an entry queued now is written where it was meant to go even if the
        # working directory changes before the writer gets to it.
        self._root = os.path.abspath(os.fspath(directory))
        self._writer = writer
        self.problem: str | None = None  # a one-line notice after a damaged entry

    @property
    def directory(self) -> Path:
        return Path(self._root)

    def _path(self, key: str) -> Path:
        return Path(self._file(key))

    def _file(self, key: str) -> str:
        return f"{self._root}{os.sep}{key[:2]}{os.sep}{key}.json"

    def load(self, key: str) -> CachedTurn | None:
        """The entry for ``key`` ready to replay, or None (a miss). A damaged or planted
        entry is a miss too, and sets `problem` (so does an earlier write that failed)."""
        self.problem = self.writer.take_problem()
        path = self._file(key)
        try:
            raw = self.writer.pending(path)
            if raw is None:
                raw = _read_regular(path)
        except FileNotFoundError:
            return None
        except (OSError, DamagedEntry) as error:
            return self._damaged(path, str(error) if isinstance(error, DamagedEntry) else "it cannot be read")
        if raw is None:
            return None
        try:
            hit = parse_entry(orjson.loads(raw))
        except (ValueError, RecursionError) as error:  # DamagedEntry is a ValueError
            reason = str(error) if isinstance(error, DamagedEntry) else "it is not valid JSON"
            return self._damaged(path, reason)
        except (TypeError, KeyError):
            return self._damaged(path, "its fields have the wrong types")
        hit.events = replay_events(hit.events)
        return hit

    def _damaged(self, path: str, reason: str) -> CachedTurn | None:
        """A miss, with the one-line notice in `problem`."""
        self.problem = (f"Ignored a damaged response-cache entry ({os.path.basename(path)[:12]}…: {reason}); "
                        "the request was sent instead.")
        return None

    @property
    def writer(self) -> CacheWriter:
        return self._writer or _default_writer()

    def store(self, key: str, events: list[Event], conversation: list[dict[str, Any]]) -> None:
        """Queue the entry for the writer thread (encoded now: later changes to ``events`` or
        ``conversation`` do not reach it); returns without touching the disk."""
        payload = {"format": FORMAT, "events": [event_to_json(e) for e in _joined(events)],
                   "conversation": conversation}
        try:
            data = orjson.dumps(payload)
        except (TypeError, orjson.JSONEncodeError):  # an integer over 64 bits, a non-string key
            data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.writer.put(self._file(key), data)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued entry is on disk (True), or ``timeout`` seconds passed."""
        return self.writer.flush(timeout)

    def info(self) -> tuple[int, int]:
        """(entries, bytes) on disk (after the queued writes)."""
        self.flush()
        if not self.directory.is_dir():
            return 0, 0
        files = [p for p in self.directory.glob("*/*.json") if p.is_file()]
        return len(files), sum(p.stat().st_size for p in files)

    def clear(self) -> int:
        entries, _ = self.info()  # flushed first: no queued entry comes back after the clear
        if self.directory.is_dir():
            shutil.rmtree(self.directory)
        return entries


def _write_entry(path: str, data: bytes, folders: set[str], serial: list[int]) -> None:
    """A fresh temporary file next to ``path`` (O_EXCL: never a planted FIFO or link), then an
    atomic rename, so no half-written entry is ever left behind."""
    folder = os.path.dirname(path)
    if folder not in folders:
        os.makedirs(folder, exist_ok=True)
        folders.add(folder)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    while True:
        serial[0] += 1
        tmp = f"{folder}{os.sep}.{os.path.basename(path)[:16]}-{os.getpid()}-{serial[0]}.tmp"
        try:
            fd = os.open(tmp, flags, 0o600)
            break
        except FileExistsError:  # a leftover or planted name: take the next one
            continue
        except FileNotFoundError:  # the folder was removed since (a clear, rmtree): make it again
            os.makedirs(folder, exist_ok=True)
            fd = os.open(tmp, flags, 0o600)
            break
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class CacheWriter:
    """Writes cache entries from one daemon thread, in batches, off the caller's thread.

    `put` queues an entry (replacing one queued for the same path) and returns; the thread
    takes everything queued at once and writes it. `pending` answers reads of entries not
    written yet. At most ``max_bytes`` wait in the queue: past that, `put` waits for the
    disk (memory stays bounded when the disk is slower than the answers). A write that
    fails (a full disk, a read-only folder) is skipped, and its one-line reason kept in
    `problem`: the cache is an optimisation, never the reason a turn fails.
    """

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self.problem: str | None = None
        self.written = 0
        self._lock = threading.Condition()
        self._queued: dict[str, bytes] = {}
        self._writing: dict[str, bytes] = {}
        self._queued_bytes = 0
        self._thread: threading.Thread | None = None
        self._folders: set[str] = set()
        self._serial = [0]

    def put(self, path: str, data: bytes) -> None:
        with self._lock:
            old = self._queued.get(path)
            self._queued[path] = data
            self._queued_bytes += len(data) - (len(old) if old is not None else 0)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="kimi-cache-writer", daemon=True)
                self._thread.start()
            self._lock.notify_all()
            while self._queued_bytes > self.max_bytes and self._thread.is_alive():
                self._lock.wait(0.5)

    def take_problem(self) -> str | None:
        """The last write failure's one line, once."""
        problem, self.problem = self.problem, None
        return problem

    def pending(self, path: str) -> bytes | None:
        """The bytes queued (or being written) for ``path``, else None."""
        with self._lock:
            data = self._queued.get(path)
            return data if data is not None else self._writing.get(path)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until nothing is queued or being written; False if ``timeout`` ran out."""
        with self._lock:
            return self._lock.wait_for(lambda: not self._queued and not self._writing, timeout)

    def _run(self) -> None:
        while True:
            with self._lock:
                self._lock.wait_for(lambda: bool(self._queued))
                batch = self._writing = self._queued
                self._queued, self._queued_bytes = {}, 0
                self._lock.notify_all()  # a put() held back by max_bytes may go on
            for path, data in batch.items():
                try:
                    _write_entry(path, data, self._folders, self._serial)
                    self.written += 1
                except OSError as error:
                    self._folders.discard(os.path.dirname(path))
                    self.problem = (f"Could not write a response-cache entry ({error.strerror or error}); "
                                    "the answer was kept in memory only.")
            with self._lock:
                self._writing = {}
                self._lock.notify_all()


_WRITER: CacheWriter | None = None
_WRITER_LOCK = threading.Lock()


def _default_writer() -> CacheWriter:
    global _WRITER
    if _WRITER is None:
        with _WRITER_LOCK:
            if _WRITER is None:
                _WRITER = CacheWriter()
                atexit.register(_WRITER.flush, 30.0)
    return _WRITER


def flush_writes(timeout: float | None = None) -> bool:
    """Wait until every cache entry queued in this process is on disk (see `CacheWriter`)."""
    return _WRITER.flush(timeout) if _WRITER is not None else True


def _read_regular(path: str) -> bytes | None:
    """The bytes of ``path`` if it is a regular file of at most `MAX_ENTRY_BYTES`.

    Opened non-blocking and checked with ``fstat`` on the open file, so a FIFO, a device
    or a directory planted as an entry never blocks and is never read."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise DamagedEntry("it is not a regular file")
        if st.st_size > MAX_ENTRY_BYTES:
            raise DamagedEntry("it is too large")
        chunks = []
        left = MAX_ENTRY_BYTES + 1
        want = st.st_size + 1  # one read for an entry that is as big as fstat said
        while left > 0:
            chunk = os.read(fd, min(left, want))
            chunks.append(chunk)
            left -= len(chunk)
            if len(chunk) < want:  # a short read of a regular file: its end
                break
            want = 1 << 20  # it grew since fstat: read on, up to the cap
        if left <= 0:
            raise DamagedEntry("it is too large")
        return b"".join(chunks)
    finally:
        os.close(fd)


def _joined(events: list[Event]) -> list[Event]:
    """Runs of text or reasoning deltas joined into one event each: a replay shows the same
    text, and an entry is a few events instead of one per token (smaller, faster to replay)."""
    out: list[Event] = []
    for event in events:
        kind = type(event)
        if kind in (TextDelta, ReasoningDelta) and out and type(out[-1]) is kind:
            out[-1] = kind(out[-1].text + event.text)  # type: ignore[union-attr]
        else:
            out.append(event)
    return out
