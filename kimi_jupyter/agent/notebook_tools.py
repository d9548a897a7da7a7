"""The agent's notebook tools: read cells freely, change them only through accepted proposals.

Tools the model sees (only when a notebook frontend answered, see `agent.frontend`):

* ``list_cells()``: index (1-based), type, first line, execution count, error marker.
* ``read_cell(index)``: the source and text outputs, cut with a note.
* ``edit_cell(index, source)`` and ``insert_cell(after, source, cell_type)``: proposals. All
  edits and inserts of one model step are shown together (Accept all / Reject all); the
  result says what the user decided, with their note on a rejection.
* ``run_cell(index)``: runs the cell's current source in the kernel, after the same
  approval as ``run_python`` (the approver of the turn; ``--yes`` covers it like any run).
  The output goes back to the model and shows in the agent's answer; the cell's own output
  area is left as it was.

Edits are not covered by ``auto_approve`` / ``--yes`` (they are about running code); only the
explicit ``Kimi.auto_apply_edits`` opt-in lets the frontend apply proposals without a click
(the card still shows each diff, and the user can undo each step). Where no frontend can apply edits the tools are not offered, and the turn
shows one notice per kernel saying so (``-f code`` and Insert below keep working there), where
a person follows the turn (VS Code, the terminal, JupyterLab without the extension); headless
runs (nbclient, papermill) get no notice, so executed reports do not repeat it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from ..events import ApprovalRequested, ApprovalResolved, Notice, ToolCallFinished, ToolCallStarted
from .frontend import Cell, NotebookFrontend, connect
from .proposals import Proposal, ProposalSet
from .tools import ToolResult, _clip

__all__ = ["NotebookTools", "NOTEBOOK_TOOLS", "SCHEMAS", "for_turn", "UNAVAILABLE"]

NOTEBOOK_TOOLS = frozenset({"list_cells", "read_cell", "edit_cell", "insert_cell", "run_cell"})
PROPOSING = frozenset({"edit_cell", "insert_cell"})
READ_CHARS = 6000
UNAVAILABLE = Notice(
    "Notebook tools (edit or insert cells as reviewable diffs) are off here: they need the notebook "
    "open in JupyterLab or Notebook 7 with the kimi-jupyter extension. -f code and Insert below still work.",
    "info",
)
_told_unavailable = False


def _fn(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "description": description,
                                             "parameters": {"type": "object", "properties": properties,
                                                            "required": required}}}


_INDEX = {"type": "integer", "description": "1-based cell index, as list_cells shows it"}
SCHEMAS: list[dict[str, Any]] = [
    _fn("list_cells", "List the notebook's cells: index, type, first line, execution count, and whether "
        "the cell shows an error.", {}, []),
    _fn("read_cell", "Read one cell: its source and its text outputs.", {"index": _INDEX}, ["index"]),
    _fn("edit_cell", "Propose a new source for a cell. The user sees a diff and accepts or rejects it; "
        "nothing changes until they accept. Give the complete new source.",
        {"index": _INDEX, "source": {"type": "string", "description": "the cell's complete new source"}},
        ["index", "source"]),
    _fn("insert_cell", "Propose a new cell after the given cell (0: at the top). The user accepts or rejects it.",
        {"after": {"type": "integer", "description": "1-based index of the cell it goes after; 0 for the top"},
         "source": {"type": "string"},
         "cell_type": {"type": "string", "enum": ["code", "markdown"], "description": "default code"}},
        ["after", "source"]),
    _fn("run_cell", "Run a code cell's current source in the kernel (the user approves first) and return "
        "its output.", {"index": _INDEX}, ["index"]),
]


def _args(call: Any) -> dict[str, Any]:
    try:
        args = json.loads(call.arguments or "{}")
    except ValueError:
        return {}
    return args if isinstance(args, dict) else {}


def _index(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _first_line(source: str) -> str:
    line = next((ln for ln in source.splitlines() if ln.strip()), "")
    return line if len(line) <= 80 else line[:79] + "…"


def list_text(cells: list[Cell]) -> str:
    if not cells:
        return "(the notebook has no cells)"
    rows = []
    for cell in cells:
        count = f" [In {cell.execution_count}]" if cell.execution_count is not None else ""
        error = " (shows an error)" if cell.has_error else ""
        rows.append(f"{cell.index}. {cell.cell_type}{count}{error}: {_first_line(cell.source) or '(empty)'}")
    return "\n".join(rows)


def read_text(cell: Cell) -> str:
    source = cell.source if len(cell.source) <= READ_CHARS else (
        cell.source[:READ_CHARS] + f"\n… ({len(cell.source) - READ_CHARS} more characters of source cut)")
    text = f"Cell {cell.index} ({cell.cell_type}):\n{source}"
    if cell.outputs:
        text += "\n\nOutputs:\n" + _clip(cell.outputs, READ_CHARS)
    return text


class NotebookTools:
    """The notebook tools of one turn, bound to its frontend; see the module doc."""

    def __init__(self, frontend: NotebookFrontend, shell: Any, auto_apply: bool = False,
                 secrets: tuple[str, ...] = ()) -> None:
        self.frontend = frontend
        self.secrets = secrets  # masked in every result, before it is shown, cached or sent
        self.shell = shell
        self.auto_apply = auto_apply  # Kimi.auto_apply_edits: the user's explicit opt-in
        self.names = NOTEBOOK_TOOLS
        self._step: list[Any] = []
        self._results: dict[str, ToolResult] = {}
        self.records: list[dict[str, Any]] = []  # every proposal's outcome, for exports

    def schemas(self) -> list[dict[str, Any]]:
        return list(SCHEMAS)

    def begin_step(self, calls: list[Any]) -> None:
        """The calls of a new model step: its edits and inserts are proposed together."""
        self._step = [c for c in calls if c.name in PROPOSING]
        self._results = {}

    def close(self) -> None:
        self.frontend.close()

    def _cell(self, cells: list[Cell], index: Any) -> Cell | ToolResult:
        number = _index(index)
        if number is None or not 1 <= number <= len(cells):
            return ToolResult(f"There is no cell {index!r}: the notebook has {len(cells)} cells (1 to "
                              f"{len(cells)}). Call list_cells.", error="no such cell")
        return cells[number - 1]

    def execute(self, call: Any, emit: Callable[[Any], None], approver: Any, image_max_size: tuple[int, int]) -> ToolResult:
        """Run one notebook tool call, emitting its events like the loop does; the key is
        masked in what it returns and shows (cells, their outputs, a run's output)."""
        if not self.secrets:
            return self._execute(call, emit, approver, image_max_size)
        from ..secrets import redact

        secrets = self.secrets

        def masked_emit(event: Any) -> None:
            if isinstance(event, ToolCallFinished):
                event = ToolCallFinished(event.id, redact(event.result, secrets), redact(event.error, secrets),
                                         event.seconds)
            emit(event)

        result = self._execute(call, masked_emit, approver, image_max_size)
        return ToolResult(redact(result.text, secrets), redact(result.error, secrets), result.images)

    def _execute(self, call: Any, emit: Callable[[Any], None], approver: Any,
                 image_max_size: tuple[int, int]) -> ToolResult:
        if call.name == "run_cell":
            return self._run_cell(call, emit, approver, image_max_size)
        emit(ToolCallStarted(call.id, call.name, call.arguments))
        began = time.monotonic()
        try:
            if call.name in PROPOSING:
                if call.id not in self._results:
                    self._propose_step(call)
                result = self._results.pop(call.id, None) or ToolResult("No proposal was made.", error="internal")
            else:
                result = self._read(call)
        except ConnectionError as error:
            result = ToolResult(f"The notebook could not be reached: {error}", error="no notebook")
        emit(ToolCallFinished(call.id, result.text, result.error, round(time.monotonic() - began, 3)))
        return result

    def _read(self, call: Any) -> ToolResult:
        cells = self.frontend.snapshot()
        if call.name == "list_cells":
            return ToolResult(list_text(cells))
        found = self._cell(cells, _args(call).get("index"))
        return found if isinstance(found, ToolResult) else ToolResult(read_text(found))

    def _propose_step(self, first: Any) -> None:
        """Turn this step's edit and insert calls (from ``first`` on) into one proposal set."""
        calls = self._step if first in self._step else [first]
        calls = calls[calls.index(first):]
        cells = self.frontend.snapshot()
        proposals: list[tuple[Any, Proposal]] = []
        for call in calls:
            made = self._proposal(call, cells)
            if isinstance(made, ToolResult):
                self._results[call.id] = made
            else:
                proposals.append((call, made))
        if not proposals:
            return
        decided = self.frontend.propose(ProposalSet([p for _, p in proposals]), auto=self.auto_apply)
        from ..transcript import note_proposal

        for call, proposal in proposals:
            self.records.append(proposal.record())
            note_proposal(proposal.record())  # exports show the diff and what the user decided
            error = None if proposal.status == "accepted" else proposal.status
            self._results[call.id] = ToolResult(decided.result_text(proposal), error=error)

    def _proposal(self, call: Any, cells: list[Cell]) -> Proposal | ToolResult:
        args = _args(call)
        source = args.get("source")
        if not isinstance(source, str):
            return ToolResult(f"{call.name} needs a 'source' string.", error="invalid arguments")
        try:
            if call.name == "edit_cell":
                found = self._cell(cells, args.get("index"))
                if isinstance(found, ToolResult):
                    return found
                if found.source == source:
                    return ToolResult(f"Cell {found.index} already has exactly this source; nothing to propose.")
                return Proposal("edit", found.index, found.id, source, old=found.source,
                                cell_type=found.cell_type if found.cell_type in ("code", "markdown", "raw") else "code",
                                call_id=call.id)
            after = _index(args.get("after"))
            if after is None or not 0 <= after <= len(cells):
                return ToolResult(f"'after' must be 0 (the top) to {len(cells)}, not {args.get('after')!r}.",
                                  error="no such cell")
            cell_type = args.get("cell_type") or "code"
            return Proposal("insert", after, cells[after - 1].id if after else None, source,
                            cell_type=cell_type if cell_type in ("code", "markdown") else "code", call_id=call.id)
        except ValueError as error:
            return ToolResult(str(error), error="invalid arguments")

    def _run_cell(self, call: Any, emit: Callable[[Any], None], approver: Any,
                  image_max_size: tuple[int, int]) -> ToolResult:
        from .approval import DENIED
        from .tools import run_python

        try:
            cells = self.frontend.snapshot()
        except ConnectionError as error:
            result = ToolResult(f"The notebook could not be reached: {error}", error="no notebook")
            emit(ToolCallFinished(call.id, result.text, result.error, 0.0))
            return result
        found = self._cell(cells, _args(call).get("index"))
        if isinstance(found, Cell) and found.cell_type != "code":
            found = ToolResult(f"Cell {found.index} is a {found.cell_type} cell; only code cells run.",
                               error="not code")
        if isinstance(found, ToolResult):
            emit(ToolCallFinished(call.id, found.text, found.error, 0.0))
            return found
        emit(ApprovalRequested(call.id, call.name, found.source))
        decision = approver(call.id, call.name, found.source)
        emit(ApprovalResolved(call.id, bool(decision.approved), decision.how))
        if not decision.approved:
            emit(ToolCallFinished(call.id, DENIED, "denied", 0.0))
            return ToolResult(DENIED, error="denied")
        emit(ToolCallStarted(call.id, call.name, call.arguments))
        began = time.monotonic()
        try:
            result = run_python(self.shell, found.source, image_max_size, self.secrets)
        except KeyboardInterrupt:
            raise
        except Exception as error:
            result = ToolResult(f"The tool failed: {type(error).__name__}: {error}", error=type(error).__name__)
        emit(ToolCallFinished(call.id, result.text, result.error, round(time.monotonic() - began, 3)))
        return result


def _someone_reads(shell: Any) -> bool:
    """A person follows this turn live (not nbclient / papermill, whose saved reports would
    repeat the sentence in every run)."""
    from .approval import pick_channel

    try:
        return pick_channel(shell) != "no-ui"
    except Exception:
        return False


def for_turn(shell: Any, approver: Any, emit: Callable[[Any], None], settings: Any = None) -> NotebookTools | None:
    """The notebook tools for an agent turn, or None (with one notice per kernel) without a frontend."""
    global _told_unavailable
    chat_comm_id = getattr(approver, "comm_id", None)  # a sidebar turn: its chat comm names the notebook
    try:
        frontend = connect(shell, chat_comm_id=chat_comm_id if isinstance(chat_comm_id, str) else None)
    except KeyboardInterrupt:
        raise
    except Exception:
        frontend = None
    if frontend is None:
        if not _told_unavailable and _someone_reads(shell):
            _told_unavailable = True
            emit(UNAVAILABLE)
        return None
    from ..secrets import secrets_of

    return NotebookTools(frontend, shell, auto_apply=bool(getattr(settings, "auto_apply_edits", False)),
                         secrets=secrets_of(settings) if settings is not None else secrets_of(None))
