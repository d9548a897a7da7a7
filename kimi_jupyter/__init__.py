"""Kimi K2.5 in Jupyter.

The whole public API at a glance. Importing this package is cheap: nothing heavy (httpx,
pandas, matplotlib, PIL, ipywidgets, jupyterlab) is imported until a name that needs it is
first used.

    %load_ext kimi_jupyter            # registers %%kimi and %kimi
    import kimi_jupyter
    r = kimi_jupyter.ask("Explain this chart", fig)
    r.text, r.reasoning, r.usage, r.tool_steps, r.code_blocks
    out = kimi_jupyter.map("Sentiment of: {text}", df)   # one turn per row, live or batch
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

_EXPORTS = {
    "ask": "api",
    "aask": "api",
    "Response": "response",
    "ToolStep": "response",
    "CodeBlock": "response",
    "Settings": "settings",
    "resolve_settings": "settings",
    "get_session": "session",
    "KimiClient": "client",
    "AsyncKimiClient": "client",
    "KimiError": "errors",
    "ReasoningDelta": "events",
    "TextDelta": "events",
    "ToolCallRequested": "events",
    "ToolCallStarted": "events",
    "ToolCallFinished": "events",
    "ApprovalRequested": "events",
    "ApprovalResolved": "events",
    "Usage": "events",
    "Retrying": "events",
    "Notice": "events",
    "Done": "events",
    "Failed": "events",
    "map": "rows",
    "batches": "rows",
    "resume": "rows",
    "cancel": "rows",
}

__all__ = [*sorted(_EXPORTS), "__version__", "load_ipython_extension", "unload_ipython_extension"]

if TYPE_CHECKING:
    from .api import aask, ask
    from .client import AsyncKimiClient, KimiClient
    from .errors import KimiError
    from .events import (
        ApprovalRequested,
        ApprovalResolved,
        Done,
        Failed,
        Notice,
        ReasoningDelta,
        Retrying,
        TextDelta,
        ToolCallFinished,
        ToolCallRequested,
        ToolCallStarted,
        Usage,
    )
    from .response import CodeBlock, Response, ToolStep
    from .rows import batches, cancel, map, resume
    from .session import get_session
    from .settings import Settings, resolve_settings


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'kimi_jupyter' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext kimi_jupyter`: register the magics and the sidebar's comm target (heavy
    imports stay lazy)."""
    from .magics import load_ipython_extension as load
    from .sidebar.target import register

    load(ipython)
    register(ipython)  # the JupyterLab sidebar's comm target; a no-op outside a kernel
    from .warmup import start as warm_up

    warm_up(ipython)  # the first %%kimi cell finds httpx and the engine loaded


def unload_ipython_extension(ipython: Any) -> None:
    from .magics import unload_ipython_extension as unload

    unload(ipython)
