"""Renderers of a turn's events: live widgets, a Markdown handle, plain text, a saved bundle.

``choose_renderer()`` picks one for where the code runs; every renderer takes
``start(meta)``, ``handle(event)`` for each event and ``finish(response)``. ``final_bundle()``
is the static, deterministic form a turn leaves in a saved notebook. Importing this package
does not import ipywidgets (the live view imports it when one is built).
"""

from __future__ import annotations

from typing import Any, TextIO

from ..untrusted import markdown_to_html, safe_markdown
from .base import MODES, NullRenderer, Renderer, TurnMeta, in_kernel, widgets_available
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

    ``auto``: the live widget view in a Jupyter kernel where ipywidgets is installed, the
    Markdown handle in a kernel without it, plain text elsewhere (terminal IPython, scripts).
    ``widget`` falls back to ``markdown`` when ipywidgets is missing. ``stream`` is where
    the text renderer writes (default ``sys.stdout``).
    """
    mode = (mode or "auto").strip().lower()
    if mode not in MODES:
        raise ValueError(f"unknown display mode {mode!r}: use one of {', '.join(MODES)}")
    if mode == "none":
        return NullRenderer()
    if mode == "auto":
        mode = ("widget" if widgets_available() else "markdown") if in_kernel(shell) else "text"
    if mode == "widget" and widgets_available():
        from .live import LiveView

        return LiveView()
    if mode in ("widget", "markdown"):
        from .markdown import MarkdownRenderer

        return MarkdownRenderer()
    from .plain import PlainRenderer

    return PlainRenderer(stream)
