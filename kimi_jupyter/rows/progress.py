"""The progress of a run: a widget in notebooks, a text bar in terminals, nothing on request.

The engine only updates counters; a view reads them at most ten times a second (the
caller's loop ticks at 0.1 s), so 10,000 fast rows never flood the iopub channel. When the
run ends, the widget is replaced by a plain summary line that a saved notebook, nbconvert
and nbval show as text.
"""

from __future__ import annotations

import html
import sys
import time
from typing import Any, TextIO

from .data import RunSummary

__all__ = ["choose_progress", "ProgressView"]

MIN_INTERVAL = 0.1


def _eta(summary: RunSummary) -> str:
    finished = summary.done + summary.failed
    left = summary.rows - finished - summary.not_run
    if finished <= summary.cached or left <= 0 or summary.seconds <= 0:
        return ""
    rate = (finished - summary.cached) / summary.seconds
    if rate <= 0:
        return ""
    seconds = int(left / rate)
    return f"ETA {seconds // 60}:{seconds % 60:02d}"


def status_line(summary: RunSummary, title: str) -> str:
    from ..events import format_cost

    finished = summary.done + summary.failed
    parts = [f"{title}: {finished:,}/{summary.rows:,} rows"]
    if summary.failed:
        parts.append(f"{summary.failed:,} failed")
    if summary.cached:
        parts.append(f"{summary.cached:,} cached")
    tokens = summary.prompt_tokens + summary.completion_tokens
    parts.append(f"~{tokens:,} prompt tokens (estimated)" if summary.tokens_estimated else f"{tokens:,} tokens")
    if summary.cost:
        parts.append(format_cost(summary.cost, summary.currency))
    eta = _eta(summary)
    if eta:
        parts.append(eta)
    return " · ".join(parts)


class ProgressView:
    """No output (``progress=False``); the base of the real views."""

    #: How often the view wants `update` while a run goes on; None: only at the end. The
    #: thread that waits for a run wakes only this often: each wake takes the interpreter
    #: lock from the run's thread for a moment (a few % of a cached run's time at 10/s).
    interval: float | None = None

    def __init__(self, title: str = "kimi rows"):
        self.title = title
        self._last = 0.0

    def due(self) -> bool:
        now = time.monotonic()
        if now - self._last < MIN_INTERVAL:
            return False
        self._last = now
        return True

    def update(self, summary: RunSummary) -> None:
        pass

    def close(self, summary: RunSummary) -> None:
        pass


class TextProgress(ProgressView):
    def __init__(self, title: str = "kimi rows", stream: TextIO | None = None, live: bool = True):
        super().__init__(title)
        self.stream = stream or sys.stderr
        self.live = live
        self.interval = MIN_INTERVAL if live else None

    def update(self, summary: RunSummary) -> None:
        if not self.live or not self.due():
            return
        width = 24
        finished = summary.done + summary.failed
        filled = int(width * finished / summary.rows) if summary.rows else width
        bar = "#" * filled + "." * (width - filled)
        self.stream.write(f"\r[{bar}] {status_line(summary, self.title)}\x1b[K")
        self.stream.flush()

    def close(self, summary: RunSummary) -> None:
        prefix = "\r\x1b[K" if self.live else ""
        self.stream.write(f"{prefix}{self.title}: {summary.line()}\n")
        self.stream.flush()


class WidgetProgress(ProgressView):
    interval = MIN_INTERVAL

    def __init__(self, title: str = "kimi rows"):
        super().__init__(title)
        import ipywidgets as w
        from IPython.display import display

        self.bar = w.IntProgress(value=0, min=0, max=1, layout=w.Layout(width="240px"))
        self.label = w.HTML()
        self.box = w.HBox([self.bar, self.label])
        self.handle = display(self.box, display_id=True)

    def update(self, summary: RunSummary) -> None:
        if not self.due():
            return
        self.bar.max = max(1, summary.rows)
        self.bar.value = summary.done + summary.failed
        self.bar.bar_style = "warning" if summary.failed else ""
        self.label.value = f"<span>{html.escape(status_line(summary, self.title))}</span>"

    def close(self, summary: RunSummary) -> None:
        text = f"{self.title}: {summary.line()}"
        if self.handle is not None:
            self.handle.update({"text/plain": text}, raw=True)
        self.box.close()


def choose_progress(mode: Any, title: str = "kimi rows") -> ProgressView:
    """``"auto"``: widget in a Jupyter kernel, text bar in a terminal, a final line elsewhere."""
    from ..display.base import in_kernel, widgets_available

    if mode in (False, None, "none"):
        return ProgressView(title)
    if mode == "widget" or (mode in (True, "auto") and in_kernel() and widgets_available()):
        return WidgetProgress(title)
    live = mode == "text" or bool(getattr(sys.stderr, "isatty", lambda: False)())
    return TextProgress(title, live=live)
