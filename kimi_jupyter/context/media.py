"""Big media and documents through Moonshot's Files API, uploaded once per session.

Moonshot's K2.5 guide says a chat request body may be at most 100 MB and that large videos
must be uploaded as files (and recommends it for media used more than once). On providers
whose preset has ``files_api`` (moonshot, moonshot-intl):

* an image or video larger than ``Kimi.upload_threshold`` bytes is uploaded with purpose
  ``image`` / ``video`` and referenced as ``ms://<file-id>`` in its ``image_url`` /
  ``video_url`` part; a video file is streamed from disk, never base64-encoded;
* a document (``{report}`` naming a pdf, docx, xlsx, pptx, txt or md file) is uploaded with
  purpose ``file-extract``; the server's extracted text goes into the request as a system
  message, and the prompt summary says ``report.pdf: N pages / N tokens``.

Uploads are remembered per kernel session by the SHA-256 of their content (and base URL), so
naming the same file again, in another cell, in ``ask()`` or in the sidebar, costs no upload.
A path's hash is memoised by (path, size, mtime), so a second reference does not even re-read
the file. An upload is registered only once the server has answered with its id; an
interrupted upload leaves nothing registered here, and the Files client deletes whatever the
server kept of it (see ``client/files.py``). ``%kimi files`` lists what this session
uploaded and the account's quota use; ``%kimi files clear`` deletes them.

On providers without a Files API, media are sent inline as before, a medium too big for an
inline request gets a message saying so, and documents are extracted locally
(``context/documents.py``).
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..events import Notice
from .documents import Extracted, extract_text, page_count, read_document
from .errors import ContextError

if TYPE_CHECKING:
    from ..client.files import FileObject, FilesClient
    from ..settings import Settings

__all__ = [
    "PROGRESS_MIN_BYTES",
    "MediaSink",
    "SessionUploads",
    "Uploaded",
    "files_report",
    "request_extras",
    "session_sink",
    "uploads_for",
]

PROGRESS_MIN_BYTES = 5 * 1024 * 1024  # uploads smaller than this show no progress line
_HASH_BLOCK = 1024 * 1024
ACCOUNT_FILES = 1000
ACCOUNT_BYTES = 10 * 1024 * 1024 * 1024

ProgressFactory = Callable[[str, int], "Callable[[int, int], None] | None"]


@dataclass
class Uploaded:
    """One upload of this session: the server's file object and what it was."""

    file: FileObject
    sha256: str
    purpose: str
    name: str
    api_base: str
    extracted: Extracted | None = None
    uploaded_at: float = field(default_factory=time.time)

    @property
    def url(self) -> str:
        return f"ms://{self.file.id}"


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


class SessionUploads:
    """What one kernel session uploaded, by content hash; shared by cells, ask() and the sidebar."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._by_hash: dict[tuple[str, str, str], Uploaded] = {}
        self._path_hashes: dict[tuple[str, int, int], str] = {}
        self._clients: dict[tuple[str, str], FilesClient] = {}
        self.uploads_sent = 0  # how many uploads actually went over the wire
        self.cleared: set[str] = set()  # ids `%kimi files clear` deleted
        # The notebook's recording (kimi_jupyter.recording), when one is named: it answers
        # uploads it holds (``find_upload``, by content hash; replay needs no key) and keeps
        # new ones (``keep_upload``), so a replayed request names the same files.
        self.recorded: Any = None

    # -- plumbing ----------------------------------------------------------------------
    def files_client(self, settings: Settings) -> FilesClient:
        from ..client.files import FilesClient

        key = (settings.api_base, hashlib.sha256(settings.require_key().encode()).hexdigest())
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = FilesClient(settings)
            return client

    def path_hash(self, path: Path) -> str:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            known = self._path_hashes.get(key)
        if known is None:
            known = _sha256_file(path)
            with self._lock:
                self._path_hashes[key] = known
        return known

    # -- uploads -----------------------------------------------------------------------
    def upload(self, settings: Settings, source: Path | bytes, purpose: str, name: str,
               progress: Callable[[int, int], None] | None = None) -> Uploaded:
        """The upload of ``source`` for ``purpose``: an earlier one with the same content, or a new one."""
        sha = self.path_hash(source) if isinstance(source, Path) else hashlib.sha256(source).hexdigest()
        key = (settings.api_base, sha, purpose)
        with self._lock:
            known = self._by_hash.get(key)
        if known is not None:
            return known
        recorded = self.recorded
        found = recorded.find_upload(settings, sha, purpose, name) if recorded is not None else None
        if found is not None:
            uploaded = Uploaded(found[0], sha, purpose, name, settings.api_base, extracted=found[1])
        else:
            client = self.files_client(settings)
            file = client.upload(source, purpose, filename=name, progress=progress)
            self.uploads_sent += 1
            uploaded = Uploaded(file, sha, purpose, name, settings.api_base)
            if recorded is not None and purpose != "file-extract":  # a document is kept with its text
                recorded.keep_upload(settings, uploaded)
        with self._lock:
            self._by_hash[key] = uploaded  # registered only once the server gave an id
        return uploaded

    def document(self, settings: Settings, path: Path,
                 progress: Callable[[int, int], None] | None = None) -> Uploaded:
        """A ``file-extract`` upload of ``path`` with its text (both cached by content hash)."""
        uploaded = self.upload(settings, path, "file-extract", path.name, progress)
        if uploaded.extracted is None:
            text = self.files_client(settings).text(uploaded.file.id)
            data, name = read_document(path)
            pages, unit = page_count(data, name)
            uploaded.extracted = Extracted(text, pages, unit)
            if self.recorded is not None:
                self.recorded.keep_upload(settings, uploaded)
        return uploaded

    def listing(self, settings: Settings | None = None) -> list[Uploaded]:
        with self._lock:
            items = list(self._by_hash.values())
        if settings is not None:
            items = [u for u in items if u.api_base == settings.api_base]
        return sorted(items, key=lambda u: u.uploaded_at)

    def forget(self, file_id: str) -> None:
        with self._lock:
            for key, value in list(self._by_hash.items()):
                if value.file.id == file_id:
                    del self._by_hash[key]

    def clear(self, settings: Settings) -> tuple[int, list[str]]:
        """Delete this session's uploads at ``settings``' server: ``(deleted, problems)``."""
        from ..errors import KimiError, RemoteFileNotFoundError

        deleted, problems = 0, []
        client = self.files_client(settings)
        for uploaded in self.listing(settings):
            try:
                client.delete(uploaded.file.id)
                deleted += 1
            except RemoteFileNotFoundError:
                pass  # already gone: nothing to delete
            except KimiError as error:
                problems.append(f"{uploaded.name}: {error}")
                continue
            self.forget(uploaded.file.id)
            self.cleared.add(uploaded.file.id)
        return deleted, problems

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()


_SESSIONS: weakref.WeakKeyDictionary[Any, SessionUploads] = weakref.WeakKeyDictionary()
_SESSIONS_LOCK = threading.Lock()


def uploads_for(session: Any) -> SessionUploads:
    """The uploads of one kernel session (created on first use)."""
    with _SESSIONS_LOCK:
        uploads = _SESSIONS.get(session)
        if uploads is None:
            uploads = _SESSIONS[session] = SessionUploads()
        return uploads


def notebook_progress(name: str, total: int) -> Callable[[int, int], None] | None:
    """A progress line for a big upload in the running notebook (None outside IPython)."""
    if total < PROGRESS_MIN_BYTES:
        return None
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return None
    if get_ipython() is None:
        return None
    mb = total / 2**20
    handle = display({"text/plain": f"Uploading {name}: 0% of {mb:.1f} MB"}, raw=True, display_id=True)
    last = [0.0]

    def progress(sent: int, size: int) -> None:
        now = time.monotonic()
        if sent < size and now - last[0] < 0.2:
            return
        last[0] = now
        text = f"Uploading {name}: {100 * sent // max(size, 1)}% of {mb:.1f} MB"
        if sent >= size:
            text = f"Uploaded {name} ({mb:.1f} MB) through the Files API"
        if handle is not None:
            handle.update({"text/plain": text}, raw=True)

    return progress


class MediaSink:
    """How one prompt's media and documents are sent (``build_content(..., media=sink)``).

    After building, :attr:`system_messages` holds the documents' system messages and
    :attr:`summaries` their "report.pdf: N pages / N tokens" lines.
    """

    def __init__(self, settings: Settings, uploads: SessionUploads | None = None,
                 progress: ProgressFactory | None = notebook_progress):
        self.settings = settings
        self.uploads = uploads
        self.progress = progress
        self.system_messages: list[dict[str, Any]] = []
        self.summaries: list[str] = []

    @property
    def files_api(self) -> bool:
        return self.uploads is not None and self.settings.preset.files_api

    def _threshold(self) -> int:
        return int(self.settings.upload_threshold)

    def _progress(self, name: str, total: int) -> Callable[[int, int], None] | None:
        return self.progress(name, total) if self.progress is not None else None

    def _upload(self, source: Path | bytes, purpose: str, name: str, size: int) -> Uploaded:
        from ..errors import KimiError

        assert self.uploads is not None
        try:
            return self.uploads.upload(self.settings, source, purpose, name, self._progress(name, size))
        except KimiError as error:
            raise ContextError(f"{name} could not be uploaded through the Files API: {error}") from None

    def video_part(self, path: str | os.PathLike[str], inline_limit: int) -> dict[str, Any] | None:
        """An ``ms://`` part for a video over the threshold; None: send it inline."""
        p = Path(os.fspath(path)).expanduser()
        try:
            size = p.stat().st_size
        except OSError:
            return None  # video.py says what is wrong with the path
        if self.files_api and (size > self._threshold() or size > inline_limit):
            from ..client.files import MAX_FILE_BYTES

            if size > MAX_FILE_BYTES:
                raise ContextError(
                    f"video file '{p}' is {size / 2**20:.1f} MB; at most {MAX_FILE_BYTES // 2**20} MB can be sent "
                    "(the Files API's limit per file). Attach a shorter or smaller clip, e.g. "
                    "`ffmpeg -i in.mp4 -t 30 -vf scale=-2:720 clip.mp4`."
                )
            uploaded = self._upload(p, "video", p.name, size)
            return {"type": "video_url", "video_url": {"url": uploaded.url}}
        if size > inline_limit:
            raise ContextError(
                f"video file '{p}' is {size / 2**20:.1f} MB: too big to send inline (a request may be at "
                f"most 100 MB), and the {self.settings.preset.name} provider has no Files API to upload it "
                "(moonshot and moonshot-intl have one). Attach a shorter or smaller clip, e.g. "
                "`ffmpeg -i in.mp4 -t 30 -vf scale=-2:720 clip.mp4`."
            )
        return None

    def image_part(self, part: dict[str, Any], label: str) -> dict[str, Any]:
        """``part`` itself, or an ``ms://`` part when its image is over the threshold."""
        url = part.get("image_url", {}).get("url", "")
        if not self.files_api or not url.startswith("data:") or len(url) * 3 // 4 <= self._threshold():
            return part
        header, _, payload = url.partition(",")
        data = base64.b64decode(payload)
        ext = header[len("data:image/"):].split(";", 1)[0] or "png"
        uploaded = self._upload(data, "image", f"{label}.{'jpg' if ext == 'jpeg' else ext}", len(data))
        return {"type": "image_url", "image_url": {"url": uploaded.url}}

    def document(self, path: str | os.PathLike[str], label: str) -> str:
        """Send the document at ``path`` as a system message; returns the text for the prompt."""
        from ..conversation import estimate_tokens

        p = Path(os.fspath(path)).expanduser()
        if self.files_api:
            assert self.uploads is not None
            from ..errors import KimiError

            try:
                size = p.stat().st_size
                uploaded = self.uploads.document(self.settings, p, self._progress(p.name, size))
            except KimiError as error:
                raise ContextError(f"{p.name} could not be extracted through the Files API: {error}") from None
            except OSError as exc:
                raise ContextError(f"document '{p}' could not be read: {exc.strerror or exc}") from None
            extracted = uploaded.extracted
            assert extracted is not None
        else:
            data, _ = read_document(p)
            extracted = extract_text(data, p.name)
        text = extracted.text
        tokens = estimate_tokens(text)
        self.system_messages.append({"role": "system", "content": f"[document: {p.name}]\n{text}"})
        pages = f"{extracted.pages} {extracted.unit} / " if extracted.pages is not None else ""
        self.summaries.append(f"{p.name}: {pages}{tokens:,} tokens")
        return f"[document: {p.name}, attached as a system message]"


# -- what the entry points call (magic, ask(), sidebar) ----------------------------------------


def session_sink(session: Any, settings: Settings) -> MediaSink:
    """The sink for one prompt of ``session``: its uploads are shared by every entry point."""
    return MediaSink(settings, uploads_for(session))


def forget_in_history(session: Any, file_ids: set[str]) -> int:
    """Replace parts of the conversation memory that name deleted files (the server would
    refuse the next request for them) with a text placeholder; returns how many."""
    conversation = getattr(session, "conversation", None)
    replaced = 0
    for message in getattr(conversation, "messages", ()):
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for i, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            url = (part.get(kind) or {}).get("url", "") if kind in ("image_url", "video_url") else ""
            if url.startswith("ms://") and url[len("ms://"):] in file_ids:
                label = "video" if kind == "video_url" else "image"
                content[i] = {"type": "text", "text": f"[{label} removed: its uploaded file was deleted]"}
                replaced += 1
    return replaced


def request_extras(sink: MediaSink | None, notices: list[Any] | None = None,
                   wire: dict[str, Any] | None = None) -> dict[str, Any]:
    """``TurnRequest`` fields: the documents ``sink`` collected (``context``) and the client
    options (``wire``: ``wire`` plus the documents' summaries and ``notices`` to show first)."""
    extras: dict[str, Any] = {"wire": dict(wire or {})}
    if sink is not None and sink.system_messages:
        extras["context"] = list(sink.system_messages)
    shown = [Notice(f"Document {line}", "info") for line in (sink.summaries if sink else ())]
    shown += list(notices or ())
    if shown:
        extras["wire"]["notices"] = shown
    return extras


def files_report(session: Any, settings: Settings, command: str = "list") -> str:
    """``%kimi files [list|clear]``: this session's uploads, the account's quota use, or deleting them."""
    from ..errors import KimiError

    if not settings.preset.files_api:
        return (f"The {settings.preset.name} provider has no Files API: media are sent inline and documents "
                "are read locally (moonshot and moonshot-intl upload them).")
    uploads = uploads_for(session)
    if command == "clear":
        try:
            deleted, problems = uploads.clear(settings)
        except KimiError as error:
            return str(error)
        forget_in_history(session, uploads.cleared)
        text = f"Deleted {deleted} file{'s' if deleted != 1 else ''} this session uploaded."
        return text + ("\n" + "\n".join(problems) if problems else "")
    if command not in ("", "list"):
        return "Use: %kimi files [list|clear]"
    mine = uploads.listing(settings)
    lines = []
    if mine:
        lines.append(f"{len(mine)} file{'s' if len(mine) != 1 else ''} uploaded by this session:")
        for item in mine:
            lines.append(f"  {item.name}  {item.purpose}  {item.file.bytes / 2**20:.1f} MB  {item.url}")
    else:
        lines.append("This session has uploaded no files.")
    try:
        account = uploads.files_client(settings).list()
    except KimiError as error:
        lines.append(f"The account's files could not be listed: {error}")
        return "\n".join(lines)
    used = sum(f.bytes for f in account)
    lines.append(
        f"Account quota: {len(account)} of {ACCOUNT_FILES:,} files, {used / 2**30:.2f} of "
        f"{ACCOUNT_BYTES / 2**30:.0f} GB ({100 * used / ACCOUNT_BYTES:.1f}%). `%kimi files clear` deletes "
        "this session's uploads."
    )
    return "\n".join(lines)


def file_attachment_parts(attachment: dict[str, Any], settings: Settings, media: MediaSink | None) -> list[dict[str, Any]]:
    """Content parts for a file the sidebar's **Attach file** picked (a path relative to the
    kernel's working directory): a document, an image or a video, sent as ``{name}`` would be."""
    from .documents import document_kind
    from .images import IMAGE_EXTENSIONS
    from .interpolate import build_content
    from .video import VIDEO_MIME_TYPES

    raw = attachment.get("path")
    if not isinstance(raw, str) or not raw or "\x00" in raw or len(raw) > 4096:
        raise ContextError("The attached file has no usable path.")
    path = Path(raw).expanduser()
    if not path.is_file():
        raise ContextError(f"The attached file '{raw}' was not found from the kernel's working directory "
                           f"({Path.cwd()}).")
    suffix = path.suffix.lower()
    if not (document_kind(path) or suffix in IMAGE_EXTENSIONS or suffix in VIDEO_MIME_TYPES):
        raise ContextError(f"'{path.name}' cannot be attached: attach a document (pdf, docx, xlsx, pptx, txt, md), "
                           "an image or a video.")
    parts = build_content("{file}", {"file": path}, frame_budget=settings.frame_budget,
                          image_max_size=settings.image_max_size, media=media)
    return [{"type": "text", "text": f"[file attached from the notebook: {path.name}]\n"}, *parts]
