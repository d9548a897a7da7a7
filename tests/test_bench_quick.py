"""The benchmarks still run: ``python -m bench.run --quick`` end to end (no timed assertions).

Timings are machine-dependent and belong in the benchmark table, never in a test; this
only checks that every benchmark produces its rows with numbers and a well-formed table.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

EXPECTED = (
    "load_ext kimi_jupyter: added ms",
    "stream 2k chunks: ours vs raw httpx",
    "%%kimi widget: wall vs stream duration",
    "%%kimi markdown: wall vs stream duration",
    "frame 50,000x50 summary: time",
    "frame 50,000x50 summary: tokens",
    "frame 50,000x50 summary: peak memory",
    "live Markdown 10 repaints, 20 kB answer",
    "SSE line 10 MiB vs 2 MiB: read time",
    "gzip bomb -> 128 MiB: peak RSS growth",
    "rows 100 live x32: wall",
    "rows 100 from the cache: wall",
    "rows 100 live: peak memory",
    "rows 100 batch: submit + collect",
    "rows 100 batch: peak memory",
    "video 5 MB: second reference vs first",
    "video 5 MB: peak memory sending via Files API",
    "%%kimi turn 30: ours vs raw re-send",
    "%%kimi turn 30 vs turns 11-15: ratio growth",
    "ask(history=True) turn 30: ours vs raw re-send",
    "8 concurrent aask x 200 chunks",
    "image turn after 5 image turns",
    "memory after 5 turns with 500 kB photos",
    "displayed figure 6x4 in @100 -> image part",
    "first %%kimi cell (typed after load_ext)",
    "first %%kimi cell (Run All)",
)


@pytest.mark.timeout(600)
def test_quick_benchmarks_run(tmp_path):
    out = tmp_path / "bench.json"
    env = {**os.environ, "KIMI_BENCH_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--no-peers", "--silent", "--json", str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=540,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(out.read_text())
    assert data["mode"] == "quick"
    assert data["failures"] == {}
    assert data["machine"]["cpu"] and data["machine"]["python"]
    names = [r["name"] for r in data["results"]]
    for name in EXPECTED:
        assert name in names, names
    for row in data["results"]:
        if row["note"].startswith("not available"):
            continue  # an optional peer (openai, jupyter-ai-magics) that is not installed
        assert row["ours"] is not None and row["ours"] >= 0, row
        assert row["baseline"] is not None and row["baseline"] > 0, row
        assert row["passed"] in (True, False, None), row
    # the printed table: a header, a rule, one line per result, and the machine line
    assert "machine:" in proc.stdout
    assert proc.stdout.count("\n") >= len(data["results"]) + 4
    for name in EXPECTED:
        assert name in proc.stdout
