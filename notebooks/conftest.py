"""nbval harness for the example notebooks: ``python -m pytest --nbval notebooks/``.

* Before any kernel starts, the bundled simulator is started with ``replies.json`` and the
  environment points at it (nbval's kernels inherit this process's environment); every
  notebook starts from a freshly loaded script. See ``harness/nbharness.py``.
* ``harness/sanitize.cfg`` is used unless ``--nbval-sanitize-with`` names another file.
* nbval 0.11 ignores ``update_display_data`` messages: it would compare a cell's *first*
  display (the live widget view of a Kimi turn, or its first Markdown frame) with the saved
  output, which Jupyter and nbclient show *after* the updates (the turn's final static
  bundle). `_fold_display_updates` makes nbval see what Jupyter shows: it holds the
  messages of a cell that opened a display with a ``display_id`` until the cell is idle,
  applies each update to its display, and hands the messages on.
* nbval 0.11 executes cells with ``store_history=False``, so ``execution_count`` never
  advances and ``In``/``Out`` stay empty; a notebook frontend (JupyterLab, Notebook, VS Code,
  nbclient) stores history. `_execute_like_a_frontend` does the same, so ``%%kimi --plot``
  (the plot of the previous execution) and ``{Out[n]}`` behave as they do for a reader.
"""

from __future__ import annotations

import copy
import sys
from collections import deque
from pathlib import Path
from queue import Empty
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "harness"))

import nbharness as harness  # noqa: E402  (the folder is not a package)

collect_ignore_glob = [".ipynb_checkpoints/*", "data/*", "harness/*"]

_STATE: dict[str, Any] = {}


def _nbval_active(config: Any) -> bool:
    option = config.option
    return bool(getattr(option, "nbval", False) or getattr(option, "nbval_lax", False))


def pytest_configure(config: Any) -> None:
    if not _nbval_active(config) or "sim" in _STATE:
        return
    if getattr(config.option, "nbval_sanitize_with", None) is None:
        config.option.nbval_sanitize_with = str(HERE / "harness" / "sanitize.cfg")
    sim = harness.start_simulator(harness.TEST_KEY)
    _STATE["sim"] = sim
    _STATE["saved_env"] = harness.apply_env(harness.test_env(sim.base_url))
    _patch_nbval(sim)


def pytest_unconfigure(config: Any) -> None:
    sim = _STATE.pop("sim", None)
    if sim is None:
        return
    harness.restore_env(_STATE.pop("saved_env"))
    sim.stop()


def _patch_nbval(sim: Any) -> None:
    from nbval import kernel, plugin

    original_setup = plugin.IPyNbFile.setup

    def setup(self: Any) -> None:
        harness.fresh_script(sim)  # each notebook starts alike, whatever ran before it
        original_setup(self)

    plugin.IPyNbFile.setup = setup
    kernel.RunningKernel.get_message = _fold_display_updates(kernel.RunningKernel.get_message)
    kernel.RunningKernel.execute_cell_input = _execute_like_a_frontend


def _execute_like_a_frontend(self: Any, cell_input: str, allow_stdin: bool | None = None) -> str:
    """nbval's ``execute_cell_input``, but storing history as notebook frontends do."""
    return self.kc.execute(cell_input, store_history=True, allow_stdin=allow_stdin, stop_on_error=False)


def _display_id(msg: dict[str, Any]) -> str | None:
    transient = msg["content"].get("transient") or {}
    display_id = transient.get("display_id")
    return display_id if isinstance(display_id, str) else None


def _fold_display_updates(get_message: Any) -> Any:
    """Wrap ``RunningKernel.get_message`` so iopub displays arrive already updated."""

    def wrapper(self: Any, stream: str, timeout: float | None = None) -> Any:
        if stream != "iopub":
            return get_message(self, stream, timeout=timeout)
        pending: deque[dict[str, Any]] = self.__dict__.setdefault("_kimi_pending", deque())
        if pending:
            return pending.popleft()
        msg = get_message(self, stream, timeout=timeout)
        if msg["msg_type"] != "display_data" or _display_id(msg) is None:
            return msg
        # Hold everything this cell publishes until it is idle, folding updates into displays.
        parent = msg["parent_header"].get("msg_id")
        held = [msg]
        displays: dict[str, list[dict[str, Any]]] = {_display_id(msg): [msg]}  # type: ignore[dict-item]
        while True:
            try:
                nxt = get_message(self, stream, timeout=timeout)
            except Empty:
                break  # hand on what arrived; nbval reports the timeout on its next read
            kind, display_id = nxt["msg_type"], _display_id(nxt)
            if kind == "update_display_data" and display_id in displays:
                for shown in displays[display_id]:
                    shown["content"]["data"] = copy.deepcopy(nxt["content"]["data"])
                    shown["content"]["metadata"] = copy.deepcopy(nxt["content"].get("metadata", {}))
                continue
            if kind == "display_data" and display_id is not None:
                displays.setdefault(display_id, []).append(nxt)
            held.append(nxt)
            if (kind == "status" and nxt["content"].get("execution_state") == "idle"
                    and nxt["parent_header"].get("msg_id") == parent):
                break
        pending.extend(held[1:])
        return held[0]

    wrapper.__wrapped__ = get_message  # type: ignore[attr-defined]
    return wrapper
