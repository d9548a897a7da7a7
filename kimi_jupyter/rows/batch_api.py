"""The wire of Moonshot's Batch API, as the batch engine uses it.

* Files go through the package's Files API client (``client/files.py``): the input JSONL
  is uploaded with ``purpose="batch"`` from a file on disk; output and error files are read
  back with ``GET /files/{id}/content`` (JSONL) into a file on disk, bounded by
  ``MAX_DOWNLOAD``.
* ``POST /batches {input_file_id, endpoint: "/v1/chat/completions", completion_window,
  metadata}``, ``GET /batches/{id}``, ``POST /batches/{id}/cancel``.

Every call goes through the client's one HTTP core (`KimiClient.call`): each reply read
with a size bound (1 MB), the response-head and read deadlines, redirects refused, an HTML
page named as such, the package's typed errors with the key redacted, and retries with the
server's ``Retry-After`` (capped). Batch ids come from a state file: they are escaped into
the path (`client.transport.quote`). Only the batch engine calls this module.
"""

from __future__ import annotations

from typing import IO, Any

from ..client.files import FilesClient
from ..client.transport import quote
from ..errors import MalformedResponseError
from ..settings import Settings

__all__ = ["BatchApi", "MAX_DOWNLOAD"]

MAX_DOWNLOAD = 1024 * 1024 * 1024  # the answers to 100 MB of requests stay well under this
_MAX_JSON = 1024 * 1024


class BatchApi:
    def __init__(self, settings: Settings):
        self.settings = settings
        settings.require_key()
        self.files = FilesClient(settings)
        self._core = self.files._core

    def close(self) -> None:
        self.files.close()

    def __enter__(self) -> BatchApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- calls ---------------------------------------------------------------------------
    def upload(self, content: Any, filename: str) -> str:
        """Upload a JSONL file (a binary file object at its start, a path, or bytes)."""
        return self.files.upload(content, "batch", filename=filename).id

    def create(self, file_id: str, window: str, metadata: dict[str, str]) -> dict[str, Any]:
        return self._object(self._core.call("POST", "/batches", limit=_MAX_JSON, json={
            "input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": window,
            "metadata": metadata}))

    def retrieve(self, batch_id: str) -> dict[str, Any]:
        return self._object(self._core.call("GET", f"/batches/{quote(batch_id)}", limit=_MAX_JSON))

    def cancel(self, batch_id: str) -> dict[str, Any]:
        return self._object(self._core.call("POST", f"/batches/{quote(batch_id)}/cancel", limit=_MAX_JSON))

    def content(self, file_id: str) -> bytes:
        return self.files.content(file_id, max_bytes=MAX_DOWNLOAD)

    def download(self, file_id: str, sink: IO[bytes]) -> int:
        """A file's content written to ``sink`` as it arrives (bytes written)."""
        return self.files.download(file_id, sink, max_bytes=MAX_DOWNLOAD)

    @staticmethod
    def _object(body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("id"), str):
            raise MalformedResponseError("The Batch API's reply is not a batch object.")
        return body
