"""The runs' state files: what ``batches()`` lists and ``resume()`` / ``cancel()`` read.

One small JSON file per run in ``<cache_dir>-runs/`` (next to the response cache, e.g.
``.kimi-cache-runs/``; clearing the cache leaves it alone). A batch run records its batch
ids, the input file ids, each row's cache key (answers themselves live in the response
cache, so the file stays small: about 70 bytes a row) and the rows that failed. Files are
written atomically (write, then rename) after every change, so a kernel restart at any
point leaves a readable file. Files are untrusted on read: a damaged or foreign file is
skipped, never executed or trusted for more than ids and keys.
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
_RUN_ID = re.compile(r"^rows-[0-9]{8}-[0-9]{6}-[0-9a-f]{6}$")
_KEY = re.compile(r"^[0-9a-f]{64}$")


def runs_dir(cache_dir: str | os.PathLike[str]) -> Path:
    path = Path(cache_dir)
    return path.with_name(path.name + "-runs")


def new_run_id() -> str:
    return time.strftime("rows-%Y%m%d-%H%M%S-", time.gmtime()) + secrets.token_hex(3)


def save_run(directory: Path, run: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{run['run_id']}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"format": FORMAT, **run}, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)


def load_run(directory: Path, run_id: str) -> dict[str, Any] | None:
    if not _RUN_ID.match(run_id or ""):
        return None
    try:
        data = json.loads((directory / f"{run_id}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
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


def _valid(data: Any) -> bool:
    if not isinstance(data, dict) or data.get("format") != FORMAT or not _RUN_ID.match(str(data.get("run_id"))):
        return False
    keys = data.get("keys", [])
    if not isinstance(keys, list) or not all(k is None or (isinstance(k, str) and _KEY.match(k)) for k in keys):
        return False
    batches = data.get("batches", [])
    return isinstance(batches, list) and all(isinstance(b, dict) and isinstance(b.get("id"), str) for b in batches)
