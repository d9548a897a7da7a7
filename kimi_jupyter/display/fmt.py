"""Words and numbers every renderer agrees on.

The live widget, the Markdown handle, the terminal and the saved bundle all name the same
things (the turn's state, a tool step, the reasoning size, the usage line). Keeping those
phrasings here makes the four views read alike and keeps the saved text deterministic.
"""

from __future__ import annotations

from ..events import (
    INTERRUPTED_KIND,
    ApprovalRequested,
    ApprovalResolved,
    Done,
    Event,
    Failed,
    Notice,
    ReasoningDelta,
    Retrying,
    TextDelta,
    ToolCallFinished,
    ToolCallRequested,
    ToolCallStarted,
    Usage,
    format_cost,
)
from ..response import Response, ToolStep

__all__ = [
    "approx_tokens",
    "context_fill",
    "final_state",
    "next_phase",
    "note_for",
    "preview",
    "reasoning_title",
    "retry_line",
    "seconds",
    "step_summary",
    "usage_cells",
    "usage_line",
]


def next_phase(phase: str, event: Event, response: Response) -> str:
    """The state word after ``event``: waiting, thinking, answering, calling tools, ...

    The sidebar's ``TurnState`` (labextension/src/turn.ts) follows the same rules; the
    golden turns in ``tests/golden/turns/`` hold both to them.
    """
    if isinstance(event, ReasoningDelta):
        return "thinking"
    if isinstance(event, TextDelta):
        return "answering"
    if isinstance(event, ApprovalRequested):
        return "awaiting approval"
    if isinstance(event, (ToolCallRequested, ToolCallStarted, ApprovalResolved)):
        return "calling tools"
    if isinstance(event, ToolCallFinished):
        busy = any(s.state in ("running", "awaiting approval", "approved") for s in response.tool_steps)
        return "calling tools" if busy else "waiting"
    if isinstance(event, Retrying):
        return "waiting"
    if isinstance(event, Done):
        return "cut" if event.cut else "done"
    if isinstance(event, Failed):
        return "interrupted" if event.kind == INTERRUPTED_KIND else "failed"
    return phase


def note_for(event: Event, note: str) -> str:
    """The one-line note a live view shows after ``event`` (retry, notice, error or cut).

    A retry note disappears once content flows again; other notes stay.
    """
    if isinstance(event, Retrying):
        return retry_line(event)
    if isinstance(event, Notice):
        return event.text
    if isinstance(event, Failed):
        return f"failed: {event.error}"
    if isinstance(event, Done) and event.cut:
        return "the stream was cut before the end; the answer is partial"
    if note.startswith("retrying") and isinstance(event, (TextDelta, ReasoningDelta, ToolCallRequested)):
        return ""
    return note


def final_state(response: Response) -> str:
    """How a finished turn ended: failed, cut, done, or interrupted (no end event came)."""
    if response.error is not None:
        return "failed"
    if response.cut:
        return "cut"
    return "done" if response.done else "interrupted"


def preview(text: str, limit: int = 200) -> str:
    """``text`` shortened to ``limit`` characters with an ellipsis."""
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def approx_tokens(chars: int) -> int:
    return (chars + 3) // 4


def reasoning_title(response: Response) -> str:
    """'Reasoning · 812 tokens' (reported) or 'Reasoning · ~800 tokens' (estimated)."""
    if response.usage.reported and response.usage.reasoning:
        return f"Reasoning · {response.usage.reasoning:,} tokens"
    return f"Reasoning · ~{approx_tokens(len(response.reasoning)):,} tokens"


def seconds(value: float) -> str:
    return f"{value:.0f} s" if value >= 10 or value == int(value) else f"{value:.1f} s"


def retry_line(event: Retrying) -> str:
    return f"retrying in {seconds(event.wait)} ({event.reason})"


def step_summary(step: ToolStep) -> str:
    """'run_python · done', 'run_python · denied', 'search · error: timed out'."""
    state = step.state
    if state == "error" and step.error:
        state = f"error: {preview(step.error, 120)}"
    return f"{step.name} · {state}"


def context_fill(usage: Usage, window: int | None) -> float | None:
    """Percent of the context window the conversation now fills, when both are known."""
    if not window or not usage.reported:
        return None
    used = usage.total if usage.total is not None else (usage.prompt or 0) + (usage.completion or 0)
    return 100.0 * used / window if used else None


def usage_line(usage: Usage, window: int | None = None, costs: dict[str, float] | None = None) -> str:
    """``Usage.describe()`` plus the context-window fill when it is known.

    ``costs`` (``Response.costs``, per currency) is shown when the usage has no single cost:
    a turn priced in two currencies is never summed ("cost ¥0.19 + $0.016").
    """
    line = usage.describe()
    if usage.reported and usage.cost is None and costs:
        line += ", cost " + " + ".join(format_cost(cost, currency or None) for currency, cost in costs.items())
    fill = context_fill(usage, window)
    if fill is not None:
        line += f", context {fill:.1f}% of {window:,}"
    return line


def turn_usage_line(response: Response, window: int | None = None) -> str | None:
    """The usage line of a finished turn, or None when there is nothing to say.

    "Not reported by the server" is only true of a turn that finished without usage. A turn
    that failed part-way (a cut, an interrupt, a restart) never got to the point where the
    server counts it; one that failed before anything arrived has no usage at all.
    """
    usage = response.usage
    if usage.reported or not response.error:
        return usage_line(usage, window, response.costs)
    if response.text or response.reasoning:
        return "usage: unknown (the answer did not finish)"
    return None


def usage_cells(usage: Usage, window: int | None = None) -> list[tuple[str, str]]:
    """(label, value) pairs for a usage table; empty when nothing was reported."""
    if not usage.reported:
        return []

    def num(value: int | None) -> str:
        return "–" if value is None else f"{value:,}"

    cells = [
        ("prompt", num(usage.prompt)),
        ("cached", num(usage.cached)),
        ("completion", num(usage.completion)),
        # Kimi counts reasoning tokens in completion without reporting them apart: not "–" (none).
        ("reasoning", "in completion" if usage.reasoning is None and usage.completion else num(usage.reasoning)),
        ("total", num(usage.total)),
        ("cost", "–" if usage.cost is None else format_cost(usage.cost, usage.currency)),
    ]
    fill = context_fill(usage, window)
    if fill is not None:
        cells.append(("context", f"{fill:.1f}% of {window:,}"))
    return cells
