"""The agent loop: ask, run the tools the model calls, send results back, repeat.

Safety rules live here, not in the tools: ``run_python`` never runs without a yes from the
approver (whatever any data, cell or tool result says), read-only tools need none, and the
loop stops cleanly at the step, cost and wall-clock limits, saying which one. Assistant
tool-call messages are sent back with their ``reasoning_content`` byte for byte, which Kimi
requires while thinking is on. Every step is an event, so the live view, the saved bundle
and the sidebar all show the same story.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..events import (
    ApprovalRequested,
    ApprovalResolved,
    Done,
    Event,
    Failed,
    Notice,
    TextDelta,
    ToolCallFinished,
    ToolCallRequested,
    ToolCallStarted,
)
from ..response import Response
from ..session import Session
from ..turn import INTERRUPTED, Renderer, TurnRequest
from .tools import READ_ONLY, ToolResult, run_tool, tool_schemas

__all__ = ["AgentLimits", "run_agent_turn", "DENIED"]

DENIED = "The user declined to run this code. Do not retry it unchanged; explain or propose something else."


@dataclass(frozen=True)
class AgentLimits:
    max_steps: int = 10
    max_cost: float | None = None
    timeout: float | None = 300.0

    def reached(self, steps: int, cost: float | None, elapsed: float) -> str | None:
        if steps >= self.max_steps:
            return f"Stopped after {steps} tool steps (the limit; raise %config Kimi.max_steps)."
        if self.max_cost is not None and cost is not None and cost >= self.max_cost:
            return (
                f"Stopped: this turn has cost {cost:.4f}, at or over the limit of {self.max_cost:g} "
                "(%config Kimi.max_turn_cost)."
            )
        if self.timeout is not None and elapsed >= self.timeout:
            return f"Stopped after {elapsed:.0f} s (the time limit; raise %config Kimi.agent_timeout)."
        return None


Approver = Callable[[str, str, str], Any]  # (call_id, tool, code) -> Decision(approved, how)


def _assistant_message(step: Response) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": step.text or "",
        "reasoning_content": step.reasoning,
        "tool_calls": [
            {"id": c.id, "type": c.type or "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in step.tool_calls
        ],
    }


class _Loop:
    def __init__(
        self,
        session: Session,
        request: TurnRequest,
        renderer: Renderer,
        shell: Any,
        approver: Approver,
        limits: AgentLimits,
        web: bool,
    ):
        self.session, self.request, self.renderer = session, request, renderer
        self.shell, self.approver, self.limits, self.web = shell, approver, limits, web
        self.total = Response(model=request.settings.model)
        self.added: list[dict[str, Any]] = []
        self.consistent = 0  # length of `added` at the last point the history was complete
        self.requests = 0
        self.final: Response | None = None
        self.notices: set[Notice] = set()
        self.notebook: Any = None  # [notebook tools hook] agent.notebook_tools.NotebookTools or None

    def emit(self, event: Event) -> None:
        if isinstance(event, Notice):
            if event in self.notices:
                return  # one request after another says the same thing; say it once
            self.notices.add(event)
        self.total.feed(event)
        self.renderer.handle(event)

    def run(self) -> Response:
        settings = self.request.settings
        client = self.session.client(settings)
        base = self.request.messages(self.session)
        started = time.monotonic()
        steps = 0
        # [notebook tools hook] edit/insert/run cells, offered only when a notebook frontend answers
        from .notebook_tools import for_turn

        self.notebook = for_turn(self.shell, self.approver, self.emit, settings)
        schemas = tool_schemas(self.web) + (self.notebook.schemas() if self.notebook else [])
        while True:
            stream = client.stream_chat(base + self.added, tools=schemas)
            self.requests += 1
            step = stream.response
            separate = bool(self.total.text)
            try:
                for event in stream:
                    if isinstance(event, TextDelta) and separate:
                        self.emit(TextDelta("\n\n"))
                        separate = False
                    if isinstance(event, Done) and step.tool_calls:
                        continue  # an intermediate step: the turn is not done
                    self.emit(event)
            finally:
                stream.close()
            self.final = step
            if step.error is not None or not step.tool_calls:
                return self.total
            self.added.append(_assistant_message(step))
            if self.notebook:  # [notebook tools hook] one step's edits are proposed together
                self.notebook.begin_step(step.tool_calls)
            images: list[dict[str, Any]] = []
            for call in step.tool_calls:
                result = self.execute(call)
                self.added.append(
                    {"role": "tool", "tool_call_id": call.id, "name": call.name, "content": result.text}
                )
                images.extend(result.images)
            if images:
                self.added.append(
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "Images produced by the tool calls above:"},
                            *images,
                        ],
                    }
                )
            self.consistent = len(self.added)
            steps += 1
            limit = self.limits.reached(steps, self.total.usage.cost, time.monotonic() - started)
            if limit:
                self.emit(Notice(limit, "warning"))
                self.emit(Done("limit"))
                self.final = None
                return self.total

    def execute(self, call: ToolCallRequested) -> ToolResult:
        settings = self.request.settings
        if call.name == "$web_search":
            # Moonshot runs the search itself: echo the arguments back unchanged.
            self.emit(ToolCallStarted(call.id, call.name, call.arguments))
            self.emit(ToolCallFinished(call.id, "(search run by the provider)", None, 0.0))
            return ToolResult(call.arguments)
        if self.notebook and call.name in self.notebook.names:  # [notebook tools hook]
            return self.notebook.execute(call, self.emit, self.approver, settings.image_max_size)
        if call.name not in READ_ONLY:
            code = _code_of(call)
            self.emit(ApprovalRequested(call.id, call.name, code))
            decision = self.approver(call.id, call.name, code)
            self.emit(ApprovalResolved(call.id, bool(decision.approved), decision.how))
            if not decision.approved:
                self.emit(ToolCallFinished(call.id, DENIED, "denied", 0.0))
                return ToolResult(DENIED, error="denied")
        self.emit(ToolCallStarted(call.id, call.name, call.arguments))
        began = time.monotonic()
        result = run_tool(
            self.shell,
            call.name,
            call.arguments,
            frame_budget=settings.frame_budget,
            image_max_size=settings.image_max_size,
        )
        self.emit(ToolCallFinished(call.id, result.text, result.error, round(time.monotonic() - began, 3)))
        return result

    def commit(self) -> None:
        """Store the turn in memory, never leaving a tool call without its result."""
        conversation = self.session.conversation
        self.session.ledger.add(self.request.source, self.total.usage, self.requests)
        self.session.last = self.total
        if not self.request.history:
            return
        steps = self.added[: self.consistent]
        if not self.total.text and not steps:
            return  # nothing happened: the user can simply run the cell again
        conversation.add_user(self.request.content)
        conversation.messages.extend(steps)
        if self.final is not None and self.final.text:
            conversation.add_assistant(self.final, calls=[])
        else:
            # Stopped at a limit, failed or interrupted: close the exchange plainly.
            tail = self.total.text[-2000:]
            conversation.messages.append(
                {"role": "assistant", "content": tail or "(stopped before answering)"}
            )


def _code_of(call: ToolCallRequested) -> str:
    import json

    try:
        args = json.loads(call.arguments or "{}")
    except ValueError:
        return call.arguments
    code = args.get("code") if isinstance(args, dict) else None
    return code if isinstance(code, str) else call.arguments


def run_agent_turn(
    session: Session,
    request: TurnRequest,
    renderer: Renderer,
    *,
    shell: Any,
    approver: Approver,
    limits: AgentLimits | None = None,
    web: bool = False,
) -> Response:
    """Run a whole tool loop as one turn; KeyboardInterrupt stops it at once."""
    s = request.settings
    limits = limits or AgentLimits(s.max_steps, s.max_turn_cost, s.agent_timeout)
    loop = _Loop(session, request, renderer, shell, approver, limits, web)
    renderer.start(request.meta())
    interrupted = False
    try:
        loop.run()
    except KeyboardInterrupt:
        interrupted = True
        loop.final = None
        loop.emit(Failed(INTERRUPTED, "Interrupted", partial=bool(loop.total.text)))
    finally:
        if loop.notebook:  # [notebook tools hook]
            loop.notebook.close()
        renderer.finish(loop.total)
        loop.commit()
    if interrupted:
        raise KeyboardInterrupt
    return loop.total
