"""The runs' state files: what ``batches()`` lists and ``resume()`` / ``cancel()`` read.

One small JSON file per run in ``<cache_dir>-runs/`` (next to the response cache, e.g.
``.kimi-cache-runs/``; clearing the cache leaves it alone). A batch run records its batch
ids, the input file ids, each row's cache key (answers themselves live in the response
cache, so the file stays small: about 70 bytes a row) and the rows that failed. Files are
written atomically after every change (`kimi_jupyter.safe_write`: a fresh temporary file
opened with ``O_EXCL | O_NOFOLLOW`` in the same folder, then a rename), so a kernel restart
at any point leaves a readable file and a link planted next to it is never written through.
Files are untrusted on read: each is read up to `MAX_STATE_BYTES` and checked field by field
(types, sizes, rows at most `MAX_ROWS`); a damaged or foreign file is skipped by
``batches()`` and refused by ``resume()`` / ``cancel()`` with one line, never trusted for more
than ids and keys.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from pathlib import Path
from typing import Any

__all__ = ["runs_dir", "new_run_id", "save_run", "load_run", "list_runs_on_disk"]

FORMAT = 1
MAX_ROWS = 5_000_000
MAX_STATE_BYTES = 512 * 1024 * 1024  # 5 million rows at about 70 bytes a row, and room
_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$")
_RUN_ID = re.compile(r"^rows-[0-9]{8}-[0-9]{6}-[0-9a-f]{6}$")
_KEY = re.compile(r"^[0-9a-f]{64}$")


def runs_dir(cache_dir: str | os.PathLike[str]) -> Path:
    path = Path(cache_dir)
    return path.with_name(path.name + "-runs")


def new_run_id() -> str:
    return time.strftime("rows-%Y%m%d-%H%M%S-", time.gmtime()) + secrets.token_hex(3)


def save_run(directory: Path, run: dict[str, Any]) -> None:
    from ..safe_write import atomic_write

    directory.mkdir(parents=True, exist_ok=True)
    atomic_write(directory / f"{run['run_id']}.json", json.dumps({"format": FORMAT, **run}, ensure_ascii=False))


def load_run(directory: Path, run_id: str) -> dict[str, Any] | None:
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
        return None
    path = directory / f"{run_id}.json"
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_STATE_BYTES:
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return data if _valid(data) else None


def list_runs_on_disk(directory: Path) -> list[dict[str, Any]]:
    runs = []
    if directory.is_dir():
        for path in directory.glob("rows-*.json"):
            run = load_run(directory, path.stem)
            if run is not None:
                runs.append(run)
    return sorted(runs, key=lambda r: r["run_id"], reverse=True)


def _text(value: Any, limit: int = 10_000, none: bool = False) -> bool:
    return (none and value is None) or (isinstance(value, str) and len(value) <= limit)


def _count(value: Any, top: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= top


def _valid_batch(batch: Any, rows: int) -> bool:
    if not isinstance(batch, dict) or not (isinstance(batch.get("id"), str) and _ID.match(batch["id"])):
        return False
    for name in ("input_file_id", "output_file_id", "error_file_id"):
        value = batch.get(name)
        if value is not None and not (isinstance(value, str) and _ID.match(value)):
            return False
    positions = batch.get("rows", [])
    counts = batch.get("request_counts")
    return (isinstance(positions, list) and all(_count(p, rows - 1) for p in positions)
            and _text(batch.get("status", ""), 40) and (counts is None or isinstance(counts, dict)))


def _valid(data: Any) -> bool:
    """Every field a run's state file may hold, with its type and bounds (a planted file with
    ``rows: 10**10`` or a string where a list belongs is refused here, not deep in resume)."""
    if not isinstance(data, dict) or data.get("format") != FORMAT or not _RUN_ID.match(str(data.get("run_id"))):
        return False
    if not all(name in data for name in ("rows", "keys", "errors", "batches", "collected")):
        return False
    rows = data.get("rows")
    if not _count(rows, MAX_ROWS):
        return False
    keys = data.get("keys", [])
    if not isinstance(keys, list) or len(keys) != rows or not all(
            k is None or (isinstance(k, str) and _KEY.match(k)) for k in keys):
        return False
    errors = data.get("errors", {})
    if not isinstance(errors, dict) or not all(
            isinstance(k, str) and k.isdigit() and int(k) < rows and _text(v) for k, v in errors.items()):
        return False
    batches = data.get("batches", [])
    if not isinstance(batches, list) or len(batches) > 100_000 or not all(_valid_batch(b, rows) for b in batches):
        return False
    texts = ("engine", "created", "provider", "model", "window")
    if not all(_text(data.get(name, ""), 200) for name in texts) or not _text(data.get("template", ""), 10_000_000):
        return False
    return (_text(data.get("into"), 200, none=True) and isinstance(data.get("collected", False), bool)
            and (data.get("schema") is None or isinstance(data.get("schema"), dict)))
