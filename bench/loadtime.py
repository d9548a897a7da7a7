"""1. ``%load_ext kimi_jupyter``: time added to a bare IPython start.

Every measurement is a fresh interpreter (``_load_child.py``): it creates a terminal
IPython shell, then runs ``%load_ext NAME``; both steps are timed in the child, and the
parent times the whole process. "Added" is the in-child time of ``%load_ext`` (all of its
imports are cold in a fresh process); the baseline is the wall time of a bare IPython start.
Runs are interleaved (bare, ours, bare, ours, ...) and medians are reported.

Bytecode: this environment may set ``PYTHONDONTWRITEBYTECODE``, which would make every run
recompile changed sources; an installed wheel has compiled ``.pyc`` files, so the children
get a private ``PYTHONPYCACHEPREFIX`` (under the bench cache, never the repo) and one
warm-up run per variant fills it. ``IPYTHONDIR`` is private too, so no user profile or
startup file is measured.

Peer: ``jupyter-ai-magics`` in its own venv under the bench cache (full mode only; installed
on first use unless ``--no-install``; "not available" when it cannot be installed in time).
Its added time is measured against a bare start of *its* venv's IPython.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import Log, Result, cache_dir, median, unavailable

CHILD = Path(__file__).with_name("_load_child.py")
TARGET_MS = 50.0
JAI_PACKAGE = "jupyter-ai-magics"
JAI_MODULE = "jupyter_ai_magics"


def _env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONSTARTUP")}
    env["PYTHONPYCACHEPREFIX"] = str(cache / "pycache")
    env["IPYTHONDIR"] = str(cache / "ipython")
    env["MPLBACKEND"] = "Agg"
    for name in ("MOONSHOT_API_KEY", "KIMI_API_KEY", "KIMI_BASE_URL"):
        env.pop(name, None)
    return env


def _child(python: str, ext: str | None, env: dict[str, str], cwd: str) -> dict[str, Any]:
    argv = [python, str(CHILD)] + ([ext] if ext else [])
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    wall = time.perf_counter() - start
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"wall": wall, "shell": None, "ext": None, "error": f"exit {proc.returncode}: {tail[0]}"}
    data = json.loads(lines[-1])
    data["wall"] = wall
    return data


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _has_module(python: Path, module: str) -> bool:
    if not python.exists():
        return False
    probe = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
    return subprocess.run([str(python), "-c", probe], capture_output=True, timeout=60).returncode == 0


def peer_python(install: bool, timeout: float, log: Log) -> tuple[str | None, str]:
    """The python of a venv with jupyter-ai-magics, installing it once if allowed."""
    cache = cache_dir()
    venv = cache / "jai-venv"
    failed = cache / "jai-install-failed.txt"
    python = _venv_python(venv)
    if _has_module(python, JAI_MODULE):
        return str(python), ""
    if failed.exists():
        return None, f"install failed before (delete {failed} to retry)"
    if not install:
        return None, f"not installed (run without --no-install to create {venv})"
    log(f"installing {JAI_PACKAGE} into {venv} (once; at most {timeout:.0f} s)...")
    shutil.rmtree(venv, ignore_errors=True)
    deadline = time.monotonic() + timeout
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=timeout)
        proc = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", JAI_PACKAGE],
            capture_output=True, text=True, timeout=max(1.0, deadline - time.monotonic()),
        )
        if proc.returncode != 0:
            raise RuntimeError((proc.stderr.strip().splitlines() or ["pip failed"])[-1])
        if not _has_module(python, JAI_MODULE):
            raise RuntimeError(f"{JAI_MODULE} does not import after install")
    except subprocess.TimeoutExpired:
        shutil.rmtree(venv, ignore_errors=True)
        return None, f"pip install took over {timeout:.0f} s"
    except (OSError, subprocess.CalledProcessError, RuntimeError) as exc:
        shutil.rmtree(venv, ignore_errors=True)
        failed.write_text(f"{time.ctime()}: {exc}\n")
        return None, f"pip install failed: {exc}"
    return str(python), ""


def run(quick: bool, log: Log, *, peers: bool = True, install: bool = True,
        install_timeout: float = 300.0) -> list[Result]:
    cache = cache_dir()
    env = _env(cache)
    rounds = 2 if quick else 7
    peer_rounds = 4  # the peer takes seconds per start: fewer rounds
    variants: dict[str, tuple[str, str | None]] = {"bare": (sys.executable, None), "ours": (sys.executable, "kimi_jupyter")}
    peer_note = "skipped in quick mode"
    if peers and not quick:
        python, peer_note = peer_python(install, install_timeout, log)
        if python:
            variants["peer_bare"] = (python, None)
            variants["peer"] = (python, JAI_MODULE)
    samples: dict[str, list[dict[str, Any]]] = {k: [] for k in variants}
    with tempfile.TemporaryDirectory(prefix="kimi-bench-load-") as cwd:
        for name, (python, ext) in list(variants.items()):  # warm-up: fills the bytecode cache
            first = _child(python, ext, env, cwd)
            if first.get("error"):
                if name.startswith("peer"):
                    peer_note = f"load failed: {first['error']}"
                    for key in ("peer_bare", "peer"):
                        variants.pop(key, None)
                        samples.pop(key, None)
                    break
                raise RuntimeError(f"%load_ext {ext} failed: {first['error']}")
        for r in range(rounds):
            names = [k for k in variants if not k.startswith("peer") or r < peer_rounds]
            if r % 2:
                names.reverse()
            for name in names:
                python, ext = variants[name]
                samples[name].append(_child(python, ext, env, cwd))
        log(f"load: {rounds} interleaved rounds of {', '.join(variants)}")

    def med(name: str, key: str) -> float:
        return median([s[key] for s in samples[name]]) * 1000

    added = med("ours", "ext")
    bare = med("bare", "wall")
    details = {
        "rounds": rounds,
        "ours_added_ms_samples": [round(s["ext"] * 1000, 1) for s in samples["ours"]],
        "ours_added_ms_min": round(min(s["ext"] for s in samples["ours"]) * 1000, 1),
        "ours_added_cpu_ms": round(med("ours", "ext_cpu"), 1),
        "ours_added_cpu_ms_samples": [round(s["ext_cpu"] * 1000, 1) for s in samples["ours"]],
        "bare_start_wall_ms": round(bare, 1),
        "ours_start_wall_ms": round(med("ours", "wall"), 1),
        "wall_difference_ms": round(med("ours", "wall") - bare, 1),
        "bare_shell_create_ms": round(med("bare", "shell"), 1),
    }
    rows = [Result("load_ext kimi_jupyter: added ms", added, bare, "ms", "bare IPython start",
                   f"< {TARGET_MS:.0f} ms added", added < TARGET_MS, details=details)]
    peer_name = "load_ext: kimi vs jupyter-ai-magics"
    if "peer" in samples:
        peer_added = med("peer", "ext")
        rows.append(Result(peer_name, added, peer_added, "ms", "jupyter-ai-magics added", "faster (< 1x)",
                           added < peer_added,
                           details={"peer_added_ms_samples": [round(s["ext"] * 1000, 1) for s in samples["peer"]],
                                    "peer_added_cpu_ms": round(med("peer", "ext_cpu"), 1),
                                    "peer_bare_start_wall_ms": round(med("peer_bare", "wall"), 1)}))
    else:
        rows.append(unavailable(peer_name, peer_note, "jupyter-ai-magics added", "faster (< 1x)"))
    return rows
