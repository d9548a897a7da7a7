"""The wheel ships the prebuilt JupyterLab extension: installed into a fresh virtual
environment (no node there), `jupyter labextension list` shows kimi-jupyter enabled and OK.

Building the wheel reuses an existing build of the extension (hatch-jupyter-builder's
``skip-if-exists``), so node is only needed when ``.ci/build-labextension`` has not run.
The fresh environment installs the wheel plus jupyterlab (for the listing) from the pip
cache/index; the test takes about a minute.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BUILT = REPO / "kimi_jupyter" / "labextension" / "static" / "style.js"
SHARE = "share/jupyter/labextensions/kimi-jupyter/"

pytestmark = [
    pytest.mark.skipif(not BUILT.exists() and shutil.which("node") is None,
                       reason="the lab extension is not built and node is missing (run .ci/build-labextension)"),
    pytest.mark.skipif(os.environ.get("KIMI_SKIP_WHEEL_TEST") == "1", reason="KIMI_SKIP_WHEEL_TEST=1"),
]


def _run(cmd: list[str], cwd: Path | None = None, timeout: float = 600, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{output[-4000:]}"
    return output


def _build_wheel(dist: Path) -> Path:
    in_this_env = all(importlib.util.find_spec(m) for m in ("hatchling", "hatch_jupyter_builder", "jupyterlab"))
    isolation = ["--no-build-isolation"] if in_this_env else []
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", *isolation,
          "-w", str(dist), str(REPO)])
    (wheel,) = dist.glob("kimi_jupyter-*.whl")
    return wheel


@pytest.mark.timeout(900)
def test_wheel_installs_the_prebuilt_lab_extension_in_a_fresh_venv(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path / "dist")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    data = [n.split(".data/data/", 1)[1] for n in names if ".data/data/" in n]
    assert SHARE + "package.json" in data
    assert SHARE + "install.json" in data
    assert "share/jupyter/lab/settings/overrides.d/kimi-jupyter.json" in data  # no news toast
    assert any(re.match(re.escape(SHARE) + r"static/remoteEntry\.[0-9a-f]+\.js$", n) for n in data)
    assert not [n for n in names if n.startswith("kimi_jupyter/labextension/")], "built files shipped twice"

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    _run([str(bindir / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
          str(wheel), "jupyterlab>=4.0,<5"])
    # The venv's own `jupyter` (its PATH first), as a user who activated it would run it.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "PYTHON"))}
    env.update(PATH=f"{bindir}{os.pathsep}{env.get('PATH', '')}", VIRTUAL_ENV=str(venv))
    listing = _run([str(bindir / "jupyter"), "labextension", "list"], cwd=tmp_path, env=env)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", listing)
    assert re.search(r"kimi-jupyter v\S+ enabled OK \(python, kimi-jupyter\)", plain), plain
    assert str(venv) in plain  # found in the fresh environment, not in this one
