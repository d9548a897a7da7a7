"""5. The first ``%%kimi`` cell of a fresh kernel: what a user waits for before the answer.

Every sample is a fresh ipykernel (this interpreter, bytecode cached under the bench cache as
in an installed wheel, so no sample recompiles sources) against the package's simulator in
its own process, answering a short two-chunk reply. Wall time is execute request -> kernel
idle, measured by the client.

* first %%kimi cell, Run All: ``%load_ext kimi_jupyter`` and, at once, the first
  ``%%kimi --display widget`` cell (the live ipywidgets view, as in JupyterLab);
* first %%kimi cell, typed: the same after a 1.5 s pause, as when the user types the prompt
  (the extension imports the rest in the background meanwhile: ``kimi_jupyter/warmup.py``);
* cold, for reference: the Run All case with ``KIMI_WARMUP=0``.

Baseline: in the same kind of fresh kernel, the first cell that makes the same request with a
raw httpx loop (it imports httpx itself), measured in the same run, interleaved. Medians.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

from .common import API_KEY, Log, Result, cache_dir, chat_payload, median, reply_rule, simulator_process
from .kernel import _errors, _execute, _kernel

TARGET_RATIO = 1.5  # the typed first cell, against the raw httpx first cell
PAUSE = 1.5
KIMI_CELL = "%%kimi --display widget\nSummarise the sales data."
RAW_CELL = """\
import httpx as _h, json as _j
_parts = []
with _h.stream("POST", {url!r}, json={payload!r}, headers={{"Authorization": "Bearer {key}"}}, timeout=60) as _r:
    for _line in _r.iter_lines():
        if _line.startswith("data:") and _line[5:].strip() != "[DONE]":
            _c = _j.loads(_line[5:]).get("choices")
            if _c and (_c[0].get("delta") or {{}}).get("content"):
                _parts.append(_c[0]["delta"]["content"])
print("".join(_parts))
"""


def _env(base_url: str, warmup: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "KIMI_API_KEY")}
    env.update(
        KIMI_BASE_URL=base_url, MOONSHOT_API_KEY=API_KEY, KIMI_PROVIDER="moonshot",
        PYTHONPYCACHEPREFIX=str(cache_dir() / "pycache"), MPLBACKEND="Agg",
        KIMI_WARMUP="1" if warmup else "0",
    )
    return env


def _sample(kind: str, base_url: str, cwd: str) -> float:
    with _kernel(_env(base_url, warmup=kind != "cold"), cwd) as client:
        _execute(client, "pass")  # the kernel is up and has run a cell
        if kind == "raw":
            url = base_url.rstrip("/") + "/chat/completions"
            cell = RAW_CELL.format(url=url, payload=chat_payload(), key=API_KEY)
        else:
            _, status, messages = _execute(client, "%load_ext kimi_jupyter")
            if status != "ok":
                raise RuntimeError(f"%load_ext failed: {_errors(messages)}")
            if kind == "typed":
                time.sleep(PAUSE)
            cell = KIMI_CELL
        wall, status, messages = _execute(client, cell)
        if status != "ok" or _errors(messages):
            raise RuntimeError(f"the first {kind} cell failed: {_errors(messages) or status}")
        return wall


def run(quick: bool, log: Log) -> list[Result]:
    rounds = 1 if quick else 3
    kinds = ("raw", "runall", "typed") if quick else ("raw", "runall", "typed", "cold")
    samples: dict[str, list[float]] = {k: [] for k in kinds}
    with simulator_process([reply_rule(["Sales rose ", "in March."])]) as base_url, \
            tempfile.TemporaryDirectory(prefix="kimi-bench-first-") as cwd:
        if not quick:
            _sample("cold", base_url, cwd)  # fills the bytecode cache; not counted
        for r in range(rounds):
            for kind in kinds if r % 2 == 0 else tuple(reversed(kinds)):
                samples[kind].append(_sample(kind, base_url, cwd))
    log(f"first cell: {rounds} interleaved rounds of {', '.join(kinds)}, a fresh kernel each")
    ms = {k: median(v) * 1000 for k, v in samples.items()}
    details: dict[str, Any] = {f"{k}_ms_samples": [round(x * 1000, 1) for x in v] for k, v in samples.items()}
    details["pause_s"] = PAUSE
    typed_ratio = ms["typed"] / ms["raw"]
    return [
        Result("first %%kimi cell (typed after load_ext)", ms["typed"], ms["raw"], "ms", "raw httpx first cell",
               f"<= {TARGET_RATIO:g}x", typed_ratio <= TARGET_RATIO, details=details),
        Result("first %%kimi cell (Run All)", ms["runall"], ms["raw"], "ms", "raw httpx first cell", "info", None,
               details={"cold_no_warmup_ms": round(ms["cold"], 1) if "cold" in ms else None}),
    ]
