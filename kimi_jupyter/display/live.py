"""The live ipywidgets view of a turn, replaced by the static bundle when it ends.

While the stream runs the cell shows: a header (model, thinking on/off, state, elapsed
seconds), a one-line note for retries, notices and errors, the reasoning trace in an
Accordion that is open while the model thinks and folds away when the answer starts, the
tool steps, the answer as Markdown (an ``Output`` widget whose ``outputs`` hold one
``text/markdown`` display, so the frontend renders and highlights it; one comm message per
repaint), Copy buttons for finished code blocks, and the usage line.

Repaints go through a :class:`Coalescer` (at most ~10 a second); a widget is only sent when
its value changed, the header (state, elapsed seconds, reasoning size) changes at most once
a second and the reasoning title only when the trace opens or folds, so a fast stream costs
about one ``comm_msg`` per repaint plus one a second.

``finish()`` replaces the whole view, in place, with :func:`final_bundle` (an
``update_display_data`` on the view's display id) and closes every widget, so the saved
notebook holds only the static HTML/Markdown/text and needs no widget state.

Limits: the kernel is busy while the stream is consumed, so widget callbacks cannot run
until the cell has finished, and by then ``set_next_input`` no longer applies; "insert
below" is therefore left to the magic (``-f code``), which calls it during execution. The
Copy buttons run in the browser (``navigator.clipboard``) and exist only while the view is
live. ipywidgets is imported when a view is built, never when this module is imported.
"""

from __future__ import annotations

import html
import time
import uuid
from collections.abc import Callable
from typing import Any

from ..events import Event
from ..response import CodeBlock, Response
from ..untrusted import GrowingMarkdown
from .base import TurnMeta
from .coalesce import Coalescer, paced_interval
from .fmt import approx_tokens, note_for, preview, reasoning_title, seconds, usage_line
from .static import final_bundle, final_metadata

__all__ = ["LiveView", "copy_buttons"]

_MUTED = "opacity:.75;font-size:88%"
# ipywidgets' HTML widget sets a 28 px line height (one widget row) that double-spaces text.
_TEXT = "line-height:1.45"
_TRACE = f"white-space:pre-wrap;word-break:break-word;font-size:90%;opacity:.85;max-height:24em;overflow:auto;{_TEXT}"
_NOTE = "color:#c98a00;font-weight:600"
_COPY_JS = (
    "navigator.clipboard.writeText(this.dataset.code).then("
    "() => {this.textContent = 'Copied'; setTimeout(() => {this.textContent = this.dataset.label}, 1500)})"
)

Publish = Callable[..., None]  # (bundle, display_id, metadata=...)


def _display(bundle: dict[str, Any], display_id: str, **metadata: Any) -> None:
    from IPython.display import display

    display(bundle, raw=True, display_id=display_id, **metadata)


def _update(bundle: dict[str, Any], display_id: str, **metadata: Any) -> None:
    from IPython.display import update_display

    update_display(bundle, raw=True, display_id=display_id, **metadata)


def copy_buttons(blocks: list[CodeBlock]) -> str:
    """HTML buttons that copy each code block to the clipboard (browser-side, no kernel)."""
    buttons = []
    for k, block in enumerate(blocks, 1):
        label = html.escape(f"Copy {block.language or 'code'} #{k}")
        code = html.escape(block.code, quote=True).replace("\n", "&#10;")
        buttons.append(
            f'<button class="kimi-copy" title="Copy this block to the clipboard" data-label="{label}" '
            f'data-code="{code}" onclick="{html.escape(_COPY_JS, quote=True)}">{label}</button>'
        )
    return " ".join(buttons)


# A repaint sends one message for the answer, plus now and then one for the header (its
# clock ticks once a second), the reasoning or a new section, and a turn has a few one-off
# messages (sections appearing, the usage, the final view): 5 repaints a second keep the
# whole view at or under about 10 messages a second even for a 3-second answer, whatever
# the token rate (at 0.15 s a short answer measured 11/s).
LIVE_INTERVAL = 0.2


class LiveView:
    """ipywidgets renderer; see the module docstring for what it shows and leaves behind."""

    def __init__(
        self,
        *,
        interval: float = LIVE_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        display: Publish | None = None,
        update: Publish | None = None,
    ) -> None:
        import ipywidgets

        self._widgets = ipywidgets
        self._interval = interval
        self._clock = clock
        self._publish = display or _display
        self._replace = update or _update
        self._meta = TurnMeta(model="", thinking=False)
        self._display_id: str | None = None
        self._all: list[Any] = []

    def start(self, meta: TurnMeta) -> None:
        w = self._widgets
        self._meta = meta
        self._note_text = ""
        self._header_key: tuple[str, int] = ("", -1)
        self._open = False
        self._coalescer = Coalescer(self._paint, self._interval, self._clock)
        self._answer_markdown = GrowingMarkdown()  # safe Markdown of the growing answer
        self.header = w.HTML(self._header("waiting", 0, ""))
        self.note = w.HTML()
        self.trace = w.HTML()
        self.reasoning = w.Accordion(children=[self.trace], titles=("Thinking",), selected_index=None)
        self.steps = w.HTML()
        self.answer = w.Output()
        self.code = w.HTML()
        self.usage = w.HTML()
        self.box = w.VBox([self.header])
        self._all = [self.box, self.header, self.note, self.reasoning, self.trace]
        self._all += [self.steps, self.answer, self.code, self.usage]
        self._display_id = uuid.uuid4().hex
        bundle = self.box._repr_mimebundle_()
        bundle["text/plain"] = f"{meta.headline('waiting')} (live view; needs ipywidgets in the frontend)"
        self._publish(bundle, self._display_id)

    def handle(self, event: Event) -> None:
        if self._display_id is None:  # handled before start(): show the view anyway
            self.start(self._meta)
        self._note_text = note_for(event, self._note_text)
        self._coalescer.feed(event)

    def finish(self, response: Response) -> None:
        bundle = final_bundle(response, self._meta)
        metadata = final_metadata(response)  # where the output came from (saved with it)
        extra = {"metadata": metadata} if metadata else {}
        if self._display_id is None:  # never started: just show the result
            self._publish(bundle, uuid.uuid4().hex, **extra)
            return
        self._replace(bundle, self._display_id, **extra)
        self._close()

    @property
    def repaints(self) -> int:
        return self._coalescer.flushes if self._display_id else 0

    def _header(self, phase: str, second: int, extra: str) -> str:
        line = f"{self._meta.headline(phase)}{extra} · {second} s"
        return f'<div style="{_MUTED}">{html.escape(line)}</div>'

    def _paint(self, c: Coalescer) -> None:
        r = c.response
        c.interval = paced_interval(self._interval, len(r.text) + len(r.reasoning))
        second = int(c.elapsed())
        if (c.phase, second) != self._header_key:  # the header ticks at most once a second
            self._header_key = (c.phase, second)
            extra = f" (~{approx_tokens(len(r.reasoning)):,} tokens)" if c.phase == "thinking" else ""
            self.header.value = self._header(c.phase, second, extra)
        self.note.value = (
            f'<div style="{_NOTE}">{html.escape(self._note_text)}</div>' if self._note_text else ""
        )
        if r.reasoning:
            self._paint_reasoning(c)
        if r.tool_steps:
            self.steps.value = self._steps_html(r)
        if r.text:
            data = {"text/markdown": self._answer_markdown(r.text), "text/plain": r.text}
            self.answer.outputs = ({"output_type": "display_data", "data": data, "metadata": {}},)
            blocks = r.code_blocks
            self.code.value = copy_buttons(blocks) if blocks else ""
        if r.usage.reported and r.usage.total is not None:
            self.usage.value = (
                f'<div style="{_MUTED}">{html.escape(usage_line(r.usage, self._meta.context_window, r.costs))}</div>'
            )
        parts = [
            (self.header, True),
            (self.note, bool(self._note_text)),
            (self.reasoning, bool(r.reasoning)),
            (self.steps, bool(r.tool_steps)),
            (self.answer, bool(r.text)),
            (self.code, bool(self.code.value)),
            (self.usage, bool(self.usage.value)),
        ]
        self.box.children = tuple(widget for widget, shown in parts if shown)

    def _paint_reasoning(self, c: Coalescer) -> None:
        r = c.response
        self.trace.value = f'<div style="{_TRACE}">{html.escape(r.reasoning)}</div>'
        active = c.reasoning_active
        with self.reasoning.hold_sync():  # title and fold state travel in one message
            if active:  # the growing size is in the header; a fixed title costs no message
                self.reasoning.titles = ("Thinking…",)
            else:
                self.reasoning.titles = (f"{reasoning_title(r)} · {seconds(round(c.reasoning_seconds()))}",)
            if active != self._open:  # open while thinking, fold when the answer (or a tool) starts
                self._open = active
                self.reasoning.selected_index = 0 if active else None

    def _steps_html(self, r: Response) -> str:
        rows = []
        for step in r.tool_steps:
            line = f"<b>{html.escape(step.name)}</b> · {html.escape(step.state)}"
            if step.seconds:
                line += f" · {seconds(step.seconds)}"
            if step.state == "awaiting approval":
                # The approval box right below shows the whole code, once, with its buttons.
                rows.append(f"<div>{line} · <i>see the code and answer below</i></div>")
                continue
            line += f" · <code>{html.escape(preview(step.arguments.replace(chr(10), ' '), 120))}</code>"
            if step.error:
                line += f"<br>&nbsp;&nbsp;error: {html.escape(preview(step.error, 300))}"
            elif step.result is not None:
                line += f"<br>&nbsp;&nbsp;&rarr; <code>{html.escape(preview(step.result, 300))}</code>"
            rows.append(f"<div>{line}</div>")
        return f'<div style="font-size:90%;{_TEXT}">{"".join(rows)}</div>'

    def _close(self) -> None:
        for widget in self._all:
            for part in (getattr(widget, "layout", None), getattr(widget, "style", None), widget):
                if isinstance(part, self._widgets.Widget):
                    part.close()
        self._all = []
