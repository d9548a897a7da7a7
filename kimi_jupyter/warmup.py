"""Import what the first ``%%kimi`` cell needs in the background, right after ``%load_ext``.

``%load_ext kimi_jupyter`` stays cheap (it imports only IPython, traitlets and our light
modules), so the first ``%%kimi`` cell used to pay for the rest: the HTTP stack (httpx,
httpcore, h11) and the turn engine, about two thirds of that
cell's time when the answer itself is short. In a kernel, :func:`start` imports them in a
daemon thread as soon as the extension is loaded, while the user is still typing the prompt;
the first cell then finds them loaded. Nothing else is done there: no client is created, no
setting is read, no request is sent. If the first cell comes at once (Run All), Python's
per-module import locks make it wait only for the module the thread is importing right then,
and import the rest itself; nothing is imported twice.

Only in a Jupyter kernel (terminal IPython and scripts import on first use, as before), and
``KIMI_WARMUP=0`` turns it off.
"""

from __future__ import annotations

import importlib
import os
import threading
from typing import Any

__all__ = ["MODULES", "start"]

#: What a first %%kimi cell imports beyond the extension itself, in the order it needs them.
MODULES = (
    "kimi_jupyter.session",
    "kimi_jupyter.turn",
    "httpx",
    "kimi_jupyter.client",
    "kimi_jupyter.display",
)
# ipywidgets is not among them: the live view is a display updated in place, and only an
# approval prompt or an edit proposal (rare, and after a tool step) builds widgets.


def _import_all() -> None:
    for name in MODULES:
        try:
            importlib.import_module(name)
        except Exception:  # a missing optional package is reported by the cell that needs it
            pass


def start(shell: Any) -> threading.Thread | None:
    """Start the background imports for ``shell``'s kernel; None when not applicable."""
    if os.environ.get("KIMI_WARMUP", "1").strip() == "0":
        return None
    if getattr(shell, "kernel", None) is None:
        return None
    thread = threading.Thread(target=_import_all, name="kimi-warmup", daemon=True)
    thread.start()
    return thread
