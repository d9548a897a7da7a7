"""The agent loop: ask, run the tools the model calls, send results back, repeat.

It is a `Strategy` of the one `Turn` (``kimi_jupyter.turn``), not a turn engine of its own:
the Turn sends each request, folds the events, and commits; this module decides, after
each request, which tools run and whether another request follows.

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

from ..conversation import assistant_message
from ..events import (
    ApprovalRequested,
    ApprovalResolved,
    Done,
    Notice,
    ToolCallFinished,
    ToolCallRequested,
    ToolCallStarted,
)
from ..response import Response
from ..secrets import secrets_of
from ..tracing import tool_span
from ..turn import Turn
from .approval import DENIED
from .tools import READ_ONLY, ToolResult, run_tool, tool_schemas

__all__ = ["AgentLimits", "AgentStrategy", "DENIED", "agent_strategy"]



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


class AgentStrategy:
    """The tool loop as a strategy of the one `Turn`: after each request, run the calls."""

    def __init__(self, shell: Any, approver: Approver, *, limits: AgentLimits | None = None,
                 web: bool = False) -> None:
        self.shell, self.approver, self.limits, self.web = shell, approver, limits, web
        self.notebook: Any = None  # notebook_tools.NotebookTools, when a notebook frontend answers
        self.mcp: Any = None  # mcp.McpTools, when MCP servers are configured
        self._asked = False

    def tools(self, turn: Turn) -> list[dict[str, Any]]:
        if not self._asked:  # once a turn: edit/insert/run cells only where a frontend applies them
            self._asked = True
            from .notebook_tools import for_turn

            self.notebook = for_turn(self.shell, self.approver, turn.emit, turn.settings)
            from .mcp import for_turn as mcp_tools  # the user's MCP servers (.kimi/mcp.json)

            self.mcp = mcp_tools(turn.settings, turn.say_first)
        return (tool_schemas(self.web) + (self.notebook.schemas() if self.notebook else [])
                + (self.mcp.schemas() if self.mcp else []))

    def close(self) -> None:
        if self.notebook:
            self.notebook.close()

    def after_step(self, turn: Turn, step: Response) -> bool:
        settings = turn.settings
        limits = self.limits or AgentLimits(settings.max_steps, settings.max_turn_cost, settings.agent_timeout)
        turn.added.append(assistant_message(step))
        if self.notebook:  # one step's edits are proposed together
            self.notebook.begin_step(step.tool_calls)
        images: list[dict[str, Any]] = []
        for call in step.tool_calls:
            with tool_span(turn, call.id, call.name, call.arguments) as traced:  # Kimi.tracing
                result = self.execute(turn, call)
                traced(result.text, result.error)
            turn.added.append({"role": "tool", "tool_call_id": call.id, "name": call.name, "content": result.text})
            images.extend(result.images)
        if images:
            turn.added.append({"role": "user", "content": [
                {"type": "text", "text": "Images produced by the tool calls above:"}, *images]})
        turn.consistent = len(turn.added)
        turn.steps += 1
        assert turn.total is not None
        limit = limits.reached(turn.steps, turn.total.usage.cost, time.monotonic() - turn.started)
        if limit:
            turn.emit(Notice(limit, "warning"))
            turn.emit(Done("limit"))
            turn.final = None
            return False
        return True

    def execute(self, turn: Turn, call: ToolCallRequested) -> ToolResult:
        emit, settings = turn.emit, turn.settings
        if call.name == "$web_search":
            # Moonshot runs the search itself: echo the arguments back unchanged.
            from ..web import search_notice  # count the search's reported cost

            emit(search_notice(turn.session, call.arguments))
            emit(ToolCallStarted(call.id, call.name, call.arguments))
            emit(ToolCallFinished(call.id, "(search run by the provider)", None, 0.0))
            return ToolResult(call.arguments)
        if self.notebook and call.name in self.notebook.names:
            return self.notebook.execute(call, emit, self.approver, settings.image_max_size)
        if self.mcp and call.name in self.mcp.names:  # through the same approval gate
            return self.mcp.execute(turn, call, self.approver)
        if call.name not in READ_ONLY:
            code = _code_of(call)
            emit(ApprovalRequested(call.id, call.name, code))
            decision = self.approver(call.id, call.name, code)
            emit(ApprovalResolved(call.id, bool(decision.approved), decision.how))
            if not decision.approved:
                emit(ToolCallFinished(call.id, DENIED, "denied", 0.0))
                return ToolResult(DENIED, error="denied")
        emit(ToolCallStarted(call.id, call.name, call.arguments))
        began = time.monotonic()
        result = run_tool(self.shell, call.name, call.arguments, frame_budget=settings.frame_budget,
                          image_max_size=settings.image_max_size,
                          secrets=secrets_of(settings))  # tool results never carry the key
        emit(ToolCallFinished(call.id, result.text, result.error, round(time.monotonic() - began, 3)))
        return result


def _code_of(call: ToolCallRequested) -> str:
    import json

    try:
        args = json.loads(call.arguments or "{}")
    except ValueError:
        return call.arguments
    code = args.get("code") if isinstance(args, dict) else None
    return code if isinstance(code, str) else call.arguments


def agent_strategy(shell: Any, *, auto: bool = False, web: bool = False,
                   approver: Approver | None = None, record: bool = True) -> AgentStrategy:
    """The agent for ``shell`` (tools act on it); asks before code runs unless ``auto``.
    ``record=False``: no one-line record of each approval (the turn's view lists the steps)."""
    if shell is None:
        from ..errors import KimiError

        raise KimiError("The agent needs IPython or Jupyter: its tools run in the notebook's kernel.")
    if approver is None:
        from .approval import choose_approver

        approver = choose_approver(shell, auto=auto, record=record)
    return AgentStrategy(shell, approver, web=web)
