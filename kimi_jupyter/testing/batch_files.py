"""The simulator's file store for the Batch API: ``POST /files`` (multipart, ``purpose``),
``GET /files``, ``GET /files/{id}``, ``GET /files/{id}/content``, ``DELETE /files/{id}``.

Moonshot's limits are kept: 100 MB a file. Batch input files (``purpose="batch"``) are
JSONL; output and error files the Batch API writes are stored here too
(``purpose="batch_output"``).
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from .errors import ApiError, invalid_request, not_found
from .server import HttpRequest, HttpResponse

__all__ = ["FileStore", "StoredFile"]

MAX_FILE_BYTES = 100 * 1024 * 1024
PURPOSES = ("file-extract", "image", "video", "batch", "batch_output")


@dataclass
class StoredFile:
    id: str
    filename: str
    purpose: str
    content: bytes
    created_at: int

    def meta(self) -> dict[str, Any]:
        return {"id": self.id, "object": "file", "bytes": len(self.content), "created_at": self.created_at,
                "filename": self.filename, "purpose": self.purpose, "status": "ok", "status_details": ""}


def _json(status: int, body: Any) -> HttpResponse:
    return HttpResponse(status, json.dumps(body, ensure_ascii=False).encode(), {"Content-Type": "application/json"})


def parse_multipart(request: HttpRequest) -> dict[str, tuple[str | None, bytes]]:
    """Form fields of a multipart body: name -> (filename, bytes)."""
    ctype = request.headers.get("content-type") or ""
    if "multipart/form-data" not in ctype:
        raise invalid_request("Invalid request: upload a file as multipart/form-data with 'file' and 'purpose'")
    head = f"Content-Type: {ctype}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + request.body)
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            payload = part.get_payload(decode=True) or b""
            fields[str(name)] = (part.get_filename(), payload)
    return fields


class FileStore:
    def __init__(self) -> None:
        self._files: dict[str, StoredFile] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, content: bytes, purpose: str, filename: str) -> StoredFile:
        with self._lock:
            stored = StoredFile(f"file-sim{next(self._ids):06d}", filename, purpose, content, int(time.time()))
            self._files[stored.id] = stored
            return stored

    def get(self, file_id: str) -> StoredFile:
        with self._lock:
            stored = self._files.get(file_id)
        if stored is None:
            raise not_found(f"Not found the file {file_id}")
        return stored

    def handle(self, request: HttpRequest, endpoint: str) -> HttpResponse:
        parts = endpoint.strip("/").split("/")  # ["files"], ["files", id], ["files", id, "content"]
        if parts == ["files"] and request.method == "POST":
            if request.too_large:
                raise ApiError(413, "invalid_request_error", "Invalid request: files are limited to 100 MB")
            fields = parse_multipart(request)
            purpose = fields.get("purpose", (None, b""))[1].decode("utf-8", "replace").strip()
            if purpose not in PURPOSES[:4]:
                raise invalid_request(f"Invalid request: purpose must be one of {', '.join(PURPOSES[:4])}")
            if "file" not in fields:
                raise invalid_request("Invalid request: no 'file' part in the upload")
            filename, content = fields["file"]
            if len(content) > MAX_FILE_BYTES:
                raise ApiError(413, "invalid_request_error", "Invalid request: files are limited to 100 MB")
            return _json(200, self.add(content, purpose, filename or "upload").meta())
        if parts == ["files"] and request.method == "GET":
            with self._lock:
                data = [f.meta() for f in self._files.values()]
            return _json(200, {"object": "list", "data": data})
        if len(parts) == 2 and request.method == "GET":
            return _json(200, self.get(parts[1]).meta())
        if len(parts) == 2 and request.method == "DELETE":
            self.get(parts[1])
            with self._lock:
                self._files.pop(parts[1], None)
            return _json(200, {"id": parts[1], "object": "file", "deleted": True})
        if len(parts) == 3 and parts[2] == "content" and request.method == "GET":
            stored = self.get(parts[1])
            ctype = "application/jsonl" if stored.purpose.startswith("batch") else "application/octet-stream"
            return HttpResponse(200, stored.content, {"Content-Type": ctype})
        raise not_found(f"Not found: {request.method} {endpoint}")
