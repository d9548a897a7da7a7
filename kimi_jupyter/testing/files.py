"""The simulator's Files API: upload, list, retrieve, content, delete, and ``ms://`` ids.

Moonshot's Files API, as the simulator serves it (facts from Moonshot's platform docs):

* ``POST /v1/files``: ``multipart/form-data`` with a ``file`` part and a ``purpose`` field:
  ``file-extract`` (pdf, doc(x), xls(x), ppt(x), txt, md, csv, json, html, code...: the
  server extracts the text), ``image`` (png, jpeg, webp, gif) and ``video`` (mp4, mpeg,
  mov, avi, x-flv, mpg, webm, wmv, 3gpp), referenced in chat ``image_url`` / ``video_url``
  parts as ``ms://<file-id>``, and ``batch`` (JSONL input of the Batch API). The answer is
  the file object ``{id, object: "file", bytes, created_at, filename, purpose, status,
  status_details}``.
* ``GET /v1/files`` -> ``{"object": "list", "data": [file objects]}``;
  ``GET /v1/files/{id}`` -> the file object; ``DELETE /v1/files/{id}`` ->
  ``{"id", "object": "file", "deleted": true}``; an unknown id is a 404
  ``resource_not_found_error``.
* ``GET /v1/files/{id}/content``: for ``file-extract`` the extracted text as plain text
  (to be sent as a system message); for the other purposes the stored bytes.
* Limits: 100 MB a file, 1,000 files and 10 GB in all per account; over a limit the
  upload is refused with a 400 ``invalid_request_error`` that names it.

Text extraction is deterministic and offline (``kimi_jupyter.context.documents``, the same
code the client uses where a provider has no Files API). The multipart body is
parsed with ``python-multipart``'s streaming parser, so the file's bytes are copied once.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..context.documents import DocumentError, extract_text
from .errors import ApiError, invalid_request, not_found
from .tokens import image_size

__all__ = ["FILE_PURPOSES", "FileLimits", "FileStore", "StoredFile", "parse_upload"]

FILE_PURPOSES = ("file-extract", "image", "video", "batch")
IMAGE_FORMATS = ("png", "jpeg", "webp", "gif")
VIDEO_EXTENSIONS = (".mp4", ".mpeg", ".mov", ".avi", ".flv", ".mpg", ".webm", ".wmv", ".3gp", ".3gpp")
_MB = 1024 * 1024


@dataclass(frozen=True)
class FileLimits:
    """Per-file, file-count and total-bytes limits (Moonshot: 100 MB, 1,000, 10 GB)."""

    max_file_bytes: int = 100 * _MB
    max_files: int = 1000
    max_total_bytes: int = 10 * 1024 * _MB


@dataclass
class StoredFile:
    """One uploaded file: its bytes, metadata and (for ``file-extract``) its text."""

    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int
    text: str | None = None
    pages: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def object(self) -> dict[str, Any]:
        """The file object as the API shows it."""
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "ok",
            "status_details": "",
        }


class FileStore:
    """The account's files, behind one lock (server threads and the test thread share it)."""

    def __init__(self, limits: FileLimits | None = None) -> None:
        self.limits = limits or FileLimits()
        self._lock = threading.Lock()
        self._files: dict[str, StoredFile] = {}

    def add(self, data: bytes, filename: str, purpose: str) -> StoredFile:
        """Check, extract and store an upload (the Batch API adds its result files here too)."""
        if purpose not in FILE_PURPOSES:
            raise invalid_request(
                f"Invalid request: unknown purpose {purpose!r}: use one of {', '.join(FILE_PURPOSES)}"
            )
        if not data:
            raise invalid_request("Invalid request: the uploaded file is empty")
        limits = self.limits
        if len(data) > limits.max_file_bytes:
            raise invalid_request(
                f"Invalid request: file size {len(data)} bytes exceeds the limit of "
                f"{limits.max_file_bytes} bytes per file"
            )
        text, pages = _check_and_extract(data, filename, purpose)
        stored = StoredFile(_new_id(), filename, purpose, data, int(time.time()), text, pages)
        with self._lock:
            if len(self._files) >= limits.max_files:
                raise invalid_request(
                    f"Invalid request: too many files: the account holds {len(self._files)} files, the limit "
                    f"is {limits.max_files}; delete some first"
                )
            used = sum(len(f.data) for f in self._files.values())
            if used + len(data) > limits.max_total_bytes:
                raise invalid_request(
                    f"Invalid request: storage quota exceeded: {used} bytes used, this file needs "
                    f"{len(data)} more, the limit is {limits.max_total_bytes} bytes; delete some files first"
                )
            self._files[stored.id] = stored
        return stored

    def get(self, file_id: str) -> StoredFile | None:
        with self._lock:
            return self._files.get(file_id)

    def require(self, file_id: str) -> StoredFile:
        stored = self.get(file_id)
        if stored is None:
            raise not_found(f"File not found: {file_id}")
        return stored

    def delete(self, file_id: str) -> None:
        with self._lock:
            if self._files.pop(file_id, None) is None:
                raise not_found(f"File not found: {file_id}")

    def all(self) -> list[StoredFile]:
        with self._lock:
            return sorted(self._files.values(), key=lambda f: (f.created_at, f.id))

    def clear(self) -> None:
        with self._lock:
            self._files.clear()

    def used_bytes(self) -> int:
        with self._lock:
            return sum(len(f.data) for f in self._files.values())


def _new_id() -> str:
    # Moonshot file ids look like "cq1a2b3c4d5e6f7g8h9i" (letters and digits).
    return "cs" + uuid.uuid4().hex[:18]


# -- multipart -------------------------------------------------------------------------------


def parse_upload(content_type: str, body: bytes, max_size: int) -> tuple[bytes, str, str]:
    """``(file bytes, filename, purpose)`` of a ``multipart/form-data`` upload body."""
    from python_multipart.exceptions import FormParserError
    from python_multipart.multipart import MultipartParser, parse_options_header

    kind, options = parse_options_header(content_type or "")
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise invalid_request(
            "Invalid request: upload the file as multipart/form-data with a 'file' part and a 'purpose' field"
        )
    parts: list[dict[str, Any]] = []
    header: dict[str, list[bytes]] = {"field": [], "value": []}

    def on_part_begin() -> None:
        parts.append({"headers": {}, "data": bytearray()})

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header["field"].append(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header["value"].append(data[start:end])

    def on_header_end() -> None:
        name = b"".join(header["field"]).decode("latin-1").lower()
        parts[-1]["headers"][name] = b"".join(header["value"])
        header["field"].clear()
        header["value"].clear()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        parts[-1]["data"] += data[start:end]

    ended: list[bool] = []

    def on_end() -> None:
        ended.append(True)

    callbacks: Any = {
        "on_part_begin": on_part_begin,
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_header_end": on_header_end,
        "on_part_data": on_part_data,
        "on_end": on_end,
    }
    try:
        parser = MultipartParser(boundary, callbacks, max_size=max_size)
        parser.write(body)
        parser.finalize()
    except FormParserError as exc:
        raise invalid_request(f"Invalid request: malformed multipart body ({exc})") from None
    if not ended:
        raise invalid_request("Invalid request: the multipart body ends before its closing boundary")
    file_data: bytes | None = None
    filename = ""
    purpose = ""
    for part in parts:
        _, disposition = parse_options_header(part["headers"].get("content-disposition", b""))
        name = disposition.get(b"name", b"").decode("utf-8", "replace")
        if name == "file":
            file_data = bytes(part["data"])
            filename = disposition.get(b"filename", b"").decode("utf-8", "replace") or "upload"
        elif name == "purpose":
            purpose = bytes(part["data"]).decode("utf-8", "replace").strip()
    if file_data is None:
        raise invalid_request("Invalid request: the upload has no 'file' part")
    if not purpose:
        raise invalid_request(
            f"Invalid request: 'purpose' is required: one of {', '.join(FILE_PURPOSES)}"
        )
    return file_data, filename, purpose


# -- checks and extraction -------------------------------------------------------------------


def _extension(filename: str) -> str:
    dot = filename.rfind(".")
    return filename[dot:].lower() if dot > 0 else ""


def _check_and_extract(data: bytes, filename: str, purpose: str) -> tuple[str | None, int | None]:
    ext = _extension(filename)
    if purpose == "image":
        size = image_size(data)
        if size is None or size[0] not in IMAGE_FORMATS:
            raise invalid_request(
                f"Invalid request: {filename} is not a supported image (png, jpeg, webp or gif)"
            )
        return None, None
    if purpose == "video":
        if ext not in VIDEO_EXTENSIONS:
            raise invalid_request(
                f"Invalid request: {filename} is not a supported video "
                "(mp4, mpeg, mov, avi, x-flv, mpg, webm, wmv, 3gpp)"
            )
        return None, None
    if purpose == "batch":
        return None, None
    try:
        extracted = extract_text(data, filename)
    except DocumentError as exc:
        raise invalid_request(f"Invalid request: {exc}") from None
    return extracted.text, extracted.pages


# -- ms:// references ------------------------------------------------------------------------

MS_SCHEME = "ms://"


def resolver(store: FileStore) -> Callable[[str, str], StoredFile]:
    """A function ``(url, kind) -> StoredFile`` for ``ms://`` parts of chat requests.

    An unknown id (never uploaded, or deleted) and a file uploaded for another purpose are
    400 ``invalid_request_error`` answers that name the id.
    """

    def resolve(url: str, kind: str) -> StoredFile:
        file_id = url[len(MS_SCHEME):].strip("/")
        stored = store.get(file_id)
        if stored is None:
            raise invalid_request(
                f"Invalid request: file {file_id} referenced as {url} in a {kind}_url part does not exist "
                "(it was never uploaded or has been deleted)"
            )
        if stored.purpose != kind:
            raise invalid_request(
                f"Invalid request: file {file_id} was uploaded with purpose {stored.purpose!r}, "
                f"it cannot be used in a {kind}_url part (upload it with purpose {kind!r})"
            )
        return stored

    return resolve


def file_response_body(stored: StoredFile) -> tuple[bytes, str]:
    """``(body, content type)`` of ``GET /files/{id}/content``."""
    if stored.purpose == "file-extract":
        return (stored.text or "").encode("utf-8"), "text/plain; charset=utf-8"
    if stored.purpose == "batch":
        return stored.data, "application/jsonl"
    return stored.data, "application/octet-stream"


def check_multipart(headers: Mapping[str, str]) -> str:
    content_type = headers.get("content-type") or ""
    if not content_type.lower().startswith("multipart/form-data"):
        raise ApiError(
            400,
            "invalid_request_error",
            "Invalid request: upload the file as multipart/form-data with a 'file' part and a 'purpose' field",
        )
    return content_type
