"""The live view of a turn: one display, updated in place, replaced by the static bundle.

While the stream runs the cell shows a single ``display(..., display_id=True)`` output whose
Markdown holds everything the turn has to show: a header (model, thinking on/off, state,
elapsed seconds), a one-line note for retries, notices and errors, the reasoning trace in a
``<details>`` that is open while the model thinks and folds away when the answer starts,
the tool steps, the answer (the frontend renders and highlights it) and the usage line.
Each repaint is one ``update_display_data`` message: no widget, no comm, so a turn costs
the kernel about what printing the answer costs.

The output is created only when there is something to show: the first repaint waits one
interval (or an urgent event: a tool starting, an approval prompt, a retry pause), so a
short answer that ends within it is shown once, as its final bundle. Repaints go through a
:class:`Coalescer` (at most 5 a second, fewer as the content grows: each resends it whole).

``finish()`` replaces the output, in place, with :func:`final_bundle`, so the saved notebook
holds only the static HTML/Markdown/text (the same bundle whatever the live view showed).

Approval buttons and edit proposals are widgets of their own (``kimi_jupyter.agent``), shown
below this output when a turn needs them. Model text is rendered by the frontend's own
sanitizing Markdown renderer from :class:`GrowingMarkdown` (safe Markdown: no raw HTML of
the model's survives), so the live output carries no script and no button; the final bundle
has no JavaScript either. ipywidgets is not imported here.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from typing import Any

from ..response import Response
from ..untrusted import GrowingMarkdown, markdown_text
from .coalesce import Coalescer, paced_interval
from .fmt import approx_tokens, preview, reasoning_title, seconds, usage_line
from .markdown import MarkdownRenderer
from .static import final_bundle, final_metadata

__all__ = ["LIVE_INTERVAL", "LiveView", "live_view_markdown"]

# One repaint is one update_display_data message of the whole view: 5 a second keep a fast
# stream at or under about 5 messages a second, whatever the token rate.
LIVE_INTERVAL = 0.2


def _steps_markdown(response: Response) -> list[str]:
    rows = []
    for step in response.tool_steps:
        line = f"**{markdown_text(step.name)}** · {markdown_text(step.state)}"
        if step.seconds:
            line += f" · {seconds(step.seconds)}"
        if step.state == "awaiting approval":
            # The approval box right below shows the whole code, once, with its buttons.
            rows.append(f"- {line} · *see the code and answer below*")
            continue
        arguments = preview(step.arguments.replace("\n", " "), 120)
        line += f" · <code>{html.escape(arguments)}</code>"
        if step.error:
            line += f"<br>error: {html.escape(preview(step.error, 300))}"
        elif step.result is not None:
            line += f"<br>&rarr; <code>{html.escape(preview(step.result, 300))}</code>"
        rows.append(f"- {line}")
    return ["\n".join(rows)] if rows else []


def live_view_markdown(c: Coalescer, meta: Any, note: str, answer: Callable[[str], str]) -> str:
    """The live view's Markdown for the coalesced turn ``c`` (``answer`` renders the model's
    text safely: a :class:`GrowingMarkdown` while streaming)."""
    r = c.response
    thinking = c.phase == "thinking"
    extra = f" (~{approx_tokens(len(r.reasoning)):,} tokens)" if thinking else ""
    parts = [f"*{markdown_text(meta.headline(c.phase))}{extra} · {round(c.elapsed())} s*"]
    if note:
        parts.append(f"**{markdown_text(note)}**")
    if r.reasoning:
        if c.reasoning_active:
            summary, is_open = "Thinking…", " open"
        else:
            summary, is_open = f"{reasoning_title(r)} · {seconds(round(c.reasoning_seconds()))}", ""
        parts.append(
            f"<details{is_open}><summary>{html.escape(summary)}</summary>\n\n"
            f'<pre style="white-space:pre-wrap">{html.escape(r.reasoning.strip())}</pre>\n\n</details>'
        )
    parts += _steps_markdown(r)
    if r.text:
        parts.append(answer(r.text))
    if r.usage.reported and r.usage.total is not None:
        parts.append(f"*{markdown_text(usage_line(r.usage, meta.context_window, r.costs))}*")
    return "\n\n".join(parts)


class LiveView(MarkdownRenderer):
    """The default live view in a kernel; see the module docstring."""

    def __init__(
        self,
        *,
        interval: float = LIVE_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        display: Callable[..., Any] | None = None,  # (bundle, metadata=...) -> a display handle
    ) -> None:
        super().__init__(interval=interval, clock=clock, display=display)
        self._started = False

    def start(self, meta: Any) -> None:
        self._meta = meta
        self._note = ""
        self._coalescer = Coalescer(self._paint, self._interval, self._clock, quiet_start=True)
        self._answer = GrowingMarkdown()
        self._handle = None  # created by the first repaint
        self._started = True

    def handle(self, event: Any) -> None:
        if not self._started:  # handled before start(): show the view anyway
            self.start(self._meta)
        super().handle(event)

    def finish(self, response: Response) -> None:
        bundle = final_bundle(response, self._meta)
        metadata = final_metadata(response)  # where the output came from (saved with it)
        extra = {"metadata": metadata} if metadata else {}
        if self._handle is None:  # nothing was shown yet: the final bundle is the only output
            self._handle = self._display(bundle, **extra)
        else:
            self._handle.update(bundle, raw=True, **extra)

    @property
    def shown(self) -> bool:
        """Whether the output exists (the first repaint or the final bundle created it)."""
        return self._handle is not None

    @property
    def repaints(self) -> int:
        return self._coalescer.flushes

    def _bundle(self, c: Coalescer) -> dict[str, str]:
        markdown = live_view_markdown(c, self._meta, self._note, self._answer)
        return {"text/markdown": markdown, "text/plain": c.response.text or self._meta.headline(c.phase)}

    def _paint(self, c: Coalescer) -> None:
        c.interval = paced_interval(self._interval, len(c.response.text) + len(c.response.reasoning))
        bundle = self._bundle(c)
        if self._handle is None:
            self._handle = self._display(bundle)
        else:
            self._handle.update(bundle, raw=True)
