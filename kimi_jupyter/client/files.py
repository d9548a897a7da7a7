"""Moonshot's Files API, sync and async: upload, list, retrieve, content, delete.

What the code relies on (Moonshot's platform docs):

* ``POST {base}/files``: ``multipart/form-data`` with a ``file`` part and a ``purpose``
  field. Purposes: ``file-extract`` (pdf, docx, xlsx, pptx, txt, md, code...: the server
  extracts the text, read back with ``GET /files/{id}/content`` and sent as a system
  message), ``image`` / ``video`` (referenced in chat parts as ``ms://<id>``), ``batch``
  (JSONL for the Batch API). The answer is a file object ``{id, object: "file", bytes,
  created_at, filename, purpose, status, status_details}``.
* ``GET /files`` -> ``{"data": [file objects]}``, ``GET /files/{id}`` -> a file object,
  ``DELETE /files/{id}`` -> ``{"id", "deleted": true}``; ``GET /files/{id}/content`` ->
  the extracted text (``file-extract``; some servers wrap it in a JSON object with a
  ``content`` field: it is sent as it is) or the stored bytes.
* Limits: 100 MB a file, 1,000 files, 10 GB per account. Only the ``moonshot`` and
  ``moonshot-intl`` presets have a Files API (``Provider.files_api``).

Guarantees: the upload streams the file from disk in 64 KiB blocks (httpx's multipart
encoder), so memory does not grow with the file, and ``progress(sent, total)`` is called as
blocks go out. Every read is bounded: metadata replies by :data:`MAX_JSON_BYTES`,
``content`` by ``max_bytes``, and each by the read timeout plus a total deadline. Errors
are the typed errors of :mod:`kimi_jupyter.errors` (an unknown id is
:class:`~kimi_jupyter.errors.RemoteFileNotFoundError`, a refused size or count
:class:`~kimi_jupyter.errors.FileLimitError`). An upload that is interrupted or fails after
its body went out is looked for on the server and deleted, so it leaves nothing behind that
the caller never got an id for.
"""

from __future__ import annotations

import asyncio
import io
import mimetypes
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

from ..errors import (
    FileLimitError,
    FilesUnsupportedError,
    KimiError,
    MalformedResponseError,
    RemoteFileNotFoundError,
)
from ..settings import Settings
from .connection import async_http, sync_http
from .transport import AsyncKimiClient, KimiClient, quote

__all__ = [
    "FILE_PURPOSES",
    "MAX_FILE_BYTES",
    "AsyncFilesClient",
    "FileObject",
    "FilesClient",
    "Progress",
]

FILE_PURPOSES = ("file-extract", "image", "video", "batch")
MAX_FILE_BYTES = 100 * 1024 * 1024
MAX_JSON_BYTES = 8 * 1024 * 1024  # a list of 1,000 file objects is well under 1 MB
DEFAULT_DEADLINE = 600.0  # seconds any one download may take in all

Progress = Callable[[int, int], None]  # (bytes sent, total bytes)
Source = str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes]


@dataclass(frozen=True)
class FileObject:
    """A file as the Files API describes it."""

    id: str
    bytes: int
    filename: str
    purpose: str
    created_at: int = 0
    status: str = ""
    status_details: str = ""

    @classmethod
    def from_json(cls, data: Any) -> FileObject:
        if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
            raise MalformedResponseError("The Files API answered without a file id.")

        def integer(value: Any) -> int:
            return value if isinstance(value, int) and not isinstance(value, bool) else 0

        return cls(
            id=data["id"],
            bytes=integer(data.get("bytes")),
            filename=str(data.get("filename") or ""),
            purpose=str(data.get("purpose") or ""),
            created_at=integer(data.get("created_at")),
            status=str(data.get("status") or ""),
            status_details=str(data.get("status_details") or ""),
        )


class _ProgressReader(io.RawIOBase):
    """A read-only file wrapper that reports how much of it was read (= sent)."""

    def __init__(self, raw: IO[bytes], total: int, progress: Progress | None):
        self._raw = raw
        self.raw = raw  # read without reporting progress (the key check before sending)
        self._total = total
        self._progress = progress
        self.sent = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:  # type: ignore[override]
        block = self._raw.read(size)
        if block:
            self.sent += len(block)
            if self._progress is not None:
                self._progress(self.sent, self._total)
        return block

    def seek(self, offset: int, whence: int = 0) -> int:
        position = self._raw.seek(offset, whence)
        if whence == 0 and offset == 0:
            self.sent = 0  # httpx rewinds before each attempt
        return position

    def tell(self) -> int:
        return self._raw.tell()


@dataclass
class _Upload:
    """An opened upload: the stream to send, its name, MIME type and size."""

    reader: _ProgressReader
    filename: str
    mime: str
    size: int
    owned: IO[bytes] | None  # a file this module opened and must close

    def close(self) -> None:
        if self.owned is not None:
            self.owned.close()


def _open_upload(source: Source, filename: str | None, progress: Progress | None) -> _Upload:
    owned: IO[bytes] | None = None
    if isinstance(source, (bytes, bytearray, memoryview)):
        raw: IO[bytes] = io.BytesIO(bytes(source))
        name = filename or "upload.bin"
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            raw = owned = path.open("rb")
        except OSError as exc:
            raise KimiError(f"Cannot read {path}: {exc.strerror or exc}.") from None
        name = filename or path.name
    else:
        raw = source
        name = filename or Path(str(getattr(source, "name", "upload.bin"))).name
    start = raw.tell()
    size = raw.seek(0, os.SEEK_END) - start
    raw.seek(start)
    if start:  # a file object positioned past its start: send from there
        raw = io.BytesIO(raw.read())
    if size > MAX_FILE_BYTES:
        if owned is not None:
            owned.close()
        raise FileLimitError(
            f"{name} is {size / 1024 / 1024:.1f} MB; the Files API takes at most 100 MB a file. "
            "Send a shorter or smaller file."
        )
    name = safe_filename(name)
    mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return _Upload(_ProgressReader(raw, size, progress), name, mime, size, owned)


def _check_purpose(purpose: str) -> None:
    if purpose not in FILE_PURPOSES:
        raise KimiError(f"Unknown file purpose {purpose!r}: use one of {', '.join(FILE_PURPOSES)}.")


class _FilesBase:
    """What both Files clients share; every call goes through the chat client's core
    (`KimiClient.call`): bounds, deadlines, redirects refused, HTML detection, error
    mapping and retries are written once, there."""

    def __init__(self, settings: Settings):
        self.settings = settings
        if not settings.preset.files_api:
            raise FilesUnsupportedError(
                f"The {settings.preset.name} provider has no Files API (only moonshot and moonshot-intl "
                "do): media are sent inline and documents cannot be extracted there."
            )

    @staticmethod
    def _path(*parts: str) -> str:
        return "/".join(["/files", *(quote(p) for p in parts)])

    def _open(self, source: Source, filename: str | None, progress: Progress | None) -> _Upload:
        """The upload, opened and passed through the one egress: refused (and closed) when its
        content holds the key or a piece of it."""
        from ..secrets import secrets_of
        from .egress import check_upload

        upload = _open_upload(source, filename, progress)
        try:
            check_upload(upload.reader.raw, secrets_of(self.settings), upload.filename)
        except BaseException:
            upload.close()
            raise
        return upload

    def _error(self, file_id: str | None) -> Callable[[Any, bytes | bytearray], KimiError]:
        """Maps an error reply: an unknown id, a refused size or count, else the usual error."""

        def mapped(resp: Any, body: bytes | bytearray) -> KimiError:
            status = resp.status_code
            if status == 404 and file_id:
                return RemoteFileNotFoundError(
                    f"File {file_id} is not on the server (404): it was deleted or never uploaded with this key.",
                    status=status,
                )
            error = self._core._error_of(resp, body)
            low = error.message.lower()
            if status in (400, 413) and any(w in low for w in ("exceed", "too many", "quota", "limit")):
                return FileLimitError(
                    f"The Files API refused the upload over a limit (100 MB a file, 1,000 files, 10 GB in "
                    f"all). Delete files you no longer need (`%kimi files clear`). {error.message}",
                    status=status,
                )
            return error

        return mapped

    def _object(self, body: Any) -> FileObject:
        return FileObject.from_json(body)

    @staticmethod
    def _listed(body: Any) -> list[FileObject]:
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise MalformedResponseError("The Files API's list had no 'data' list.")
        return [FileObject.from_json(item) for item in data]

    @staticmethod
    def _deleted(body: Any) -> bool:
        return bool(body.get("deleted", True)) if isinstance(body, dict) else True

    @staticmethod
    def _orphans(files: list[FileObject], upload: _Upload, started: float) -> list[str]:
        """Ids of files that look like this upload and that the caller never got."""
        return [f.id for f in files if f.filename == upload.filename and f.bytes == upload.size
                and (not f.created_at or f.created_at >= int(started) - 5)]


class FilesClient(_FilesBase):
    """Synchronous Files API client. ``http`` may be shared with a `KimiClient`."""

    def __init__(self, settings: Settings, *, http: httpx.Client | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        super().__init__(settings)
        self._own = http is None
        self._core = KimiClient(settings, http=http or sync_http(settings), sleep=sleep)

    def close(self) -> None:
        if self._own:
            self._core.close()

    def __enter__(self) -> FilesClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def upload(self, source: Source, purpose: str, *, filename: str | None = None,
               progress: Progress | None = None) -> FileObject:
        """Upload a path, bytes or binary file object; ``progress(sent, total)`` as it goes."""
        _check_purpose(purpose)
        upload = self._open(source, filename, progress)
        started = time.time()
        try:
            attempt = 0
            while True:
                attempt += 1
                files = {"file": (upload.filename, upload.reader, upload.mime)}
                try:
                    body, resp = self._core.once("POST", "/files", files=files, data={"purpose": purpose},
                                                 limit=MAX_JSON_BYTES, error=self._error(None))
                    return self._object(self._core._body_json(body, resp))
                except KimiError as error:
                    if upload.reader.sent >= upload.size and error.status is None:
                        self._cleanup(upload, started)  # the body went out, the answer was lost
                    wait = self._core._retry_plan(error, attempt, False)
                    if wait is None:
                        raise
                self._core._sleep(wait)
        except (KeyboardInterrupt, SystemExit):
            if upload.reader.sent >= upload.size:
                self._cleanup(upload, started)
            raise
        finally:
            upload.close()

    def _cleanup(self, upload: _Upload, started: float) -> None:
        """Delete what an upload whose answer was lost may have registered (best effort)."""
        try:
            for file_id in self._orphans(self.list(), upload, started):
                self.delete(file_id)
        except KimiError:
            pass

    def list(self) -> list[FileObject]:
        """Every file of the account, oldest first."""
        return self._listed(self._core.call("GET", "/files", limit=MAX_JSON_BYTES, error=self._error(None)))

    def retrieve(self, file_id: str) -> FileObject:
        return self._object(self._core.call("GET", self._path(file_id), limit=MAX_JSON_BYTES,
                                            error=self._error(file_id)))

    def content(self, file_id: str, *, max_bytes: int = MAX_FILE_BYTES,
                deadline: float = DEFAULT_DEADLINE) -> bytes:
        """The extracted text (``file-extract``) or the stored bytes, at most ``max_bytes``."""
        return bytes(self._core.call("GET", self._path(file_id, "content"), parse=False, limit=max_bytes,
                                     deadline=deadline, what="file content", error=self._error(file_id)))

    def download(self, file_id: str, sink: IO[bytes], *, max_bytes: int = MAX_FILE_BYTES,
                 deadline: float = DEFAULT_DEADLINE) -> int:
        """``content`` written to the binary file ``sink`` as it arrives; returns its size.
        Memory holds one chunk at a time, whatever the file's size (at most ``max_bytes``)."""
        self._core.call("GET", self._path(file_id, "content"), parse=False, limit=max_bytes, deadline=deadline,
                        what="file content", sink=sink, error=self._error(file_id))
        return sink.tell()

    def text(self, file_id: str, *, max_bytes: int = MAX_FILE_BYTES) -> str:
        """``content`` decoded as UTF-8 (what a ``file-extract`` system message carries)."""
        return self.content(file_id, max_bytes=max_bytes).decode("utf-8", "replace")

    def delete(self, file_id: str) -> bool:
        return self._deleted(self._core.call("DELETE", self._path(file_id), limit=MAX_JSON_BYTES,
                                             error=self._error(file_id)))


class AsyncFilesClient(_FilesBase):
    """The async twin of `FilesClient` (same errors, bounds and cleanup), method for method."""

    def __init__(self, settings: Settings, *, http: httpx.AsyncClient | None = None,
                 sleep: Callable[[float], Any] = asyncio.sleep):
        super().__init__(settings)
        self._own = http is None
        self._core = AsyncKimiClient(settings, http=http or async_http(settings), sleep=sleep)

    async def aclose(self) -> None:
        if self._own:
            await self._core.aclose()

    async def __aenter__(self) -> AsyncFilesClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def upload(self, source: Source, purpose: str, *, filename: str | None = None,
                     progress: Progress | None = None) -> FileObject:
        _check_purpose(purpose)
        upload = self._open(source, filename, progress)
        started = time.time()
        try:
            attempt = 0
            while True:
                attempt += 1
                files = {"file": (upload.filename, upload.reader, upload.mime)}
                try:
                    body, resp = await self._core.once("POST", "/files", files=files, data={"purpose": purpose},
                                                       limit=MAX_JSON_BYTES, error=self._error(None))
                    return self._object(self._core._body_json(body, resp))
                except KimiError as error:
                    if upload.reader.sent >= upload.size and error.status is None:
                        await self._cleanup(upload, started)
                    wait = self._core._retry_plan(error, attempt, False)
                    if wait is None:
                        raise
                await self._core._sleep(wait)
        except (KeyboardInterrupt, asyncio.CancelledError):
            if upload.reader.sent >= upload.size:
                await asyncio.shield(self._cleanup(upload, started))
            raise
        finally:
            upload.close()

    async def _cleanup(self, upload: _Upload, started: float) -> None:
        try:
            for file_id in self._orphans(await self.list(), upload, started):
                await self.delete(file_id)
        except KimiError:
            pass

    async def list(self) -> list[FileObject]:
        return self._listed(await self._core.call("GET", "/files", limit=MAX_JSON_BYTES, error=self._error(None)))

    async def retrieve(self, file_id: str) -> FileObject:
        return self._object(await self._core.call("GET", self._path(file_id), limit=MAX_JSON_BYTES,
                                                  error=self._error(file_id)))

    async def content(self, file_id: str, *, max_bytes: int = MAX_FILE_BYTES,
                      deadline: float = DEFAULT_DEADLINE) -> bytes:
        return bytes(await self._core.call("GET", self._path(file_id, "content"), parse=False, limit=max_bytes,
                                           deadline=deadline, what="file content", error=self._error(file_id)))

    async def download(self, file_id: str, sink: IO[bytes], *, max_bytes: int = MAX_FILE_BYTES,
                       deadline: float = DEFAULT_DEADLINE) -> int:
        await self._core.call("GET", self._path(file_id, "content"), parse=False, limit=max_bytes,
                              deadline=deadline, what="file content", sink=sink, error=self._error(file_id))
        return sink.tell()

    async def text(self, file_id: str, *, max_bytes: int = MAX_FILE_BYTES) -> str:
        return (await self.content(file_id, max_bytes=max_bytes)).decode("utf-8", "replace")

    async def delete(self, file_id: str) -> bool:
        return self._deleted(await self._core.call("DELETE", self._path(file_id), limit=MAX_JSON_BYTES,
                                                   error=self._error(file_id)))


def safe_filename(name: str) -> str:
    """A file name fit for a multipart header and for display (no paths, no control chars)."""
    clean = "".join(c for c in Path(name).name if c.isprintable() and c not in '"\\')
    return clean[:200] or "upload.bin"
