"""A `Response` folds a turn's events into a snapshot.

It is what `ask()` returns and what `_kimi` holds in the notebook: the answer text, the
reasoning trace, the tool calls the model requested and the tool steps that ran, the usage
and cost, and whether the turn finished, was cut or failed. It never does I/O.

An agent turn is several requests (steps): the reasoning of each step is its own paragraph in
``reasoning`` (a blank line between steps, inserted when reasoning resumes after tools ran),
and every tool step keeps the reasoning of the request that asked for it (``ToolStep.reasoning``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from .events import (
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
)

__all__ = ["Response", "ToolStep", "CodeBlock", "extract_code_blocks"]

_FENCE = re.compile(r"^(`{3,}|~{3,})[ \t]*([\w+#.-]*)[^\n]*\n(.*?)^\1[ \t]*$", re.M | re.S)


@dataclass(frozen=True)
class CodeBlock:
    language: str
    code: str


def extract_code_blocks(markdown: str) -> list[CodeBlock]:
    """Fenced code blocks of a Markdown answer, in order."""
    return [CodeBlock(m.group(2).lower(), m.group(3).rstrip("\n")) for m in _FENCE.finditer(markdown)]


@dataclass
class ToolStep:
    """One tool call as the user sees it: requested, maybe approved, run, finished."""

    id: str
    name: str
    arguments: str
    state: str = "requested"  # requested | awaiting approval | running | denied | done | error
    result: str | None = None
    error: str | None = None
    seconds: float | None = None
    approved: bool | None = None
    reasoning: str = ""  # what the model reasoned in the request that asked for this call


@dataclass
class Response:
    """Snapshot of one turn (or one agent loop of several requests)."""

    model: str | None = None
    tool_calls: list[ToolCallRequested] = field(default_factory=list)
    tool_steps: list[ToolStep] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage.not_reported)
    finish_reason: str | None = None
    cut: bool = False
    error: str | None = None
    error_kind: str | None = None
    retries: int = 0
    notices: list[str] = field(default_factory=list)
    done: bool = False
    events: list[Event] = field(default_factory=list, repr=False)
    keep_events: bool = field(default=True, repr=False)
    _usage_seen: bool = field(default=False, repr=False)
    _costs: dict[str, float] = field(default_factory=dict, repr=False)
    # Deltas are buffered and joined on demand: `self.text += delta` would be quadratic.
    _text: list[str] = field(default_factory=list, repr=False)
    _reasoning: list[str] = field(default_factory=list, repr=False)
    # Agent steps: where the current step's reasoning starts, whether tools ran since the last
    # reasoning (the next reasoning is a new paragraph), and each requested call's reasoning.
    _step_start: int = field(default=0, repr=False)
    _tools_ran: bool = field(default=False, repr=False)
    _call_reasoning: dict[str, str] = field(default_factory=dict, repr=False)
    _batch_reasoning: str | None = field(default=None, repr=False)
    # Where the turn's output came from (kimi_jupyter.recording.Provenance); set by the Turn.
    provenance: Any = field(default=None, repr=False, compare=False)

    @staticmethod
    def _joined(parts: list[str]) -> str:
        if len(parts) > 1:
            parts[:] = ["".join(parts)]
        return parts[0] if parts else ""

    @property
    def text(self) -> str:
        return self._joined(self._text)

    @property
    def reasoning(self) -> str:
        return self._joined(self._reasoning)

    def feed(self, event: Event) -> None:
        """Fold one event into the snapshot (the types in the order they are most common)."""
        if self.keep_events:
            self.events.append(event)
        if isinstance(event, TextDelta):
            self._text.append(event.text)
        elif isinstance(event, ReasoningDelta):
            if self._tools_ran:  # a new agent step thinks again: a new paragraph
                self._tools_ran = False
                if event.text and self._reasoning and self.reasoning.strip():
                    self._reasoning.append("" if self.reasoning.endswith("\n\n") else "\n\n")
                    self._step_start = len(self.reasoning)
            self._reasoning.append(event.text)
        elif isinstance(event, Usage):
            # Several requests in one agent turn add up; one request reports once.
            self.usage = (self.usage + event) if self._usage_seen else event
            self._usage_seen = True
            if event.reported and event.cost is not None:
                key = event.currency or ""
                self._costs[key] = self._costs.get(key, 0) + event.cost
                if len(self._costs) > 1 and self.usage.cost is not None:
                    # Priced in two currencies: no honest total (``costs`` has one per currency).
                    self.usage = replace(self.usage, cost=None)
        elif isinstance(event, Retrying):
            self.retries += 1
        elif isinstance(event, Notice):
            self.notices.append(event.text)
        elif isinstance(event, Done):
            self.finish_reason = event.finish_reason
            self.cut = self.cut or event.cut
            self.done = True
        elif isinstance(event, Failed):
            self.error = event.error
            self.error_kind = event.kind
            self.cut = self.cut or event.partial
            self.done = True
        elif isinstance(event, ToolCallRequested):
            self.tool_calls.append(event)
            if self._batch_reasoning is None:  # the first call of this step
                self._batch_reasoning = self.reasoning[self._step_start:].strip()
            self._call_reasoning[event.id] = self._batch_reasoning
        elif isinstance(event, ToolCallStarted):
            self._tools_started()
            step = self._step(event.id)
            if step is None:
                self.tool_steps.append(ToolStep(event.id, event.name, event.arguments, state="running",
                                                reasoning=self._call_reasoning.get(event.id, "")))
            else:
                step.state = "running"
        elif isinstance(event, ApprovalRequested):
            self._tools_started()
            step = self._step(event.id)
            if step is None:
                self.tool_steps.append(ToolStep(event.id, event.name, event.code, state="awaiting approval",
                                                reasoning=self._call_reasoning.get(event.id, "")))
            else:
                step.state = "awaiting approval"
        elif isinstance(event, ApprovalResolved):
            step = self._step(event.id)
            if step is not None:
                step.approved = event.approved
                step.state = "approved" if event.approved else "denied"
        elif isinstance(event, ToolCallFinished):
            step = self._step(event.id)
            if step is not None:
                step.result = event.result
                step.error = event.error
                step.seconds = event.seconds
                if step.state != "denied":
                    step.state = "error" if event.error else "done"

    def _tools_started(self) -> None:
        """The step's calls are all requested and now run: later reasoning is a new step."""
        self._batch_reasoning = None
        self._tools_ran = True
        self._step_start = len(self.reasoning)

    def delta_sinks(self) -> tuple[Callable[[str], None], Callable[[str], None], Callable[[Event], None] | None]:
        """Appenders for the client's per-token loop: text, reasoning, and the event log
        (None when events are not kept). Using them is what `feed` does for a `TextDelta`
        or `ReasoningDelta`, without the type dispatch."""
        return self._text.append, self._reasoning.append, (self.events.append if self.keep_events else None)

    def feed_all(self, events: Iterable[Event]) -> Response:
        for event in events:
            self.feed(event)
        return self

    def _step(self, step_id: str) -> ToolStep | None:
        for step in self.tool_steps:
            if step.id == step_id:
                return step
        return None

    @property
    def costs(self) -> dict[str, float]:
        """What the turn's priced requests cost, per currency code ("" when a price has none)."""
        return dict(self._costs)

    @property
    def interrupted(self) -> bool:
        """The user stopped the turn (the partial answer, if any, is kept)."""
        return self.error_kind == INTERRUPTED_KIND

    @property
    def code_blocks(self) -> list[CodeBlock]:
        return extract_code_blocks(self.text)

    @property
    def code(self) -> str:
        """All code blocks joined, the thing `-f code` puts into a cell."""
        return "\n\n".join(block.code for block in self.code_blocks)

    def json(self) -> Any:
        """The answer parsed as JSON (JSON mode); a fenced ```json block is accepted too."""
        import json

        text = self.text.strip()
        blocks = self.code_blocks
        if not text.startswith(("{", "[")) and blocks:
            text = blocks[0].code
        return json.loads(text)

    @property
    def ok(self) -> bool:
        return self.error is None

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        text = self.text
        preview = text if len(text) <= 60 else text[:57] + "..."
        state = f"error={self.error!r}" if self.error else f"finish_reason={self.finish_reason!r}"
        return (f"Response(model={self.model!r}, text={preview!r}, reasoning={len(self.reasoning)} chars, "
                f"tool_steps={len(self.tool_steps)}, {state})")

    def _repr_markdown_(self) -> str:
        """The answer for a notebook's Markdown renderer: model text under the rendering policy."""
        from .untrusted import markdown_text, safe_markdown

        if self.text:
            return safe_markdown(self.text)
        return f"*({markdown_text(self.error or 'empty response')})*"

    def raise_for_error(self) -> Response:
        """Raise the turn's failure as a `KimiError` (for scripts that prefer exceptions)."""
        if self.error is not None:
            from .errors import KimiError

            raise KimiError(self.error)
        return self

    def summary(self, timings: bool = True) -> dict[str, Any]:
        """A JSON-ready snapshot (the sidebar and the saved bundle's rich MIME type).

        ``timings=False`` leaves out durations, so a saved notebook compares stably. Its
        keys are ``sidebar.protocol.ResponseSummary``.
        """
        steps = [vars(step).copy() for step in self.tool_steps]
        if not timings:
            for step in steps:
                step.pop("seconds", None)
        return {
            "model": self.model,
            "text": self.text,
            "reasoning": self.reasoning,
            "notices": list(self.notices),
            "tool_steps": steps,
            # ``note`` ("price unknown: ...") only when there is one: saved outputs stay as they were.
            "usage": {k: v for k, v in vars(self.usage).items() if k not in ("note", "cache_write") or v is not None},
            "costs": dict(self._costs),
            "finish_reason": self.finish_reason,
            "cut": self.cut,
            "error": self.error,
            "error_kind": self.error_kind,
        }
