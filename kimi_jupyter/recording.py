"""Recordings: a notebook's turns kept in a reviewable file, replayed without a key (CI).

``%kimi record FILE`` names a recording for this kernel. From then on every turn that goes
through the `Turn` (``%%kimi``, ``ask``, ``aask``, each row of ``map``, agent turns with
their tool steps, ``%kimi fix``) is looked up in it and, when it ran live, written to it.
What happens is set by ``Kimi.replay`` (``KIMI_REPLAY``):

* ``off`` (default): every turn is sent; the recording is written (a re-recorded request
  replaces its entry in place when its answer changed, a new one is appended);
* ``auto``: a recorded request is replayed, a new one is sent and recorded;
* ``only``: every turn comes from the recording; nothing is sent and no key is needed. A
  turn that is not recorded fails with one line naming the recording and what changed,
  found by comparing the request with the nearest recorded entry.

A replay shows the recorded events exactly as they were shown (the same output, so a
notebook under nbval compares equal); agent tools are never run, their recorded results are
replayed. Where an output came from (model, live or replayed, the entry, its cost) is the
``kimi_jupyter`` key of the turn's final display metadata (`Provenance`), which nbformat
saves with the output.

The file is JSON lines, written with a fixed field order so a diff reads well. The first
line is a header ``{"kimi_jupyter_recording": 1, "id": ..., "notebook": ...}``; each further
line is one turn::

    {"format", "fingerprint", "recording", "source", "model", "settings",
     "request": {"prompt", "digests"}, "answer", "reasoning", "usage", "tool_steps",
     "events", "conversation"}

``fingerprint`` is the response cache's key of the request, taken with the request's own
tools (`Turn.cache_key`: an agent's notebook tools exist only where a JupyterLab frontend
answers, so a turn recorded there replays under nbclient); ``settings``
holds what changes the answer besides the messages (provider, thinking, effort, max_tokens,
response format, mode, prefill); ``digests`` are short hashes of the system prompt, the
conversation before the turn, attached documents, the prompt and the tools, and ``prompt``
a short preview, so a changed request can say what changed. ``events`` and
``conversation`` are what the replay uses, in the response cache's format; ``answer``,
``reasoning``, ``usage`` and ``tool_steps`` are the readable summary and must agree with
the events. Files API uploads made while building a prompt are rows of their own,
``{"kind": "upload", "recording", "sha256", "purpose", "name", "file_id", "bytes", "text",
"pages", "unit"}`` (a document keeps its extracted text): under ``auto`` and ``only`` the
session's uploads are answered from them by content hash (`Recording.find_upload`), so a
replay uploads nothing and names the same files. No entry holds the API key (every configured key is masked before writing) or
the base URL.

A recording is untrusted input, like a cache entry: it is read only when it is a regular
file within the cache's size bound, and each entry goes through the cache's validator
(`kimi_jupyter.cache.parse_entry`) plus the checks above. An entry that is damaged, that
does not agree with its own summary, or that belongs to another recording (its
``recording`` id is not the header's; the header names another notebook than the running
one) is refused on its own, and the refusals are said in one line.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import sys
import tempfile
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from .cache import FORMAT as CACHE_FORMAT
from .cache import CachedTurn, DamagedEntry, _joined, _read_regular, parse_entry, request_key
from .events import (
    ApprovalRequested,
    Event,
    ReasoningDelta,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    Usage,
    event_to_json,
)

if TYPE_CHECKING:
    from .response import Response
    from .session import Session
    from .settings import Settings

__all__ = ["MODES", "Recording", "RecordingError", "Provenance", "Tape", "open_recording", "active_recording",
           "stop_recording", "tape_for", "request_parts", "provenance"]

MODES = ("off", "auto", "only")
HEADER = "kimi_jupyter_recording"
VERSION = 1
PREVIEW = 160  # characters of the prompt kept to say what changed
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")
_ID = re.compile(r"[0-9a-f]{8,64}")

# The parts of a request compared with the nearest entry, and how a message names them.
PART_NAMES = {
    "prompt": "the prompt", "history": "the conversation before it", "system": "the system prompt",
    "documents": "the attached documents", "tools": "the tools offered", "model": "the model",
    "provider": "the provider", "thinking": "thinking", "effort": "the effort", "max_tokens": "max_tokens",
    "response_format": "the response format", "mode": "the mode (agent, web search)", "prefill": "the prefill",
}
_SETTINGS = ("provider", "thinking", "effort", "max_tokens", "response_format", "mode", "prefill")
_DIGESTS = ("system", "history", "documents", "prompt", "tools")


class RecordingError(ValueError):
    """A recording that cannot be used or written; the message is one line for the user."""


def _digest(value: Any) -> str:
    return request_key({"part": value})[:16]


def _preview(content: Any) -> str:
    if isinstance(content, str):
        text = content
    elif isinstance(content, list):
        text = " ".join(p.get("text", "") if p.get("type") == "text" else f"[{p.get('type', 'part')}]"
                        for p in content if isinstance(p, dict))
    else:
        text = ""
    text = " ".join(text.split())
    return text if len(text) <= PREVIEW else text[: PREVIEW - 1] + "…"


def request_parts(turn: Any) -> tuple[dict[str, Any], dict[str, str], str]:
    """(settings, digests, prompt preview) of a `Turn`'s request, as an entry stores them."""
    s, request = turn.settings, turn.request
    history = turn.base[: turn.known_size[0]]
    earlier = [m for m in history if not (m.get("role") == "system" and m.get("content") == s.system)]
    settings = {"provider": s.provider, "thinking": s.thinking, "effort": getattr(s, "effort", None),
                "max_tokens": s.max_tokens,
                "response_format": request.response_format, "mode": request.mode,
                "prefill": request.wire.get("prefill") or None}
    digests = {"system": _digest(s.system), "history": _digest(earlier), "documents": _digest(request.context),
               "prompt": _digest(request.content), "tools": _digest(request.tools)}
    return settings, digests, _preview(request.content)


@dataclass
class Entry:
    """One validated turn of a recording."""

    line: int
    data: dict[str, Any]
    turn: CachedTurn | None  # None for an upload row

    @property
    def fingerprint(self) -> str:
        return str(self.data["fingerprint"])

    def parts(self) -> dict[str, Any]:
        return {"model": self.data["model"], **self.data["settings"], **self.data["request"]["digests"]}


@dataclass(frozen=True)
class Provenance:
    """Where a turn's output came from: the ``kimi_jupyter`` key of its display metadata."""

    model: str
    origin: str  # live | replayed | cache
    recording: str | None = None
    entry: str | None = None  # the first 16 characters of the fingerprint
    cost: float | None = None
    currency: str | None = None

    def metadata(self) -> dict[str, Any]:
        return {"kimi_jupyter": {"model": self.model, "origin": self.origin, "recording": self.recording,
                                 "entry": self.entry, "cost": self.cost, "currency": self.currency}}


def _check_entry(data: Any, header_id: str) -> Entry | str:
    """The entry, or why it is refused (a few words)."""
    if type(data) is not dict:
        return "not a JSON object"
    if data.get("recording") != header_id:
        return "it belongs to another recording"
    if type(data.get("fingerprint")) is not str or not _FINGERPRINT.fullmatch(data["fingerprint"]):
        return "no valid fingerprint"
    for name, kind in (("source", str), ("model", str), ("answer", str), ("reasoning", str), ("settings", dict),
                       ("request", dict), ("usage", dict), ("tool_steps", list)):
        if type(data.get(name)) is not kind:
            return f"{name} is missing or of the wrong type"
    request = data["request"]
    digests = request.get("digests")
    if type(request.get("prompt")) is not str or type(digests) is not dict or set(digests) != set(_DIGESTS) \
            or not all(type(v) is str for v in digests.values()):
        return "request is not what a recording writes"
    if set(data["settings"]) != set(_SETTINGS):
        return "settings is not what a recording writes"
    try:
        turn = parse_entry(data)  # the response cache's validation of events and conversation
    except DamagedEntry as error:
        return str(error)
    except (TypeError, KeyError, RecursionError):
        return "its fields have the wrong types"
    text = "".join(e.text for e in turn.events if type(e) is TextDelta)
    reasoning = "".join(e.text for e in turn.events if type(e) is ReasoningDelta)
    if text != data["answer"] or reasoning != data["reasoning"]:
        return "its answer does not match its events"
    return Entry(0, data, turn)


_PURPOSES = frozenset({"file-extract", "image", "video"})
_FILE_ID = re.compile(r"[A-Za-z0-9_.:-]{1,200}")
MAX_UPLOAD_TEXT = 16 * 1024 * 1024


def _check_upload(data: dict[str, Any], header_id: str) -> Entry | str:
    """An upload row (a Files API upload kept by content hash), or why it is refused."""
    if data.get("recording") != header_id:
        return "it belongs to another recording"
    if type(data.get("sha256")) is not str or not _FINGERPRINT.fullmatch(data["sha256"]):
        return "an upload without a valid sha256"
    if data.get("purpose") not in _PURPOSES or type(data.get("name")) is not str:
        return "an upload of an unknown purpose"
    if type(data.get("file_id")) is not str or not _FILE_ID.fullmatch(data["file_id"]):
        return "an upload without a valid file id"
    if type(data.get("bytes")) is not int or data["bytes"] < 0:
        return "an upload without a size"
    text, pages, unit = data.get("text"), data.get("pages"), data.get("unit")
    if data["purpose"] == "file-extract":
        if type(text) is not str or len(text) > MAX_UPLOAD_TEXT or type(pages) not in (int, type(None)) \
                or type(unit) is not str:
            return "a document upload without its text"
    elif text is not None:
        return "a media upload with text"
    return Entry(0, data, None)


class Recording:
    """One recording file: its validated entries, and the lock that serialises writes."""

    def __init__(self, path: str, notebook: str | None = None) -> None:
        self.path = os.path.abspath(path)  # a later os.chdir does not move it
        self.name = os.path.basename(path)
        self.notebook = notebook  # the running notebook, when the kernel knows it
        self.id = ""
        self.recorded_for: str | None = None  # the header's notebook
        self.entries: dict[str, Entry] = {}  # fingerprint -> entry (the last one wins)
        self.uploads: dict[tuple[str, str], Entry] = {}  # (sha256, purpose) -> upload row
        self.refused: list[str] = []  # "line 4: not valid JSON"
        self._lines = 1  # lines in the file (header included)
        self._open_line = False  # the file does not end with a newline (edited by hand)
        self._lock = threading.Lock()

    # -- reading -----------------------------------------------------------------------
    def load(self) -> Recording:
        try:
            raw = _read_regular(self.path)
        except FileNotFoundError:
            raw = b""
        except DamagedEntry as error:
            raise RecordingError(f"{self.name} cannot be used as a recording: {error}.") from None
        except OSError as error:
            raise RecordingError(f"{self.name} cannot be read ({error.strerror or error}).") from None
        self._open_line = bool(raw) and not raw.endswith(b"\n")
        lines = (raw or b"").split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        if not lines:
            self.id = secrets.token_hex(8)
            self.recorded_for = self.notebook
            self._lines = 0
            return self
        try:
            header = orjson.loads(lines[0])
        except (ValueError, RecursionError):
            header = None
        if (type(header) is not dict or header.get(HEADER) != VERSION or type(header.get("id")) is not str
                or not _ID.fullmatch(header["id"]) or type(header.get("notebook")) not in (str, type(None))):
            raise RecordingError(f"{self.name} is not a kimi-jupyter recording (its first line is not a recording "
                                 "header): name another file, or delete it to start afresh.")
        self.id, self.recorded_for = header["id"], header["notebook"]
        self._lines = len(lines)
        other = (self.recorded_for is not None and self.notebook is not None
                 and os.path.basename(self.recorded_for) != os.path.basename(self.notebook))
        for number, line in enumerate(lines[1:], start=2):
            if other:
                self.refused.append(f"line {number}: recorded for another notebook ({self.recorded_for[:80]})")
                continue
            try:
                data = orjson.loads(line)
            except (ValueError, RecursionError):
                self.refused.append(f"line {number}: not valid JSON")
                continue
            upload = type(data) is dict and data.get("kind") == "upload"
            checked = _check_upload(data, self.id) if upload else _check_entry(data, self.id)
            if isinstance(checked, str):
                self.refused.append(f"line {number}: {checked}")
                continue
            checked.line = number
            if upload:
                self.uploads[(data["sha256"], data["purpose"])] = checked
                continue
            self.entries[checked.fingerprint] = checked
        return self

    def notice(self) -> str | None:
        """One line about refused entries, or None."""
        if not self.refused:
            return None
        shown = "; ".join(self.refused[:3]) + ("; …" if len(self.refused) > 3 else "")
        count = len(self.refused)
        return (f"Ignored {count} entr{'y' if count == 1 else 'ies'} of the recording {self.name} ({shown}); "
                "they are neither replayed nor kept when it is rewritten.")

    def find(self, fingerprint: str) -> Entry | None:
        return self.entries.get(fingerprint)

    def missing(self, fingerprint: str, parts: Mapping[str, Any], prompt: str, source: str) -> str:
        """The one line that fails a turn that is not recorded (``KIMI_REPLAY=only``)."""
        head = f"This turn is not in the recording {self.name} (replay only: nothing was sent)"
        tail = " Run it once with a key and KIMI_REPLAY=auto (or replay off) to record it."
        count = len(self.refused)
        refused = (f" ({count} entr{'y' if count == 1 else 'ies'} of it {'was' if count == 1 else 'were'} refused: "
                   "see the notice of %kimi record.)") if count else ""
        if not self.entries:
            return f"{head}: the recording has no entries yet.{refused}{tail}"
        ranked = sorted(self.entries.values(), key=lambda e: (
            sum(e.parts().get(k) == v for k, v in parts.items()), e.data["source"] == source, e.line), reverse=True)
        nearest = ranked[0]
        changed = [k for k, v in parts.items() if nearest.parts().get(k) != v]
        if not changed:
            what = "the request differs from every recorded one"
        else:
            what = ", ".join(PART_NAMES.get(k, k) for k in changed[:4])
            what = f"{what} changed since it was recorded (nearest entry: line {nearest.line})"
            if "prompt" in changed:
                was, now = _where_they_differ(nearest.data["request"]["prompt"], prompt)
                what += f"; recorded prompt {was!r}, now {now!r}"
        return f"{head}: {what}.{refused}{tail}"

    # -- writing -----------------------------------------------------------------------
    def _header(self) -> bytes:
        return _dumps({HEADER: VERSION, "id": self.id, "notebook": self.recorded_for})

    def create(self) -> None:
        """Write the header of a new (or empty) recording."""
        with self._lock:
            if self._lines == 0:
                self._write_all()

    def put(self, data: dict[str, Any], turn: CachedTurn) -> None:
        """Add a turn: appended when new, replaced in place when its request was recorded."""
        self._put(self.entries, data["fingerprint"], data, turn)

    def _put(self, rows: dict[Any, Entry], key: Any, data: dict[str, Any], turn: CachedTurn | None) -> None:
        with self._lock:
            old = rows.get(key)
            if old is not None:
                if old.data == data or (turn is not None and _same_answer(old.data, data)):
                    return  # the same again: the line stays (no diff from timings)
                old.data, old.turn = data, turn
                self._write_all()
                return
            if self._lines == 0:
                self._write_all()
            line = (b"\n" if self._open_line else b"") + _dumps(data) + b"\n"
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
            self._open_line = False
            self._lines += 1
            rows[key] = Entry(self._lines, data, turn)

    # -- Files API uploads (kimi_jupyter.context.media.SessionUploads.recorded) ------------
    def find_upload(self, settings: Settings, sha256: str, purpose: str, name: str) -> Any:
        """(FileObject, Extracted | None) of a recorded upload of this content, when the
        mode replays (auto, only); under ``only`` one that is missing is an error (nothing
        is uploaded)."""
        mode = getattr(settings, "replay", "off")
        if mode not in ("auto", "only"):
            return None
        row = self.uploads.get((sha256, purpose))
        if row is None:
            if mode == "only":
                from .errors import KimiError

                raise KimiError(f"{name} is not in the recording {self.name} (replay only: nothing was uploaded). "
                                "Run it once with a key and KIMI_REPLAY=auto to record it.")
            return None
        from .client.files import FileObject
        from .context.documents import Extracted

        data = row.data
        file = FileObject(id=data["file_id"], bytes=data["bytes"], filename=data["name"], purpose=purpose,
                          status="processed")
        extracted = Extracted(data["text"], data["pages"], data["unit"]) if purpose == "file-extract" else None
        return file, extracted

    def keep_upload(self, settings: Settings, uploaded: Any) -> None:
        """Write an upload this session made (a document with its extracted text)."""
        from .secrets import redact, secrets_of

        if getattr(settings, "replay", "off") == "only":
            return
        extracted = uploaded.extracted
        data = {"kind": "upload", "recording": self.id, "sha256": uploaded.sha256, "purpose": uploaded.purpose,
                "name": uploaded.name, "file_id": uploaded.file.id, "bytes": uploaded.file.bytes,
                "text": extracted.text if extracted is not None else None,
                "pages": extracted.pages if extracted is not None else None,
                "unit": extracted.unit if extracted is not None else None}
        data = redact(data, secrets_of(settings))
        if isinstance(_check_upload(data, self.id), str):
            return  # not what a recording can hold (an odd file id): the turn itself still records
        try:
            self._put(self.uploads, (uploaded.sha256, uploaded.purpose), data, None)
        except OSError as error:
            print(f"Could not write an upload to the recording {self.name}: {error}", file=sys.stderr)

    def _write_all(self) -> None:
        """The header and every kept entry, in their order, by an atomic rename."""
        kept = sorted([*self.entries.values(), *self.uploads.values()], key=lambda e: e.line)
        lines = [self._header(), *(_dumps(e.data) for e in kept)]
        folder = os.path.dirname(os.path.abspath(self.path))
        fd, tmp = tempfile.mkstemp(prefix=f".{self.name[:40]}-", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(b"\n".join(lines) + b"\n")
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        for number, entry in enumerate(kept, start=2):
            entry.line = number
        self._lines = len(lines)
        self.refused = []  # they are gone from the file


def _where_they_differ(a: str, b: str, width: int = 60) -> tuple[str, str]:
    """Both texts cut to a window around their first difference ("…" where cut)."""
    same = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    start = max(0, same - 20)

    def cut(text: str) -> str:
        part = text[start:start + width]
        return ("…" if start else "") + part + ("…" if start + width < len(text) else "")

    return cut(a), cut(b)


_SAME = ("model", "settings", "answer", "reasoning", "usage", "conversation")


def _same_answer(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether a re-recorded turn says what its entry says (timings aside)."""
    if any(old.get(name) != new.get(name) for name in _SAME):
        return False
    steps = [(s.get("name"), s.get("arguments"), s.get("result"), s.get("error")) for s in new["tool_steps"]]
    return steps == [(s.get("name"), s.get("arguments"), s.get("result"), s.get("error"))
                     for s in old.get("tool_steps", [])]


def _dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):  # an integer over 64 bits, a non-string key
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# -- one recording per session -----------------------------------------------------------------

_ACTIVE: weakref.WeakKeyDictionary[Any, Recording] = weakref.WeakKeyDictionary()


def current_notebook(shell: Any = None) -> str | None:
    """The running notebook's file name when the kernel knows it (a Jupyter server sets
    ``__session__``); None under nbclient, papermill or a console."""
    ns = getattr(shell, "user_ns", None) or {}
    value = ns.get("__session__") or os.environ.get("JPY_SESSION_NAME")
    return os.path.basename(value) if isinstance(value, str) and value.endswith(".ipynb") else None


def open_recording(session: Session, path: str, shell: Any = None) -> Recording:
    """Name ``path`` as the session's recording (created when missing); `RecordingError`
    says why it cannot be."""
    if not path or "\x00" in path:
        raise RecordingError("Name the recording file: %kimi record FILE (for example %kimi record turns.kimi.jsonl).")
    if os.path.isdir(path):
        raise RecordingError(f"{path} is a folder: name a file, for example {path}/turns.kimi.jsonl.")
    recording = Recording(path, current_notebook(shell)).load()
    _ACTIVE[session] = recording
    _attach_uploads(session, recording)
    return recording


def _attach_uploads(session: Session, recording: Recording | None) -> None:
    """The session's Files API uploads answer from (and are kept in) the recording."""
    from .context.media import uploads_for

    uploads_for(session).recorded = recording


def active_recording(session: Session) -> Recording | None:
    return _ACTIVE.get(session)


def stop_recording(session: Session) -> Recording | None:
    stopped = _ACTIVE.pop(session, None)
    if stopped is not None:
        _attach_uploads(session, None)
    return stopped


class Tape:
    """A turn's link to the recording: look it up before anything is sent, write it after."""

    def __init__(self, recording: Recording | None, mode: str) -> None:
        self.recording, self.mode = recording, mode
        self.entry: Entry | None = None

    def lookup(self, turn: Any, fingerprint: str) -> Entry | str | None:
        """The recorded entry to replay, a failure line (``only``), or None: send it."""
        recording = self.recording
        if recording is None:  # only: there is nothing to replay from
            return ("KIMI_REPLAY=only, but no recording is named, so nothing was sent: add %kimi record FILE "
                    "before the first AI cell, or set Kimi.replay to 'off'.")
        if self.mode in ("auto", "only"):
            found = recording.find(fingerprint)
            if found is not None:
                self.entry = found
                return found
        if self.mode == "only":
            settings, digests, prompt = request_parts(turn)
            parts = {"model": turn.settings.model, **settings, **digests}
            return recording.missing(fingerprint, parts, prompt, turn.request.source)
        return None

    def record(self, turn: Any, fingerprint: str, response: Response, events: list[Event],
               conversation: list[dict[str, Any]]) -> None:
        """Write the finished turn (any failure to write is said in one line, the turn stands)."""
        from .secrets import redact, secrets_of

        recording = self.recording
        if recording is None:
            return
        settings, digests, prompt = request_parts(turn)
        joined = _joined(events)
        usage = response.usage if isinstance(response.usage, Usage) else Usage.not_reported()
        data: dict[str, Any] = {
            "format": CACHE_FORMAT, "fingerprint": fingerprint, "recording": recording.id,
            "source": turn.request.source, "model": turn.settings.model, "settings": settings,
            "request": {"prompt": prompt, "digests": digests},
            "answer": "".join(e.text for e in joined if type(e) is TextDelta),
            "reasoning": "".join(e.text for e in joined if type(e) is ReasoningDelta),
            "usage": event_to_json(usage), "tool_steps": _tool_steps(joined),
            "events": [event_to_json(e) for e in joined], "conversation": conversation,
        }
        data = redact(data, secrets_of(turn.settings))  # never the key, wherever it appeared
        try:
            cached = parse_entry(json.loads(_dumps(data)))
            recording.put(data, cached)
        except (OSError, ValueError) as error:
            print(f"Could not write this turn to the recording {recording.name}: {error}", file=sys.stderr)



def provenance(tape: Tape | None, model: str, origin: str, response: Response, fingerprint: str = "") -> Provenance:
    """Where ``response`` came from: ``origin`` is live, replayed (from the recording) or
    cache; the entry is named when the turn is in the recording (replayed, or recorded now)."""
    recording = tape.recording if tape is not None else None
    recorded = origin == "replayed" or (response.error is None and response.done)
    entry = fingerprint[:16] if recording is not None and fingerprint and recorded else None
    return Provenance(model=model, origin=origin, recording=recording.name if recording else None,
                      entry=entry, **_cost(response.usage))


def _cost(usage: Any) -> dict[str, Any]:
    if isinstance(usage, Usage) and usage.reported:  # rounded: no float noise in saved metadata
        return {"cost": None if usage.cost is None else round(usage.cost, 10), "currency": usage.currency}
    return {"cost": None, "currency": None}


def _tool_steps(events: list[Event]) -> list[dict[str, Any]]:
    steps: dict[str, dict[str, Any]] = {}
    for event in events:
        if isinstance(event, ToolCallStarted):
            steps[event.id] = {"name": event.name, "arguments": event.arguments, "result": None, "error": None}
        elif isinstance(event, ApprovalRequested) and event.id not in steps:
            steps[event.id] = {"name": event.name, "arguments": event.code, "result": None, "error": None}
        elif isinstance(event, ToolCallFinished) and event.id in steps:
            steps[event.id]["result"], steps[event.id]["error"] = event.result, event.error
    return list(steps.values())


#: Turns that are not part of the notebook's story: the JupyterLab sidebar's chat (a CI run has
#: no sidebar, and its questions do not belong in the notebook's committed recording).
NOT_RECORDED = frozenset({"sidebar"})


def tape_for(session: Session, settings: Settings, source: str = "") -> Tape | None:
    """The turn's tape, or None when there is no recording and replay is off (and for the
    sources in `NOT_RECORDED`)."""
    if source in NOT_RECORDED:
        return None
    mode = getattr(settings, "replay", "off") or "off"
    recording = _ACTIVE.get(session)
    if recording is None and mode != "only":
        return None
    return Tape(recording, mode)


# -- %kimi record ------------------------------------------------------------------------------

def record_parser() -> Any:
    """The argparse parser of ``%kimi record`` (``%kimi help`` can list it)."""
    import argparse

    class Parser(argparse.ArgumentParser):
        def error(self, message: str) -> Any:  # never exit the kernel: one line instead
            raise RecordingError(f"%kimi record: {message}. Use: %kimi record FILE | %kimi record --stop")

    parser = Parser(
        prog="%kimi record", add_help=False,
        description="Name the recording of this notebook's turns (JSON lines; commit it next to the notebook). "
                    "Kimi.replay / KIMI_REPLAY: off (send and record), auto (replay recorded, record new), "
                    "only (replay only; no key needed).")
    parser.add_argument("file", nargs="?", help="the recording, e.g. 11-record-and-replay.kimi.jsonl")
    parser.add_argument("--stop", action="store_true", help="stop recording and replaying in this kernel")
    return parser


def record_command(session: Session, settings_mode: str, rest: str, shell: Any = None) -> str:
    """What ``%kimi record ...`` says (one or two lines); raises `RecordingError` on a bad use."""
    import shlex

    try:
        words = shlex.split(rest)
    except ValueError as error:  # "No closing quotation"
        raise RecordingError(f"%kimi record: {error}. Use: %kimi record FILE | %kimi record --stop") from None
    args = record_parser().parse_args(words)
    if args.stop:
        stopped = stop_recording(session)
        return f"Stopped using the recording {stopped.name}." if stopped else "No recording was named."
    if not args.file:
        current = active_recording(session)
        if current is None:
            return "No recording is named: %kimi record FILE names one (Kimi.replay: " + settings_mode + ")."
        doing = {"off": "every turn is sent and recorded", "auto": "recorded turns are replayed, new ones recorded",
                 "only": "every turn is replayed from it; nothing is sent"}.get(settings_mode, settings_mode)
        return f"Recording {current.path}: {len(current.entries)} turns; Kimi.replay = {settings_mode!r}: {doing}."
    if settings_mode == "only" and not os.path.exists(args.file):
        raise RecordingError(f"The recording {args.file} does not exist, and KIMI_REPLAY=only sends nothing: "
                             "record the notebook once with a key (replay off or auto) and commit the file.")
    recording = open_recording(session, args.file, shell)
    if settings_mode != "only":
        recording.create()
    # The same line whatever the mode, so a notebook's output is the same recorded and replayed.
    lines = [f"Recording: {args.file} (%kimi record shows what Kimi.replay does with it)"]
    notice = recording.notice()
    if notice:
        lines.append(notice)
    return "\n".join(lines)
