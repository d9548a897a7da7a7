"""The demo's 08-rows notebook, end to end, as a user of `.ci/lab` without a key runs it:
the demo simulator started as `.ci/lab` starts it (its default clock), the notebook run by
nbclient. Its Batch API cell took 546 s on the wall clock; on the demo's clock the whole
notebook runs in well under a minute."""

from __future__ import annotations

import os
import sys
import time
from datetime import datetime
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from .demo_sim import DEMO_KEY, demo_simulator

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
sys.path.insert(0, str(NOTEBOOKS / "harness"))

import nbharness  # noqa: E402  (the folder is not a package)

CELL_TIMEOUT = 60  # a batch on the wall clock (minutes) cannot pass


def _text(output: dict) -> str:
    if output.get("output_type") == "stream":
        return output.get("text", "")
    return str(output.get("data", {}).get("text/plain", ""))


def test_the_demo_08_notebook_runs_end_to_end_well_under_a_minute():
    nb = nbformat.read(NOTEBOOKS / "08-rows.ipynb", as_version=4)
    with demo_simulator() as url:
        env = {k: v for k, v in os.environ.items() if k not in nbharness.CLEARED}
        env.update(nbharness.notebook_env(url, DEMO_KEY), PYTHONPATH=str(REPO))
        client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                                resources={"metadata": {"path": str(NOTEBOOKS)}})
        started = time.monotonic()
        client.execute(env=env)  # raises CellExecutionError on any failing cell
        seconds = time.monotonic() - started
    outputs = ["".join(_text(o) for o in cell.get("outputs", [])) for cell in nb.cells if cell.cell_type == "code"]
    everything = "\n".join(outputs)
    assert "240/240 rows done" in everything  # the batch was collected, every row answered
    assert "agreement with the true category: 100%" in everything
    assert "Traceback" not in everything and "rows failed" in everything
    assert seconds < 60, f"08-rows took {seconds:.0f} s in demo mode"
    (batch,) = [c for c in nb.cells if c.cell_type == "code" and 'engine="batch", into="reply"' in c.source
                and "drafts = " in c.source]
    timing = batch.metadata["execution"]  # nbclient records when each cell started and ended
    took = _moment(timing["shell.execute_reply"]) - _moment(timing["iopub.execute_input"])
    assert took < 10, f"the Batch API cell took {took:.1f} s in demo mode"


def _moment(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
