"""Renderers of a turn's events: live widgets, a Markdown handle, plain text, a saved bundle.

``choose_renderer()`` picks one for where the code runs; every renderer takes
``start(meta)``, ``handle(event)`` for each event and ``finish(response)``. ``final_bundle()``
is the static, deterministic form a turn leaves in a saved notebook. Importing this package
does not import ipywidgets (the live view imports it when one is built).
"""

from __future__ import annotations

from .base import MODES, NullRenderer, Renderer, TurnMeta, choose_renderer, in_kernel
from .coalesce import Coalescer
from .live import LiveView
from .markdown import MarkdownRenderer
from .plain import PlainRenderer
from .static import final_bundle
from .tables import UsageRow, usage_table
from .untrusted import markdown_to_html, safe_markdown

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
