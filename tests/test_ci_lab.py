"""`.ci/lab`, the README's main job: it serves a working copy of the examples (running them
never edits the tracked notebooks), and a second launch skips what is already up to date.

The sync rules are checked on a scratch folder; the launcher itself runs end to end with
``KIMI_LAB_DRY_RUN=1`` (everything but starting JupyterLab) in this environment.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NEEDS = ["jupyterlab>=4.0,<5", "notebook>=7.0,<8", "ipykernel>=6.29", "numpy>=1.26", "pandas>=2.1", "polars>=1.0", "matplotlib>=3.8"]


def _labprep():
    spec = importlib.util.spec_from_file_location("labprep", REPO / ".ci" / "labprep.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_working_copy_is_made_kept_and_refreshed(tmp_path: Path) -> None:
    labprep = _labprep()
    src, dest = tmp_path / "notebooks", tmp_path / "work"
    (src / "data").mkdir(parents=True)
    (src / "harness").mkdir()
    (src / "01-a.ipynb").write_text('{"cells": ["one"]}')
    (src / "data" / "x.png").write_bytes(b"\x89PNG picture")
    (src / "harness" / "replies.json").write_text("{}")
    (src / "conftest.py").write_text("# test harness")

    first = labprep.sync(src, dest, now=0)
    assert sorted(first) == ["01-a.ipynb: copied", "data/x.png: copied"]
    assert (dest / "01-a.ipynb").read_text() == '{"cells": ["one"]}'
    assert not (dest / "harness").exists() and not (dest / "conftest.py").exists()

    # The user runs the notebook (autosave, an inserted cell): the copy changes, the original not.
    (dest / "01-a.ipynb").write_text('{"cells": ["one", "inserted"]}')
    assert labprep.sync(src, dest) == []
    assert (dest / "01-a.ipynb").read_text() == '{"cells": ["one", "inserted"]}'
    assert (src / "01-a.ipynb").read_text() == '{"cells": ["one"]}'

    # The original changes (git pull): the copy is refreshed, the user's edit kept beside it.
    (src / "01-a.ipynb").write_text('{"cells": ["one, improved"]}')
    (src / "02-b.ipynb").write_text('{"cells": ["new"]}')
    changes = labprep.sync(src, dest, now=0)
    assert "02-b.ipynb: copied" in changes
    (kept,) = dest.glob("01-a.edited-*.ipynb")
    assert kept.read_text() == '{"cells": ["one", "inserted"]}'
    assert any(line.startswith("01-a.ipynb: updated; your edited copy is kept as ") for line in changes)
    assert (dest / "01-a.ipynb").read_text() == '{"cells": ["one, improved"]}'

    # An unedited copy of a changed original is simply replaced.
    (src / "data" / "x.png").write_bytes(b"\x89PNG another picture")
    assert labprep.sync(src, dest) == ["data/x.png: updated"]
    assert len(list(dest.glob("data/x.edited-*"))) == 0
    manifest = json.loads((dest / labprep.MANIFEST).read_text())
    assert set(manifest) == {"01-a.ipynb", "02-b.ipynb", "data/x.png"}


def test_an_install_from_another_checkout_is_not_up_to_date(tmp_path: Path) -> None:
    labprep = _labprep()
    (tmp_path / "pyproject.toml").write_text((REPO / "pyproject.toml").read_text())
    assert labprep.installed([], tmp_path) is False  # kimi_jupyter is imported from REPO, not there
    assert labprep.installed(["surely-not-installed-package>=1"], REPO) is False


def test_the_extension_source_hash_follows_the_sources() -> None:
    labprep = _labprep()
    first = labprep.source_hash(REPO)
    assert first == labprep.source_hash(REPO) and len(first) == 64


def _git_status(path: str) -> str:
    return subprocess.run(["git", "status", "--porcelain", "--", path], cwd=REPO, capture_output=True,
                          text=True, timeout=60).stdout


def test_a_second_launch_skips_install_and_build_and_serves_the_copy(tmp_path: Path) -> None:
    labprep = _labprep()
    if sys.prefix == sys.base_prefix or not labprep.installed(NEEDS, REPO):
        pytest.skip("this environment is not set up as .ci/lab sets it up (run .ci/lab once)")
    work = tmp_path / "examples"
    # .ci/lab works in the project's virtual environment: this one (the tests' own).
    env = {**os.environ, "KIMI_VENV": sys.prefix, "KIMI_LAB_DRY_RUN": "1", "KIMI_LAB_NOTEBOOKS": str(work),
           "MOONSHOT_API_KEY": "sk-test-not-used"}
    for name in ("KIMI_LAB_REINSTALL", "KIMI_REBUILD"):
        env.pop(name, None)
    before = _git_status("notebooks")

    def launch() -> str:
        proc = subprocess.run(["bash", ".ci/lab"], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    launch()  # may build the extension if its sources changed since the last build
    out = launch()
    assert "are installed (KIMI_LAB_REINSTALL=1 reinstalls)" in out
    assert "== installing" not in out
    assert "the JupyterLab extension is up to date" in out
    assert f"serving a working copy of notebooks/ in {work}" in out
    names = sorted(p.name for p in work.glob("*.ipynb"))
    assert names == sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb")) and names
    assert (work / "data" / "shapes.png").is_file()
    assert _git_status("notebooks") == before  # nothing in the tracked folder was touched
