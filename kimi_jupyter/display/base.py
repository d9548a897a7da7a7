"""The renderer interface the magic and ``ask()`` drive, and how one is chosen.

A renderer sees a turn as ``start(meta)``, then ``handle(event)`` for every event (possibly
thousands per second, so it must be cheap), then ``finish(response)`` exactly once with the
final snapshot, however the turn ended (done, failed, cut or interrupted). Which renderer
runs depends on where we are: live widgets in a Jupyter kernel, a Markdown display handle
where widgets cannot run, plain text in a terminal.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Protocol, TextIO, runtime_checkable

from ..events import Event
from ..response import Response

__all__ = ["MODES", "NullRenderer", "Renderer", "TurnMeta", "choose_renderer", "in_kernel"]

MODES = ("auto", "widget", "markdown", "text", "none")


@dataclass(frozen=True)
class TurnMeta:
    """What a renderer shows before any event arrives."""

    model: str
    thinking: bool
    provider: str | None = None
    context_window: int | None = None
    title: str | None = None

    def headline(self, state: str | None = None) -> str:
        """'kimi-k2.5 · thinking on · answering' (no timings: the saved bundle uses it too)."""
        parts = [self.title] if self.title else []
        parts.append(self.model + (f" ({self.provider})" if self.provider else ""))
        parts.append("thinking on" if self.thinking else "thinking off")
        if state:
            parts.append(state)
        return " · ".join(parts)


@runtime_checkable
class Renderer(Protocol):
    def start(self, meta: TurnMeta) -> None: ...

    def handle(self, event: Event) -> None: ...

    def finish(self, response: Response) -> None: ...


class NullRenderer:
    """Shows nothing (``mode="none"``, e.g. ``ask(..., display="none")`` in scripts)."""

    def start(self, meta: TurnMeta) -> None:
        pass

    def handle(self, event: Event) -> None:
        pass

    def finish(self, response: Response) -> None:
        pass


def in_kernel(shell: Any = None) -> bool:
    """True inside a Jupyter kernel (a ZMQInteractiveShell or a subclass, e.g. Colab's)."""
    if shell is None:
        ipython = sys.modules.get("IPython")
        shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and any(cls.__name__ == "ZMQInteractiveShell" for cls in type(shell).__mro__)


def _widgets_available() -> bool:
    """Whether ipywidgets imports (only called when a renderer is chosen, never at import)."""
    try:
        import ipywidgets  # noqa: F401
    except Exception:  # a missing or broken install both mean "no widgets"
        return False
    return True


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
        mode = ("widget" if _widgets_available() else "markdown") if in_kernel(shell) else "text"
    if mode == "widget" and _widgets_available():
        from .live import LiveView

        return LiveView()
    if mode in ("widget", "markdown"):
        from .markdown import MarkdownRenderer

        return MarkdownRenderer()
    from .plain import PlainRenderer

    return PlainRenderer(stream)
