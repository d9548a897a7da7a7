"""Renderers of a turn's events: the live view, a Markdown handle, plain text, a saved bundle.

``choose_renderer()`` picks one for where the code runs; every renderer takes
``start(meta)``, ``handle(event)`` for each event and ``finish(response)``. ``final_bundle()``
is the static, deterministic form a turn leaves in a saved notebook. Nothing here imports
ipywidgets (only approval buttons and edit proposals, in ``agent``, are widgets).
"""

from __future__ import annotations

from typing import Any, TextIO

from ..untrusted import markdown_to_html, safe_markdown
from .base import MODES, NullRenderer, Renderer, TurnMeta, in_kernel
from .coalesce import Coalescer
from .live import LiveView
from .markdown import MarkdownRenderer
from .plain import PlainRenderer
from .static import final_bundle
from .tables import UsageRow, usage_table

__all__ = [
    "MODES",
    "Coalescer",
    "LiveView",
    "MarkdownRenderer",
    "NullRenderer",
    "PlainRenderer",
    "Renderer",
    "TurnMeta",
    "UsageRow",
    "choose_renderer",
    "final_bundle",
    "in_kernel",
    "markdown_to_html",
    "safe_markdown",
    "usage_table",
]


def choose_renderer(mode: str = "auto", shell: Any = None, *, stream: TextIO | None = None) -> Renderer:
    """A fresh renderer for one turn.

    ``auto``: the live view (one display updated in place, see ``display.live``) in a
    Jupyter kernel, plain text elsewhere (terminal IPython, scripts). ``widget`` is the same
    live view (kept as a name: it needs no ipywidgets); ``markdown`` a plainer display
    handle. ``stream`` is where the text renderer writes (default ``sys.stdout``).
    """
    mode = (mode or "auto").strip().lower()
    if mode not in MODES:
        raise ValueError(f"unknown display mode {mode!r}: use one of {', '.join(MODES)}")
    if mode == "none":
        return NullRenderer()
    if mode == "auto":
        mode = "widget" if in_kernel(shell) else "text"
    if mode == "widget":
        return LiveView()
    if mode == "markdown":
        return MarkdownRenderer()
    from .plain import PlainRenderer

    return PlainRenderer(stream)
