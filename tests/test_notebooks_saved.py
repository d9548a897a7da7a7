"""The saved example notebooks show the scripted answers a reader should see."""

import json
from pathlib import Path

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_no_saved_answer_is_the_simulators_generic_stand_in():
    # The stand-in reply means a scripted rule in notebooks/harness/replies.json stopped matching.
    assert NOTEBOOKS
    for path in NOTEBOOKS:
        assert "no real model was called" not in path.read_text(encoding="utf-8"), path.name


def test_saved_notebooks_hold_no_widget_views():
    for path in NOTEBOOKS:
        outputs = [o for c in json.loads(path.read_text(encoding="utf-8"))["cells"] for o in c.get("outputs", [])]
        assert all("application/vnd.jupyter.widget-view+json" not in o.get("data", {}) for o in outputs), path.name
