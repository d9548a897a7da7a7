"""The rich view for frontends without widgets: one display handle, updated in place.

Some frontends render Markdown but not ipywidgets (nbviewer-like hosts, some editors,
kernels without ipywidgets installed). There the turn is a single ``display(...,
display_id=True)`` output whose Markdown is replaced at most ~10 times a second while the
stream runs, and by the static :func:`final_bundle` when it ends.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from typing import Any

from ..events import Event
from ..response import Response
from ..untrusted import GrowingMarkdown, markdown_text, safe_markdown
from .base import TurnMeta
from .coalesce import Coalescer, paced_interval
from .fmt import note_for, reasoning_title, seconds, step_summary, usage_line
from .static import final_bundle, final_metadata

__all__ = ["MarkdownRenderer", "live_markdown"]


def live_markdown(
    response: Response,
    meta: TurnMeta,
    phase: str,
    elapsed: float,
    note: str = "",
    answer: Callable[[str], str] = safe_markdown,
) -> str:
    """The in-progress Markdown: header, open reasoning while thinking, steps, answer.

    ``answer`` renders the model's text safely (a :class:`GrowingMarkdown` while streaming).
    """
    parts = [f"*{markdown_text(meta.headline(phase))} · {seconds(round(elapsed))}*"]
    if note:
        parts.append(f"**{markdown_text(note)}**")
    if response.reasoning:
        is_open = " open" if phase == "thinking" else ""
        parts.append(
            f"<details{is_open}><summary>{html.escape(reasoning_title(response))}</summary>\n\n"
            f'<pre style="white-space:pre-wrap">{html.escape(response.reasoning.strip())}</pre>\n\n</details>'
        )
    parts += [f"- tool: {markdown_text(step_summary(step))}" for step in response.tool_steps]
    if response.text:
        parts.append(answer(response.text))
    if response.usage.reported and response.usage.total is not None:
        parts.append(f"*{markdown_text(usage_line(response.usage, meta.context_window, response.costs))}*")
    return "\n\n".join(parts)


def _default_display(bundle: dict[str, str]) -> Any:
    from IPython.display import display

    return display(bundle, raw=True, display_id=True)


class MarkdownRenderer:
    """A display handle repainted with Markdown, then replaced by the static bundle."""

    def __init__(
        self,
        *,
        interval: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
        display: Callable[[dict[str, str]], Any] | None = None,
    ) -> None:
        self._interval = interval
        self._clock = clock
        self._display = display or _default_display
        self._handle: Any = None
        self._meta = TurnMeta(model="", thinking=False)
        self._coalescer = Coalescer(self._paint, interval, clock)
        self._note = ""
        self._answer = GrowingMarkdown()

    def start(self, meta: TurnMeta) -> None:
        self._meta = meta
        self._note = ""
        self._coalescer = Coalescer(self._paint, self._interval, self._clock)
        self._answer = GrowingMarkdown()
        self._handle = self._display(self._bundle(self._coalescer))

    def handle(self, event: Event) -> None:
        self._note = note_for(event, self._note)
        self._coalescer.feed(event)

    def finish(self, response: Response) -> None:
        if self._handle is not None:
            metadata = final_metadata(response)  # where the output came from (saved with it)
            self._handle.update(final_bundle(response, self._meta), raw=True,
                                **({"metadata": metadata} if metadata else {}))

    def _bundle(self, c: Coalescer) -> dict[str, str]:
        markdown = live_markdown(c.response, self._meta, c.phase, c.elapsed(), self._note, self._answer)
        return {"text/markdown": markdown, "text/plain": c.response.text or self._meta.headline(c.phase)}

    def _paint(self, c: Coalescer) -> None:
        c.interval = paced_interval(self._interval, len(c.response.text) + len(c.response.reasoning))
        if self._handle is not None:
            self._handle.update(self._bundle(c), raw=True)
