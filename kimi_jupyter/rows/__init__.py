"""Rows through Kimi: one prompt template, many rows, live or through Moonshot's Batch API.

    out = kimi_jupyter.map("Sentiment of: {text}", df)                  # live, concurrent
    out = kimi_jupyter.map("Extract: {text}", df, schema={"name": str, "total": float})
    run = kimi_jupyter.map("Classify: {text}", df, engine="batch")      # Batch API
    kimi_jupyter.batches(); kimi_jupyter.resume(run_id); kimi_jupyter.cancel(run_id)

Modules: ``data`` (frames, Series and iterables in; aligned results out), ``template``
(checking and filling the per-row ``{name}`` template), ``schema`` (structured output into
columns), ``turns`` (the one entry where a row meets the Turn), ``live`` (the concurrent
engine), ``limiter`` (adaptive concurrency), ``batch`` and ``batch_api`` (the Batch API
engine), ``state`` (the state file ``batches()`` and ``resume()`` read), ``progress`` (the
widget / text bar), ``run`` (the public functions). Nothing heavy is imported here.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "map": "run",
    "amap": "run",
    "batches": "run",
    "resume": "run",
    "cancel": "run",
    "RowResults": "data",
    "RowsError": "data",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'kimi_jupyter.rows' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(_EXPORTS)
