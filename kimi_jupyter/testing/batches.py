"""Moonshot's Batch API in the simulator: ``/v1/batches`` create, retrieve, list, cancel.

What the real service does (and the client relies on):

* input: a JSONL file uploaded with ``purpose="batch"``, one request a line:
  ``{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body": {...}}``;
  ``custom_id`` unique in the file, one model per file, at most 100 MB;
* ``POST /batches {input_file_id, endpoint: "/v1/chat/completions", completion_window
  ("12h".."7d"), metadata?}``; ``GET /batches/{id}``; ``GET /batches?limit&after``;
  ``POST /batches/{id}/cancel``;
* status: ``validating`` -> ``in_progress`` -> ``finalizing`` -> ``completed``, or
  ``failed`` (validation; ``errors.data`` lists the bad lines), ``expired`` (the window
  passed: finished requests are in the output file, the rest in the error file with code
  ``batch_expired``), ``cancelling`` -> ``cancelled``;
* ``request_counts {total, completed, failed}``; ``output_file_id`` / ``error_file_id``
  name JSONL files of ``{"id", "custom_id", "response": {"status_code", "request_id",
  "body"}, "error"}`` lines, in no particular order (join by ``custom_id``).

The simulator's clock runs ``speed`` times faster than the wall clock (``KimiSimulator(
batch_speed=3600)``: an hour a second), and a batch moves on when it is looked at (every
API call), so tests finish in seconds and need no background thread. Each request runs
through the same chat handler as a live request (replies, rules and faults apply; the
request is recorded with an ``X-Kimi-Batch`` header and is not rate limited). Faults for
tests: ``sim.batch_fault("fail_validation" | "expire" | "corrupt_output")`` applies to
the next batch created.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import invalid_request, not_found
from .files import FileStore, StoredFile
from .server import HttpRequest, HttpResponse
from .state import Headers

__all__ = ["BatchService", "BatchTiming", "BATCH_FAULTS", "DEMO_BATCH_SPEED"]

BATCH_FAULTS = ("fail_validation", "expire", "corrupt_output")
_WINDOW = re.compile(r"^(\d+)([hd])$")
TERMINAL = ("completed", "failed", "expired", "cancelled")
#: The clock of the demo (``python -m kimi_jupyter.testing``) and of the example notebooks'
#: checks: an hour a second, so a batch of a few hundred rows (minutes on the simulated
#: clock) is done in well under a second of real time.
DEMO_BATCH_SPEED = 3600.0


@dataclass(frozen=True)
class BatchTiming:
    """Simulated seconds: validation, each request (one at a time), finalizing."""

    validating: float = 30.0
    per_request: float = 2.0
    finalizing: float = 30.0


@dataclass
class _Batch:
    id: str
    input_file_id: str
    window: float
    window_text: str
    metadata: dict[str, Any] | None
    created_real: float
    created_at: int
    lines: list[dict[str, Any]] = field(default_factory=list)
    fault: str | None = None
    status: str = "validating"
    errors: list[dict[str, Any]] = field(default_factory=list)
    done: int = 0
    failed: int = 0
    outputs: list[str] = field(default_factory=list)
    error_lines: list[str] = field(default_factory=list)
    output_file_id: str | None = None
    error_file_id: str | None = None
    cancel_at: float | None = None
    times: dict[str, int] = field(default_factory=dict)


def _json(status: int, body: Any) -> HttpResponse:
    return HttpResponse(status, json.dumps(body, ensure_ascii=False).encode(), {"Content-Type": "application/json"})


class BatchService:
    def __init__(self, files: FileStore, chat: Callable[[HttpRequest], HttpResponse], prefix: str,
                 speed: float = 1.0, timing: BatchTiming | None = None):
        self.files = files
        self.chat = chat
        self.prefix = prefix  # e.g. "/v1": where the chat endpoint is routed
        self.speed = float(speed)
        self.timing = timing or BatchTiming()
        self._batches: dict[str, _Batch] = {}
        self._ids = itertools.count(1)
        self._faults: deque[str] = deque()
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self._batches.clear()
            self._faults.clear()

    def add_fault(self, kind: str) -> None:
        if kind not in BATCH_FAULTS:
            raise ValueError(f"unknown batch fault {kind!r}; expected one of {BATCH_FAULTS}")
        with self._lock:
            self._faults.append(kind)

    # -- HTTP --------------------------------------------------------------------------
    def handle(self, request: HttpRequest, endpoint: str, body: Any, auth: str | None) -> HttpResponse:
        path = endpoint.strip("/").split("/")
        with self._lock:
            if path == ["batches"] and request.method == "POST":
                return _json(200, self._public(self._create(body)))
            if path == ["batches"] and request.method == "GET":
                return self._list(request.path)
            if len(path) == 2 and request.method == "GET":
                batch = self._get(path[1])
                self._advance(batch, auth)
                return _json(200, self._public(batch))
            if len(path) == 3 and path[2] == "cancel" and request.method == "POST":
                batch = self._get(path[1])
                self._advance(batch, auth)
                if batch.status in ("validating", "in_progress", "finalizing"):
                    batch.status = "cancelling"
                    batch.cancel_at = self._now(batch)
                    batch.times["cancelling_at"] = int(time.time())
                return _json(200, self._public(batch))
        raise not_found(f"Not found: {request.method} {endpoint}")

    def _get(self, batch_id: str) -> _Batch:
        batch = self._batches.get(batch_id)
        if batch is None:
            raise not_found(f"Not found the batch {batch_id}")
        return batch

    def _list(self, path: str) -> HttpResponse:
        from urllib.parse import parse_qs, urlsplit

        query = parse_qs(urlsplit(path).query)
        limit = max(1, min(100, int((query.get("limit") or ["20"])[0] or 20)))
        after = (query.get("after") or [None])[0]
        ordered = sorted(self._batches.values(), key=lambda b: b.id, reverse=True)
        if after:
            ordered = [b for b in ordered if b.id < after]
        page = ordered[:limit]
        data = [self._public(b) for b in page]
        return _json(200, {"object": "list", "data": data, "first_id": page[0].id if page else None,
                           "last_id": page[-1].id if page else None, "has_more": len(ordered) > limit})

    def _create(self, body: Any) -> _Batch:
        if not isinstance(body, dict):
            raise invalid_request("Invalid request: the body must be a JSON object")
        file_id = body.get("input_file_id")
        if not isinstance(file_id, str):
            raise invalid_request("Invalid request: input_file_id is required")
        if body.get("endpoint") != "/v1/chat/completions":
            raise invalid_request("Invalid request: endpoint must be /v1/chat/completions")
        window_text = str(body.get("completion_window") or "")
        match = _WINDOW.match(window_text)
        hours = (int(match.group(1)) * (24 if match.group(2) == "d" else 1)) if match else 0
        if not 12 <= hours <= 168:
            raise invalid_request("Invalid request: completion_window must be between 12h and 7d, e.g. '24h'")
        stored = self.files.require(file_id)
        if stored.purpose != "batch":
            raise invalid_request(f"Invalid request: file {file_id} was not uploaded with purpose 'batch'")
        fault = self._faults.popleft() if self._faults else None
        batch = _Batch(f"batch_sim{next(self._ids):06d}", file_id, hours * 3600.0, window_text,
                       body.get("metadata") if isinstance(body.get("metadata"), dict) else None,
                       time.monotonic(), int(time.time()), fault=fault)
        batch.lines, batch.errors = _validate(stored)
        if fault == "fail_validation" and not batch.errors:
            batch.errors = [{"code": "invalid_request", "line": 1,
                             "message": "The request on line 1 has an invalid body (injected by the simulator)"}]
        self._batches[batch.id] = batch
        return batch

    # -- the simulated clock -------------------------------------------------------------
    def _now(self, batch: _Batch) -> float:
        return (time.monotonic() - batch.created_real) * self.speed

    def _advance(self, batch: _Batch, auth: str | None) -> None:
        if batch.status in TERMINAL:
            return
        now, t = self._now(batch), self.timing
        if now < t.validating and batch.status == "validating":
            return
        if batch.errors:
            batch.status = "failed"
            batch.times["failed_at"] = int(time.time())
            return
        if batch.status == "validating":
            batch.status = "in_progress"
            batch.times["in_progress_at"] = int(time.time())
        window_end = batch.window
        if batch.fault == "expire":  # the window closes when half of the requests have run
            window_end = t.validating + (len(batch.lines) // 2) * t.per_request + t.per_request / 2
        horizon = min(now, batch.cancel_at if batch.cancel_at is not None else now, window_end)
        due = min(len(batch.lines), int(max(0.0, horizon - t.validating) / max(t.per_request, 1e-9)))
        while batch.done + batch.failed < due:
            self._run_one(batch, batch.lines[batch.done + batch.failed], auth)
        finished = batch.done + batch.failed
        if batch.status == "cancelling":
            self._close(batch, "cancelled", "batch_cancelled", "the batch was cancelled")
        elif finished < len(batch.lines) and now >= window_end:
            self._close(batch, "expired", "batch_expired", "the batch expired before this request ran")
        elif finished == len(batch.lines):
            ends = t.validating + len(batch.lines) * t.per_request + t.finalizing
            if now < ends:
                if batch.status != "finalizing":
                    batch.status = "finalizing"
                    batch.times["finalizing_at"] = int(time.time())
            else:
                self._close(batch, "completed", "", "")

    def _run_one(self, batch: _Batch, line: dict[str, Any], auth: str | None) -> None:
        body = dict(line["body"])
        body["stream"] = False
        headers = Headers({"Content-Type": "application/json", "X-Kimi-Batch": batch.id,
                           **({"Authorization": auth} if auth else {})})
        raw = json.dumps(body).encode()
        response = self.chat(HttpRequest("POST", self.prefix + "/chat/completions", headers, raw, len(raw)))
        request_id = f"req_{batch.id}_{batch.done + batch.failed:06d}"
        try:
            answer = json.loads(response.body or b"null")
        except ValueError:
            answer = None
        if response.status == 200:
            batch.done += 1
            batch.outputs.append(json.dumps({
                "id": request_id, "custom_id": line["custom_id"],
                "response": {"status_code": 200, "request_id": request_id, "body": answer}, "error": None},
                ensure_ascii=False))
        else:
            batch.failed += 1
            error = (answer or {}).get("error") if isinstance(answer, dict) else None
            batch.error_lines.append(json.dumps({
                "id": request_id, "custom_id": line["custom_id"],
                "response": {"status_code": response.status, "request_id": request_id, "body": answer},
                "error": {"code": (error or {}).get("type", "server_error"),
                          "message": (error or {}).get("message", "")}}, ensure_ascii=False))

    def _close(self, batch: _Batch, status: str, code: str, message: str) -> None:
        finished = batch.done + batch.failed
        for line in batch.lines[finished:]:
            batch.error_lines.append(json.dumps({"id": None, "custom_id": line["custom_id"], "response": None,
                                                 "error": {"code": code, "message": message}}))
        if batch.outputs:
            content = "\n".join(batch.outputs) + "\n"
            if batch.fault == "corrupt_output":
                half = len(batch.outputs[0]) // 2
                content = batch.outputs[0][:half] + "\n" + "\n".join(batch.outputs[1:]) + "\n"
            batch.output_file_id = self._store(batch, content, "output").id
        if batch.error_lines:
            batch.error_file_id = self._store(batch, "\n".join(batch.error_lines) + "\n", "error").id
        batch.status = status
        batch.times[f"{status}_at"] = int(time.time())
        batch.outputs, batch.error_lines = [], []

    def _store(self, batch: _Batch, content: str, kind: str) -> StoredFile:
        return self.files.add(content.encode("utf-8"), f"{batch.id}_{kind}.jsonl", "batch")

    def _public(self, batch: _Batch) -> dict[str, Any]:
        expired = batch.status == "expired"
        failed_expired = len(batch.lines) - batch.done - batch.failed if expired else 0
        return {
            "id": batch.id, "object": "batch", "endpoint": "/v1/chat/completions",
            "errors": {"object": "list", "data": batch.errors} if batch.errors else None,
            "input_file_id": batch.input_file_id, "completion_window": batch.window_text,
            "status": batch.status, "output_file_id": batch.output_file_id,
            "error_file_id": batch.error_file_id, "created_at": batch.created_at,
            "expires_at": batch.created_at + int(batch.window / max(self.speed, 1e-9)),
            **batch.times,
            "request_counts": {"total": len(batch.lines), "completed": batch.done,
                               "failed": batch.failed + failed_expired},
            "metadata": batch.metadata,
        }


def _validate(stored: StoredFile) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The requests of a batch input file, and the validation errors (empty when valid)."""
    lines: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    models: set[str] = set()
    for number, raw in enumerate(stored.data.decode("utf-8", "replace").splitlines(), 1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw)
        except ValueError:
            errors.append({"code": "invalid_json_line", "line": number, "message": f"line {number} is not JSON"})
            continue
        problem = None
        if not isinstance(item, dict) or not isinstance(item.get("custom_id"), str):
            problem = "custom_id is required"
        elif item["custom_id"] in seen:
            problem = f"custom_id {item['custom_id']!r} is not unique"
        elif item.get("method") != "POST" or item.get("url") != "/v1/chat/completions":
            problem = "method must be POST and url /v1/chat/completions"
        elif not isinstance(item.get("body"), dict) or not isinstance(item["body"].get("model"), str):
            problem = "body with a model is required"
        if problem:
            errors.append({"code": "invalid_request", "line": number, "message": problem})
            continue
        seen.add(item["custom_id"])
        models.add(item["body"]["model"])
        lines.append(item)
    if len(models) > 1:
        errors.append({"code": "mixed_models", "line": None,
                       "message": f"a batch takes one model, this file has {len(models)}"})
    if not lines and not errors:
        errors.append({"code": "empty_file", "line": None, "message": "the input file has no requests"})
    return lines, errors

