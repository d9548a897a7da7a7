"""The wire of Moonshot's Batch API, as the batch engine uses it.

* Files go through the package's Files API client (``client/files.py``): the input JSONL
  is uploaded with ``purpose="batch"`` from a file on disk; output and error files are read
  back with ``GET /files/{id}/content`` (JSONL) into a file on disk, bounded by
  ``MAX_DOWNLOAD``.
* ``POST /batches {input_file_id, endpoint: "/v1/chat/completions", completion_window,
  metadata}``, ``GET /batches/{id}``, ``POST /batches/{id}/cancel``.

Every batch reply is read with a size bound (1 MB) and a timeout from the settings; HTTP errors become the package's typed errors, with the
key redacted. Only the batch engine calls this module; chat requests never come here.
"""

from __future__ import annotations

import json
from typing import IO, Any

import httpx

from ..errors import KimiError, MalformedResponseError, error_from_response, redact
from ..settings import Settings

__all__ = ["BatchApi", "MAX_DOWNLOAD"]

MAX_DOWNLOAD = 1024 * 1024 * 1024  # the answers to 100 MB of requests stay well under this
_MAX_JSON = 1024 * 1024


class BatchApi:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._key = settings.require_key()
        self.base = settings.api_base.rstrip("/")
        timeout = httpx.Timeout(connect=settings.timeout_connect, read=min(settings.timeout_read, 120.0),
                                write=300.0, pool=30.0)
        self.http = httpx.Client(timeout=timeout, headers={"Authorization": f"Bearer {self._key}"})
        from ..client.files import FilesClient

        self.files = FilesClient(settings, http=self.http)

    def close(self) -> None:
        self.files.close()
        self.http.close()

    def __enter__(self) -> BatchApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- calls ---------------------------------------------------------------------------
    def upload(self, content: Any, filename: str) -> str:
        """Upload a JSONL file (a binary file object at its start, a path, or bytes)."""
        return self.files.upload(content, "batch", filename=filename).id

    def create(self, file_id: str, window: str, metadata: dict[str, str]) -> dict[str, Any]:
        return self._object(self._send("POST", "/batches", body={
            "input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": window,
            "metadata": metadata}))

    def retrieve(self, batch_id: str) -> dict[str, Any]:
        return self._object(self._send("GET", f"/batches/{batch_id}"))

    def cancel(self, batch_id: str) -> dict[str, Any]:
        return self._object(self._send("POST", f"/batches/{batch_id}/cancel"))

    def content(self, file_id: str) -> bytes:
        return self.files.content(file_id, max_bytes=MAX_DOWNLOAD)

    def download(self, file_id: str, sink: IO[bytes]) -> int:
        """A file's content written to ``sink`` as it arrives (bytes written)."""
        return self.files.download(file_id, sink, max_bytes=MAX_DOWNLOAD)

    # -- plumbing ------------------------------------------------------------------------
    def _object(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("id"), str):
            raise MalformedResponseError("The Batch API's reply is not a batch object.")
        return body

    def _send(self, method: str, path: str, body: Any = None) -> Any:
        from ..client.egress import seal_json
        from ..secrets import secrets_of

        kw: dict[str, Any] = {}
        if body is not None:  # the one egress
            kw = {"content": seal_json(body, secrets_of(self.settings)), "headers": {"Content-Type": "application/json"}}
        raw = self._read(method, path, _MAX_JSON, **kw)
        try:
            return json.loads(raw)
        except ValueError:
            raise MalformedResponseError(f"The reply to {method} {path} was not JSON.") from None

    def _read(self, method: str, path: str, limit: int, **kw: Any) -> bytes:
        try:
            with self.http.stream(method, self.base + path, **kw) as resp:
                chunks: list[bytes] = []
                size = 0
                for chunk in resp.iter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise MalformedResponseError(f"The reply to {method} {path} is over {limit:,} bytes.")
                    chunks.append(chunk)
                data = b"".join(chunks)
                if resp.status_code >= 400:
                    raise error_from_response(resp.status_code, data.decode("utf-8", "replace"), resp.headers,
                                              base_url=self.settings.base_url, secret=self._key)
                return data
        except httpx.HTTPError as exc:
            raise KimiError(f"The Batch API request {method} {path} failed: "
                            f"{redact(str(exc) or type(exc).__name__, self._key)}") from None
