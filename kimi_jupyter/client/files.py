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
import json
import mimetypes
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
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
    error_from_response,
)
from ..settings import Settings
from .request import auth_headers
from .retry import backoff_delay, from_transport_error, should_retry

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
    def __init__(self, settings: Settings):
        self.settings = settings
        if not settings.preset.files_api:
            raise FilesUnsupportedError(
                f"The {settings.preset.name} provider has no Files API (only moonshot and moonshot-intl "
                "do): media are sent inline and documents cannot be extracted there."
            )

    @property
    def _secret(self) -> str | None:
        return self.settings.api_key.get() if self.settings.api_key else None

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

    def _url(self, *parts: str) -> str:
        return "/".join([self.settings.api_base.rstrip("/"), "files", *parts])

    def _headers(self) -> dict[str, str]:
        headers = auth_headers(self.settings.require_key())
        headers["Accept"] = "application/json"
        return headers

    def _error(self, status: int, body: bytes, headers: Any, file_id: str | None) -> KimiError:
        text = body.decode("utf-8", "replace")
        if status == 404 and file_id:
            return RemoteFileNotFoundError(
                f"File {file_id} is not on the server (404): it was deleted or never uploaded with this key.",
                status=status,
            )
        error = error_from_response(status, text, headers, base_url=self.settings.base_url,
                                    model=self.settings.model, secret=self._secret)
        low = error.message.lower()
        if status in (400, 413) and any(w in low for w in ("exceed", "too many", "quota", "limit")):
            return FileLimitError(
                f"The Files API refused the upload over a limit (100 MB a file, 1,000 files, 10 GB in "
                f"all). Delete files you no longer need (`%kimi files clear`). {error.message}",
                status=status,
            )
        return error

    def _json(self, status: int, body: bytes, headers: Any, file_id: str | None = None) -> Any:
        if status >= 400:
            raise self._error(status, body, headers, file_id)
        try:
            return json.loads(body)
        except ValueError:
            raise MalformedResponseError("The Files API's reply was not JSON.") from None

    def _transport(self, exc: httpx.HTTPError, url: str) -> KimiError:
        return from_transport_error(exc, url, self.settings.timeout_read, False, self._secret)

    def _retry_wait(self, error: KimiError, attempt: int) -> float | None:
        s = self.settings
        if not should_retry(error, attempt, s.max_retries, s.retry_max_wait, False):
            return None
        return backoff_delay(attempt, s.retry_backoff, s.retry_max_wait, error.retry_after)

    @staticmethod
    def _orphans(listing: Any, upload: _Upload, started: float) -> list[str]:
        """Ids of files that look like this upload and that the caller never got."""
        data = listing.get("data") if isinstance(listing, dict) else None
        ids = []
        for item in data or ():
            try:
                file = FileObject.from_json(item)
            except MalformedResponseError:
                continue
            if (file.filename == upload.filename and file.bytes == upload.size
                    and (not file.created_at or file.created_at >= int(started) - 5)):
                ids.append(file.id)
        return ids


def _timeout(settings: Settings) -> httpx.Timeout:
    return httpx.Timeout(connect=settings.timeout_connect, read=settings.timeout_read,
                         write=settings.timeout_read, pool=settings.timeout_connect)


def _limited(chunks: Iterator[bytes], limit: int, deadline: float, what: str) -> bytes:
    out = bytearray()
    for chunk in chunks:
        out += chunk
        _check_bounds(len(out), limit, deadline, what)
    return bytes(out)


def _copy_limited(chunks: Iterator[bytes], sink: IO[bytes], limit: int, deadline: float, what: str) -> None:
    size = 0
    for chunk in chunks:
        size += len(chunk)
        _check_bounds(size, limit, deadline, what)
        sink.write(chunk)


async def _alimited(chunks: AsyncIterator[bytes], limit: int, deadline: float, what: str) -> bytes:
    out = bytearray()
    async for chunk in chunks:
        out += chunk
        _check_bounds(len(out), limit, deadline, what)
    return bytes(out)


def _check_bounds(size: int, limit: int, deadline: float, what: str) -> None:
    if size > limit:
        raise MalformedResponseError(f"{what} is larger than {limit} bytes; it was not read further.")
    if time.monotonic() > deadline:
        raise MalformedResponseError(f"{what} took too long to arrive; it was not read further.")


class FilesClient(_FilesBase):
    """Synchronous Files API client. ``http`` may be shared with a `KimiClient`."""

    def __init__(self, settings: Settings, *, http: httpx.Client | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        super().__init__(settings)
        self._own = http is None
        self._http = http or httpx.Client(timeout=_timeout(settings))
        self._sleep = sleep

    def close(self) -> None:
        if self._own:
            self._http.close()

    def __enter__(self) -> FilesClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, url: str, file_id: str | None = None, *,
                 limit: int = MAX_JSON_BYTES, deadline: float = DEFAULT_DEADLINE, sink: IO[bytes] | None = None,
                 **kw: Any) -> tuple[int, bytes, Any]:
        """The reply's status, body and headers; with ``sink``, a successful body goes there
        (bounded the same way) and the body returned is empty."""
        attempt = 0
        while True:
            attempt += 1
            try:
                with self._http.stream(method, url, headers=self._headers(), **kw) as resp:
                    if sink is not None and resp.status_code < 400:
                        sink.seek(0)
                        sink.truncate()  # what an earlier attempt wrote
                        _copy_limited(resp.iter_bytes(), sink, limit, time.monotonic() + deadline,
                                      "The Files API's reply")
                        return resp.status_code, b"", resp.headers
                    body = _limited(resp.iter_bytes(), limit, time.monotonic() + deadline, "The Files API's reply")
                    if resp.status_code < 400:
                        return resp.status_code, body, resp.headers
                    error = self._error(resp.status_code, body, resp.headers, file_id)
            except httpx.HTTPError as exc:
                error = self._transport(exc, url)
            wait = self._retry_wait(error, attempt)
            if wait is None:
                raise error
            self._sleep(wait)

    def upload(self, source: Source, purpose: str, *, filename: str | None = None,
               progress: Progress | None = None) -> FileObject:
        """Upload a path, bytes or binary file object; ``progress(sent, total)`` as it goes."""
        _check_purpose(purpose)
        upload = self._open(source, filename, progress)
        url = self._url()
        started = time.time()
        try:
            attempt = 0
            while True:
                attempt += 1
                files = {"file": (upload.filename, upload.reader, upload.mime)}
                try:
                    status, body, headers = self._send_upload(url, files, purpose)
                    if status < 400:
                        return FileObject.from_json(self._json(status, body, headers))
                    error = self._error(status, body, headers, None)
                except httpx.HTTPError as exc:
                    error = self._transport(exc, url)
                    if upload.reader.sent >= upload.size:
                        self._cleanup(upload, started)
                wait = self._retry_wait(error, attempt)
                if wait is None:
                    raise error
                self._sleep(wait)
        except (KeyboardInterrupt, SystemExit):
            if upload.reader.sent >= upload.size:
                self._cleanup(upload, started)
            raise
        finally:
            upload.close()

    def _send_upload(self, url: str, files: dict[str, Any], purpose: str) -> tuple[int, bytes, Any]:
        with self._http.stream("POST", url, headers=self._headers(), files=files,
                               data={"purpose": purpose}) as resp:
            body = _limited(resp.iter_bytes(), MAX_JSON_BYTES, time.monotonic() + DEFAULT_DEADLINE,
                            "The Files API's reply")
            return resp.status_code, body, resp.headers

    def _cleanup(self, upload: _Upload, started: float) -> None:
        """Delete what an upload whose answer was lost may have registered (best effort)."""
        try:
            listing = self._json(*self._request("GET", self._url()))
            for file_id in self._orphans(listing, upload, started):
                self.delete(file_id)
        except (KimiError, httpx.HTTPError):
            pass

    def list(self) -> list[FileObject]:
        """Every file of the account, oldest first."""
        body = self._json(*self._request("GET", self._url()))
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise MalformedResponseError("The Files API's list had no 'data' list.")
        return [FileObject.from_json(item) for item in data]

    def retrieve(self, file_id: str) -> FileObject:
        return FileObject.from_json(self._json(*self._request("GET", self._url(file_id), file_id), file_id))

    def content(self, file_id: str, *, max_bytes: int = MAX_FILE_BYTES,
                deadline: float = DEFAULT_DEADLINE) -> bytes:
        """The extracted text (``file-extract``) or the stored bytes, at most ``max_bytes``."""
        _, body, _ = self._request("GET", self._url(file_id, "content"), file_id, limit=max_bytes,
                                   deadline=deadline)
        return body

    def download(self, file_id: str, sink: IO[bytes], *, max_bytes: int = MAX_FILE_BYTES,
                 deadline: float = DEFAULT_DEADLINE) -> int:
        """``content`` written to the binary file ``sink`` as it arrives; returns its size.
        Memory holds one chunk at a time, whatever the file's size (at most ``max_bytes``)."""
        self._request("GET", self._url(file_id, "content"), file_id, limit=max_bytes, deadline=deadline, sink=sink)
        return sink.tell()

    def text(self, file_id: str, *, max_bytes: int = MAX_FILE_BYTES) -> str:
        """``content`` decoded as UTF-8 (what a ``file-extract`` system message carries)."""
        return self.content(file_id, max_bytes=max_bytes).decode("utf-8", "replace")

    def delete(self, file_id: str) -> bool:
        body = self._json(*self._request("DELETE", self._url(file_id), file_id), file_id)
        return bool(body.get("deleted", True)) if isinstance(body, dict) else True


class AsyncFilesClient(_FilesBase):
    """The async twin of `FilesClient` (same errors, bounds and cleanup)."""

    def __init__(self, settings: Settings, *, http: httpx.AsyncClient | None = None,
                 sleep: Callable[[float], Any] = asyncio.sleep):
        super().__init__(settings)
        self._own = http is None
        self._http = http or httpx.AsyncClient(timeout=_timeout(settings))
        self._sleep = sleep

    async def aclose(self) -> None:
        if self._own:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncFilesClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _request(self, method: str, url: str, file_id: str | None = None, *,
                       limit: int = MAX_JSON_BYTES, deadline: float = DEFAULT_DEADLINE,
                       **kw: Any) -> tuple[int, bytes, Any]:
        attempt = 0
        while True:
            attempt += 1
            try:
                async with self._http.stream(method, url, headers=self._headers(), **kw) as resp:
                    body = await _alimited(resp.aiter_bytes(), limit, time.monotonic() + deadline,
                                           "The Files API's reply")
                    if resp.status_code < 400:
                        return resp.status_code, body, resp.headers
                    error = self._error(resp.status_code, body, resp.headers, file_id)
            except httpx.HTTPError as exc:
                error = self._transport(exc, url)
            wait = self._retry_wait(error, attempt)
            if wait is None:
                raise error
            await self._sleep(wait)

    async def upload(self, source: Source, purpose: str, *, filename: str | None = None,
                     progress: Progress | None = None) -> FileObject:
        _check_purpose(purpose)
        upload = self._open(source, filename, progress)
        url = self._url()
        started = time.time()
        try:
            attempt = 0
            while True:
                attempt += 1
                files = {"file": (upload.filename, upload.reader, upload.mime)}
                try:
                    async with self._http.stream("POST", url, headers=self._headers(), files=files,
                                                 data={"purpose": purpose}) as resp:
                        body = await _alimited(resp.aiter_bytes(), MAX_JSON_BYTES,
                                               time.monotonic() + DEFAULT_DEADLINE, "The Files API's reply")
                        if resp.status_code < 400:
                            return FileObject.from_json(self._json(resp.status_code, body, resp.headers))
                        error = self._error(resp.status_code, body, resp.headers, None)
                except httpx.HTTPError as exc:
                    error = self._transport(exc, url)
                    if upload.reader.sent >= upload.size:
                        await self._cleanup(upload, started)
                wait = self._retry_wait(error, attempt)
                if wait is None:
                    raise error
                await self._sleep(wait)
        except (KeyboardInterrupt, asyncio.CancelledError):
            if upload.reader.sent >= upload.size:
                await asyncio.shield(self._cleanup(upload, started))
            raise
        finally:
            upload.close()

    async def _cleanup(self, upload: _Upload, started: float) -> None:
        try:
            listing = self._json(*await self._request("GET", self._url()))
            for file_id in self._orphans(listing, upload, started):
                await self.delete(file_id)
        except (KimiError, httpx.HTTPError):
            pass

    async def list(self) -> list[FileObject]:
        body = self._json(*await self._request("GET", self._url()))
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise MalformedResponseError("The Files API's list had no 'data' list.")
        return [FileObject.from_json(item) for item in data]

    async def retrieve(self, file_id: str) -> FileObject:
        return FileObject.from_json(self._json(*await self._request("GET", self._url(file_id), file_id), file_id))

    async def content(self, file_id: str, *, max_bytes: int = MAX_FILE_BYTES,
                      deadline: float = DEFAULT_DEADLINE) -> bytes:
        _, body, _ = await self._request("GET", self._url(file_id, "content"), file_id, limit=max_bytes,
                                         deadline=deadline)
        return body

    async def text(self, file_id: str, *, max_bytes: int = MAX_FILE_BYTES) -> str:
        return (await self.content(file_id, max_bytes=max_bytes)).decode("utf-8", "replace")

    async def delete(self, file_id: str) -> bool:
        body = self._json(*await self._request("DELETE", self._url(file_id), file_id), file_id)
        return bool(body.get("deleted", True)) if isinstance(body, dict) else True


def safe_filename(name: str) -> str:
    """A file name fit for a multipart header and for display (no paths, no control chars)."""
    clean = "".join(c for c in Path(name).name if c.isprintable() and c not in '"\\')
    return clean[:200] or "upload.bin"
