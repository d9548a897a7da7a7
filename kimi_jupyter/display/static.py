"""The saved form of a turn: what stays in the notebook after the live view is gone.

``final_bundle`` turns a finished :class:`Response` into ``text/html`` (no JavaScript, a few
inline styles that read in light and dark themes, reasoning and tool steps folded in
``<details>``, a usage table), ``text/markdown`` and ``text/plain``. The notebook then
renders after a reload, in nbconvert, on GitHub and with no widget state.

Every part is a function of the response's content alone, never of timings, ids or
addresses: nbval compares ``text/plain`` (and, by default, the HTML and Markdown too) of
saved outputs against a fresh run, so two identical turns must give identical bundles.
Model text is always escaped: an answer or reasoning trace is data, never markup.
"""

from __future__ import annotations

import html
import re
from typing import Any

from ..response import Response, ToolStep
from ..untrusted import markdown_text, markdown_to_html, safe_markdown
from .base import TurnMeta
from .fmt import final_state, preview, reasoning_title, step_summary, turn_usage_line, usage_cells

__all__ = ["final_bundle", "final_metadata", "html_bundle", "markdown_bundle", "plain_text"]

_MUTED = "opacity:.75;font-size:88%"
_BOX = "border-left:3px solid rgba(127,127,127,.45);padding:2px 0 2px 10px;margin:4px 0"
_FOLD = "margin:4px 0"
_TRACE = (
    "white-space:pre-wrap;word-break:break-word;font-size:90%;opacity:.85;margin:4px 0 4px 2px;"
    "padding-left:8px;border-left:2px solid rgba(127,127,127,.3)"
)
_PRE = (
    "white-space:pre-wrap;word-break:break-word;background:rgba(127,127,127,.12);padding:4px 6px;margin:2px 0"
)
_ALERT = {"failed": "color:#d9534f;font-weight:600", "cut": "color:#c98a00;font-weight:600"}
_CELL = "padding:1px 8px;text-align:right"


RESPONSE_MIME = "application/vnd.kimi.response+json"


def final_bundle(response: Response, meta: TurnMeta) -> dict[str, Any]:
    """The saved form of a finished turn.

    ``text/html``, ``text/markdown`` and ``text/plain`` render anywhere (nbconvert, GitHub,
    terminals); JupyterLab with the extension renders the structured ``RESPONSE_MIME``
    richly. None of them carries timings or ids, so saved notebooks compare stably.
    """
    return {
        RESPONSE_MIME: {**response.summary(timings=False), "meta": meta.to_json()},
        "text/html": html_bundle(response, meta),
        "text/markdown": markdown_bundle(response, meta),
        "text/plain": plain_text(response, meta),
    }


def final_metadata(response: Response) -> dict[str, Any]:
    """The display metadata of a turn's final output: where it came from (model, live or
    replayed, the recording entry, cost; `kimi_jupyter.recording.Provenance`) under the
    ``kimi_jupyter`` key, which nbformat saves with the output (no frontend needed). Empty
    for a response that did not come from a turn."""
    provenance = getattr(response, "provenance", None)
    return provenance.metadata() if provenance is not None else {}


def _ending(response: Response) -> tuple[str, str] | None:
    """(state, sentence) for turns that did not end normally."""
    state = final_state(response)
    if state == "failed":
        kind = (
            f" ({response.error_kind})" if response.error_kind and response.error_kind != "KimiError" else ""
        )
        return state, f"failed{kind}: {response.error}"
    if state == "cut":
        return state, "the stream was cut before the end; the answer is partial"
    if state == "interrupted":
        return state, "interrupted; the answer is partial"
    return None


def _notes(response: Response) -> list[str]:
    """Notices worth keeping in the saved output (e.g. "Simulated reply", "Replayed"), once each."""
    return list(dict.fromkeys(response.notices))


def plain_text(response: Response, meta: TurnMeta) -> str:
    """The deterministic text form: answer, notes, tool steps, usage."""
    lines: list[str] = []
    if response.text.strip():
        lines += [response.text.strip(), ""]
    ending = _ending(response)
    if ending:
        lines.append(f"[{ending[1]}]")
    lines += [f"[note: {note}]" for note in _notes(response)]
    if response.reasoning:
        lines.append(f"[reasoning: {len(response.reasoning):,} chars]")
    for step in response.tool_steps:
        args = preview(step.arguments.replace("\n", " "), 60)
        lines.append(f"[tool {step_summary(step)}] {args}".rstrip())
    usage = turn_usage_line(response, meta.context_window)
    if usage is not None:
        lines.append(usage)
    return "\n".join(lines)


def markdown_bundle(response: Response, meta: TurnMeta) -> str:
    """The answer as Markdown (raw HTML neutralised), then reasoning, steps and usage."""
    parts: list[str] = []
    if response.text.strip():
        parts.append(safe_markdown(response.text.strip()))
    ending = _ending(response)
    if ending:
        parts.append("**" + markdown_text(ending[1]) + "**")
    parts += ["*" + markdown_text(note) + "*" for note in _notes(response)]
    if response.reasoning:
        parts.append(
            f"<details><summary>{html.escape(reasoning_title(response))}</summary>\n\n"
            f'<pre style="white-space:pre-wrap">{html.escape(response.reasoning.strip())}</pre>\n\n</details>'
        )
    for step in response.tool_steps:
        parts.append(
            f"<details><summary>tool: {html.escape(step_summary(step))}</summary>\n\n"
            f"{_step_body(step)}\n\n</details>"
        )
    usage = turn_usage_line(response, meta.context_window)
    if usage is not None:
        parts.append(f"*{markdown_text(usage)}*")
    return "\n\n".join(parts)


def html_bundle(response: Response, meta: TurnMeta) -> str:
    """Self-contained HTML: header, folded reasoning and steps, the answer, a usage table."""
    state = final_state(response)
    out = [f'<div class="kimi-turn" style="{_BOX}">']
    out.append(f'<div class="kimi-head" style="{_MUTED}">{html.escape(meta.headline(state))}</div>')
    ending = _ending(response)
    if ending:
        style = _ALERT.get(ending[0], _ALERT["cut"])
        out.append(f'<div class="kimi-alert" style="{style}">{html.escape(ending[1])}</div>')
    out += [f'<div class="kimi-note" style="{_MUTED}">{html.escape(note)}</div>' for note in _notes(response)]
    if response.reasoning:
        out.append(
            f'<details class="kimi-reasoning" style="{_FOLD}"><summary style="cursor:pointer;{_MUTED}">'
            f"{html.escape(reasoning_title(response))}</summary>"
            f'<div style="{_TRACE}">{html.escape(response.reasoning.strip())}</div></details>'
        )
    for step in response.tool_steps:
        out.append(
            f'<details class="kimi-step" style="{_FOLD}"><summary style="cursor:pointer;{_MUTED}">'
            f"tool: {html.escape(step_summary(step))}</summary>{_step_body(step)}</details>"
        )
    if response.text.strip():
        out.append(f'<div class="kimi-answer">{styled_answer(response.text)}</div>')
    out.append(usage_html(response, meta))
    out.append("</div>")
    return "\n".join(out)


_CODE_BLOCK = re.compile(r'<pre><code class="language-([\w+#.-]+)">')
# Exported HTML (nbconvert) styles every <code> as inline code: a light band behind each line.
_BLOCK_CODE = "background:none;padding:0;border:none;font-size:inherit"


def styled_answer(markdown: str) -> str:
    """The answer as escaped HTML (code already highlighted by the rendering policy), with code
    blocks shaded for both themes and without the inline-code band on each line."""
    rendered = markdown_to_html(markdown)
    rendered = _CODE_BLOCK.sub(
        lambda m: f'<pre style="{_PRE}"><code class="language-{m.group(1)}" style="{_BLOCK_CODE}">', rendered)
    return rendered.replace("<pre><code>", f'<pre style="{_PRE}"><code style="{_BLOCK_CODE}">').replace(
        "<pre>", f'<pre style="{_PRE}">')


def usage_html(response: Response, meta: TurnMeta) -> str:
    cells = usage_cells(response.usage, meta.context_window)
    if not cells:
        line = turn_usage_line(response, meta.context_window)
        if line is None:
            return ""
        return f'<div class="kimi-usage" style="{_MUTED}">{html.escape(line)}</div>'
    head = "".join(f'<th style="{_CELL}">{label}</th>' for label, _ in cells)
    row = "".join(f'<td style="{_CELL}">{html.escape(value)}</td>' for _, value in cells)
    return (
        f'<table class="kimi-usage" style="border-collapse:collapse;margin-top:6px;{_MUTED}">'
        f"<tr>{head}</tr><tr>{row}</tr></table>"
    )


def _step_body(step: ToolStep) -> str:
    """Arguments and result of a step as escaped preformatted blocks (no timings).

    Each ``<pre>`` follows a blank line, so in ``text/markdown`` it opens its own HTML block,
    which only ``</pre>`` ends: blank lines in the (escaped) text cannot end it and let the
    rest be read as Markdown (where ``![x](url)`` would become an image).
    """
    parts = [("arguments", step.arguments)]
    if step.error:
        parts.append(("error", step.error))
    elif step.result is not None:
        parts.append(("result", step.result))
    return "\n\n".join(
        f'<div style="{_MUTED}">{label}</div>\n\n<pre style="{_PRE}">{html.escape(preview(text, 2000))}</pre>'
        for label, text in parts
    )
