"""``%kimi fix`` and JupyterLab's "Fix with Kimi" button: a minimal fix for the cell that failed.

What Kimi is sent (one ordinary turn through the turn engine, so budget, pre-flight, cache,
interrupt and the usage ledger all apply, and the turn is part of the cells' conversation):

* the failing cell's source;
* the traceback, trimmed to the frames that matter: frames in notebook cells, and the frame
  that raised; library frames in between are counted, not listed;
* a summary of each variable the cell uses (the same summaries as ``{name}``), and for the
  names that do not exist, the closest existing names;
* the earlier cells (from the kernel's input history) that assigned, defined or imported
  those names (and, for a name that does not exist, the names close to it).

Kimi answers with one sentence and the corrected cell; the code becomes an **edit proposal**
of the failing cell. In JupyterLab (or Notebook 7) with the extension, the proposal shows as a
diff with Accept / Reject at the failing cell, and Accept offers to run the cell again. The
proposal does not hold the kernel: the cell (or the button's request) ends as soon as the
proposal is shown, other cells run meanwhile, and the decision arrives later through the
notebook comm (:meth:`~kimi_jupyter.agent.frontend.NotebookFrontend.show`).
Elsewhere (nbclient, VS Code, the terminal) the diff is printed and the code stays in
``_kimi.code``. Which cell failed: the cell named by the button, else the cell of the last
exception (``sys.last_value``), found in the notebook by its source.
"""

from __future__ import annotations

import ast
import difflib
import html
import linecache
import re
import sys
import traceback
from dataclasses import dataclass
from typing import Any

__all__ = ["fix_magic", "fix_from_frontend", "trim_traceback", "build_fix_prompt", "FailingCell"]

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
VALUE_CHARS = 1200
CELL_CHARS = 3000
TRACE_LINES = 60
MAX_DEFINING_CELLS = 5
INSTRUCTION = (
    "Propose a minimal fix for this failing notebook cell. Answer with one or two sentences on the "
    "cause, then the complete corrected cell in a single ```python block. Change as little as "
    "possible and keep the rest of the cell as it is."
)


@dataclass
class FailingCell:
    source: str
    error: str  # the trimmed traceback, as text
    index: int | None = None  # 1-based, in the open notebook (when a frontend answered)
    cell_id: str | None = None
    execution_count: int | None = None


def _cell_files(shell: Any) -> dict[str, int]:
    return dict(getattr(getattr(shell, "compile", None), "_filename_map", {}) or {})


def trim_traceback(error: BaseException, shell: Any = None) -> str:
    """The frames that matter: those in notebook cells and the one that raised."""
    cells = _cell_files(shell) if shell is not None else {}
    frames = traceback.extract_tb(error.__traceback__)
    lines: list[str] = []
    skipped = 0
    for i, frame in enumerate(frames):
        in_cell = frame.filename in cells
        if in_cell or i == len(frames) - 1:
            if skipped and lines:  # frames before the first cell are IPython calling it: not shown
                lines.append(f"  ... {skipped} frame{'s' if skipped > 1 else ''} in library code ...")
            skipped = 0
            where = f"cell In[{cells[frame.filename]}]" if in_cell else _short_path(frame.filename)
            lines.append(f"  {where}, line {frame.lineno}, in {frame.name}")
            if frame.line:
                lines.append(f"    {frame.line.strip()}")
        else:
            skipped += 1
    lines.extend("".join(traceback.format_exception_only(type(error), error)).rstrip().splitlines())
    return "\n".join(lines[-TRACE_LINES:])


def _short_path(path: str) -> str:
    """A library file as its import path (``pandas/core/frame.py``): no user's folders."""
    for marker in ("site-packages/", "dist-packages/", "lib/python"):
        if marker in path:
            tail = path.rsplit(marker, 1)[1]
            return tail.split("/", 1)[1] if marker == "lib/python" and "/" in tail else tail
    return path.rsplit("/", 1)[-1]


def _trim_text(text: str) -> str:
    lines = _ANSI.sub("", text).rstrip().splitlines()
    return "\n".join(lines if len(lines) <= TRACE_LINES else ["...", *lines[-TRACE_LINES:]])


def _cell_of(error: BaseException, shell: Any) -> tuple[str, int | None] | None:
    """The source and execution count of the outermost notebook cell in the traceback."""
    cells = _cell_files(shell)
    for frame in traceback.extract_tb(error.__traceback__):
        if frame.filename in cells:
            number = cells[frame.filename]
            history = shell.user_ns.get("In") if shell is not None else None
            if isinstance(history, list) and 0 < number < len(history):
                return str(history[number]), number
            return "".join(linecache.getlines(frame.filename)), number
    return None


def _names(source: str) -> tuple[list[str], set[str]]:
    """Names the cell reads (in order of first use) and names it binds."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return [], set()
    used: dict[str, None] = {}
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                used.setdefault(node.id, None)
            else:
                bound.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
    return list(used), bound


def _defines(source: str, name: str) -> bool:
    return name in _names(source)[1]


def _variables(shell: Any, names: list[str], settings: Any) -> list[str]:
    import builtins
    import types

    from .context import value_parts
    from .context.errors import ContextError

    namespace = shell.user_ns
    visible = [n for n in namespace if not n.startswith("_")]
    rows = []
    for name in names:
        if hasattr(builtins, name) and name not in namespace:
            continue
        if name not in namespace:
            close = difflib.get_close_matches(name, visible, n=3)
            hint = f" (existing names that look close: {', '.join(close)})" if close else ""
            rows.append(f"- {name}: not defined{hint}")
            continue
        value = namespace[name]
        if isinstance(value, (types.ModuleType, types.FunctionType, type)):
            rows.append(f"- {name}: {type(value).__name__}")
            continue
        try:
            parts = value_parts(value, name, frame_budget=min(settings.frame_budget, 600), repr_chars=VALUE_CHARS)
            text = "".join(p["text"] for p in parts if p.get("type") == "text").strip()
        except ContextError as error:
            text = str(error)
        except Exception as error:  # a summary must never break the fix
            text = f"(could not summarise: {type(error).__name__})"
        rows.append(f"- {name}: {text[:VALUE_CHARS]}")
    return rows


def _defining_cells(shell: Any, names: list[str], skip: int | None) -> list[tuple[int, str]]:
    history = shell.user_ns.get("In")
    if not isinstance(history, list):
        return []
    found: dict[int, str] = {}
    for name in names:
        for number in range(len(history) - 1, 0, -1):
            if number == skip:
                continue
            source = str(history[number])
            if _defines(source, name):
                found[number] = source
                break
    return sorted(found.items())[-MAX_DEFINING_CELLS:]


def build_fix_prompt(shell: Any, cell: FailingCell, settings: Any) -> str:
    used, bound = _names(cell.source)
    names = [n for n in used if n not in bound]
    parts = [INSTRUCTION, "", "Failing cell:", _fence(cell.source, "python"), "",
             "Error (traceback trimmed to the frames that matter):", _fence(cell.error)]
    rows = _variables(shell, names, settings)
    if rows:
        parts += ["", "Variables the cell uses:", *rows]
    visible = [n for n in shell.user_ns if not n.startswith("_")]
    close = [m for n in names if n not in shell.user_ns for m in difflib.get_close_matches(n, visible, n=2)]
    defining = _defining_cells(shell, names + close, cell.execution_count)
    if defining:
        parts += ["", "Earlier cells that defined them:"]
        for number, source in defining:
            text = source if len(source) <= CELL_CHARS else source[:CELL_CHARS] + "\n# ... (cut)"
            parts += [f"In [{number}]:", _fence(text, "python")]
    return "\n".join(parts)


def _fence(text: str, lang: str = "") -> str:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{text.rstrip()}\n{fence}"


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def _failing_cell(shell: Any, frontend: Any, cell_id: str | None) -> FailingCell | str:
    """The cell to fix, or a one-line reason why there is none."""
    error = getattr(sys, "last_value", None)
    origin = _cell_of(error, shell) if isinstance(error, BaseException) else None
    cells = frontend.snapshot() if frontend is not None else []
    if cell_id:
        cell = next((c for c in cells if c.id == cell_id), None)
        if cell is None:
            return "That cell is not in the open notebook any more."
        if origin is not None and origin[0].strip() == cell.source.strip():
            trace = trim_traceback(error, shell)  # type: ignore[arg-type]
        elif cell.has_error:
            trace = _trim_text(cell.outputs)
        else:
            return f"Cell {cell.index} shows no error: run it, and press Fix with Kimi if it fails."
        return FailingCell(cell.source, trace, cell.index, cell.id, cell.execution_count)
    if origin is None:
        return "No failing cell found: run the cell that fails, then %kimi fix."
    source, number = origin
    failing = FailingCell(source, trim_traceback(error, shell), execution_count=number)  # type: ignore[arg-type]
    match = [c for c in cells if c.source.strip() == source.strip()]
    if match:
        best = max(match, key=lambda c: (c.has_error, c.execution_count or 0))
        failing.index, failing.cell_id = best.index, best.id
    return failing


def run_fix(shell: Any, *, cell_id: str | None = None, display: str | None = None, button: bool = False) -> Any:
    """Ask for the fix, then propose it. Returns the turn's Response (or None)."""
    from .agent.frontend import connect
    from .agent.proposals import Proposal, ProposalSet
    from .display import choose_renderer
    from .errors import KimiError
    from .session import get_session
    from .transcript import add_to_last_turn
    from .turn import TurnRequest, run_turn

    session = get_session()
    frontend = None
    try:
        settings = session.settings()
        if settings.replay != "only":  # replayed from the recording: no key needed
            settings.require_key()
        frontend = connect(shell, headless_ok=button)
        failing = _failing_cell(shell, frontend, cell_id)
        if isinstance(failing, str):
            _tell(frontend, failing)
            return None
        prompt = build_fix_prompt(shell, failing, settings)
        renderer = choose_renderer(display or settings.display, shell=shell)
        response = run_turn(session, TurnRequest(content=prompt, settings=settings, source="fix"), renderer)
        shell.user_ns["_kimi"] = response
        if response.error is not None:
            _tell(frontend, f"Kimi could not answer: {response.error}")
            return response
        code = response.code
        if not code.strip():
            _tell(frontend, "Kimi proposed no code; its answer: " + response.text[:1500])
            return response
        explanation = _explanation(response.text)
        proposal = Proposal("edit", failing.index or 0, failing.cell_id, code, old=failing.source,
                            explanation=explanation)
        if frontend is None or failing.cell_id is None:
            _show_static(failing, code, explanation)
            where = f"Edit In [{failing.execution_count}]" if failing.execution_count else "Edit the failing cell"
            add_to_last_turn(session.notebook, proposal.record() | {"target": where,
                                                           "status": "shown only (no frontend to apply it)"})
            return response
        if proposal.old == proposal.new:
            _tell(frontend, "Kimi's fix is the same as the cell's source: " + explanation)
            return response
        record = proposal.record()
        add_to_last_turn(session.notebook, record)

        def decided(_proposals: Any) -> None:  # later, in the idle kernel: the transcript keeps the outcome
            record.update(proposal.record())

        # The proposal does not hold the kernel: shown at its cell, it is decided later.
        frontend.show(ProposalSet([proposal]), title="Fix with Kimi", on_decided=decided)
        print(f"Fix for cell {proposal.index}: shown at the cell. Accept or Reject it there "
              "(the kernel is free meanwhile; after Accept, Run cell runs it again).")
        return response
    except KimiError as error:
        _tell(frontend, str(error))
        return None
    finally:
        if frontend is not None and not frontend.showing:
            frontend.close()


def _explanation(text: str) -> str:
    before = text.split("```", 1)[0].strip()
    return before[:600] if before else "Kimi proposes this fix."


def _tell(frontend: Any, message: str) -> None:
    """A one-line outcome: in the notebook's proposal area when a frontend asked, else stderr."""
    _say(message)
    if frontend is not None:
        try:
            frontend._send({"action": "message", "id": "fix", "title": "Fix with Kimi", "text": message[:2000]})
        except Exception:
            pass


def _show_static(cell: FailingCell, code: str, explanation: str) -> None:
    """No frontend can apply edits: show the diff, and where the code is."""
    from IPython.display import display

    from .agent.proposals import diff_text

    where = f"In [{cell.execution_count}]" if cell.execution_count else "the failing cell"
    diff = diff_text(cell.source, code)
    head = (f"Proposed fix for {where}. This frontend cannot apply edits (open the notebook in JupyterLab "
            "with kimi-jupyter to Accept/Reject); the fixed code is in _kimi.code.")
    rows = "".join(
        f"<div style='background:{'rgba(46,160,67,.22)' if line.startswith('+') else 'rgba(248,81,73,.22)' if line.startswith('-') else 'transparent'}'>"
        f"{html.escape(line) or '&nbsp;'}</div>" for line in diff.split("\n"))
    display({"text/plain": f"{explanation}\n{head}\n{diff}",
             "text/html": (f"<div class='kimi-fix'><p>{html.escape(explanation)}</p><p><i>{html.escape(head)}</i></p>"
                           f"<pre style='padding:4px 0'>{rows}</pre></div>")}, raw=True)


def fix_magic(magics: Any, rest: str) -> None:
    """``%kimi fix [--cell-id ID]``"""
    words = rest.split()
    cell_id = None
    if words[:1] == ["--cell-id"] and len(words) == 2:
        cell_id = words[1]
    elif words:
        _say("Use: %kimi fix   (run it after the cell that failed)")
        return
    run_fix(magics.shell, cell_id=cell_id)


def fix_from_frontend(cell_id: str) -> None:
    """The Fix with Kimi button: fix ``cell_id``; the answer shows in the proposal card."""
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        return
    try:
        run_fix(shell, cell_id=str(cell_id)[:200], display="none", button=True)
    except KeyboardInterrupt:
        pass
