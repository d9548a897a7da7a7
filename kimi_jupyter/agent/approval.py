"""The user's yes or no before model-proposed code runs.

:func:`choose_approver` gives the agent loop a callable ``approver(call_id, tool, code)`` that
returns a :class:`Decision`. Code proposed by the model must never run without a yes, so every
path that cannot ask ends in a deny.

How the question is asked is decided at each call, from the request the kernel is executing:

1. ``auto=True`` (``--yes`` / ``%config Kimi.auto_approve = True``): approved, ``how="auto"``.
2. In a Jupyter kernel whose current execute request has ``allow_stdin`` False (nbclient,
   nbval, papermill, ``jupyter execute``: nobody is there to answer, and no frontend can be
   assumed to render widgets): denied, ``how="no-ui"``, at once.
3. In a kernel with ``allow_stdin`` True (a person's frontend is attached):

   * ``mode="widget"``: Approve/Deny buttons, if ipywidgets is importable and this thread's
     shell queue can be pumped (see :mod:`kimi_jupyter.agent.ui_poll`); otherwise stdin.
   * ``mode="auto"`` (default): the same buttons when the request also comes from a notebook
     UI (its metadata has a ``cellId``, as JupyterLab, Notebook 7 and VS Code send);
     otherwise the stdin prompt, which every stdin-capable frontend shows (jupyter console
     and qtconsole render no widgets, and a widget there would wait forever).
   * ``mode="stdin"``: the stdin prompt.

4. Outside a kernel (terminal IPython, plain Python): the stdin prompt if stdin is a
   terminal, else denied with ``how="no-ui"``.

The widget shows two buttons, "Run it" and "Don't run", above the code (so they stay in view
however long the code is); the cell blocks until one is clicked, with the clicks handled while
it waits. Afterwards the widget is replaced by a static one-line record ("run_python:
approved: ran" / "run_python: denied") so a saved notebook shows what happened; with
``record=False`` (a ``%%kimi --agent`` turn, whose view lists every step inside its answer)
it is removed instead. ``timeout`` (seconds, widget only) denies with
``how="timeout"``. A KeyboardInterrupt while waiting (widget or stdin) cleans up and
propagates; the agent loop stops on it.
"""

from __future__ import annotations

import html
import logging
import re
import sys
import threading
from dataclasses import dataclass
from typing import Any, Protocol

from . import ui_poll

log = logging.getLogger(__name__)

MODES = ("auto", "widget", "stdin")

#: ``Decision.how`` values.
HOW_AUTO = "auto"
HOW_WIDGET = "widget"
HOW_STDIN = "stdin"
HOW_NO_UI = "no-ui"
HOW_TIMEOUT = "timeout"

DENIED = "The user declined to run this code. Do not retry it unchanged; explain or propose something else."  # what the model hears

APPROVE_LABEL = "Run it"
DENY_LABEL = "Don't run"
STDIN_PROMPT = "Run this code? [y/N] "
_YES = frozenset({"y", "yes"})


@dataclass(frozen=True)
class Decision:
    """The answer to one approval request."""

    approved: bool
    how: str  # "auto", "widget", "stdin", "no-ui", "timeout" ("interrupted" is for the loop)


class Approver(Protocol):
    def __call__(self, call_id: str, tool: str, code: str) -> Decision: ...


def choose_approver(
    shell: Any = None,
    *,
    auto: bool = False,
    mode: str = "auto",
    timeout: float | None = None,
    record: bool = True,
) -> Approver:
    """The approver for this session; see the module doc for how it asks."""
    if mode not in MODES:
        raise ValueError(f"approval mode must be one of {', '.join(MODES)}, not {mode!r}")
    if timeout is not None and timeout <= 0:
        raise ValueError("timeout must be a positive number of seconds, or None")
    if auto:
        return AutoApprover()
    return InteractiveApprover(shell, mode=mode, timeout=timeout, record=record)


class AutoApprover:
    """Approves everything; only for users who opted in."""

    def __call__(self, call_id: str, tool: str, code: str) -> Decision:
        return Decision(True, HOW_AUTO)


class InteractiveApprover:
    """Asks the user through a widget or stdin; denies when neither can ask."""

    def __init__(
        self, shell: Any = None, *, mode: str = "auto", timeout: float | None = None, record: bool = True
    ) -> None:
        self._shell = shell
        self.mode = mode
        self.timeout = timeout
        self.record = record

    @property
    def shell(self) -> Any:
        if self._shell is not None:
            return self._shell
        try:
            from IPython import get_ipython
        except ImportError:  # pragma: no cover - IPython is a dependency
            return None
        return get_ipython()

    def channel(self) -> str:
        """How a call made now would ask: "widget", "stdin" or "no-ui"."""
        return pick_channel(self.shell, self.mode)

    def __call__(self, call_id: str, tool: str, code: str) -> Decision:
        shell = self.shell
        channel = pick_channel(shell, self.mode)
        if channel == "widget":
            decision = _ask_widget(shell, call_id, tool, code, self.timeout, self.record)
            if decision is not None:
                return decision
            channel = "stdin"  # the widget could not be shown; stdin is allowed
        if channel == "stdin":
            return _ask_stdin(tool, code)
        return Decision(False, HOW_NO_UI)


# -- choosing the channel ---------------------------------------------------------------


def pick_channel(shell: Any, mode: str = "auto") -> str:
    """ "widget", "stdin" or "no-ui" for a call made now on this thread (module doc, rule 2-4)."""
    kernel = getattr(shell, "kernel", None) if shell is not None else None
    if kernel is None or getattr(kernel, "session", None) is None:
        return "stdin" if _stdin_is_terminal() else "no-ui"
    parent = _current_request(kernel)
    content = parent.get("content") or {}
    allow_stdin = content.get("allow_stdin") if parent else getattr(kernel, "_allow_stdin", False)
    if not allow_stdin:
        return "no-ui"
    if mode == "stdin":
        return "stdin"
    if (mode == "widget" or _from_notebook_ui(parent)) and _widgets_importable() and ui_poll.can_pump(kernel):
        return "widget"
    return "stdin"


def _current_request(kernel: Any) -> dict[str, Any]:
    try:
        parent = kernel.get_parent("shell")
    except Exception:
        parent = getattr(kernel, "_parent_header", None)
    return parent if isinstance(parent, dict) else {}


def _from_notebook_ui(parent: dict[str, Any]) -> bool:
    metadata = parent.get("metadata") or {}
    return isinstance(metadata, dict) and bool(metadata.get("cellId") or metadata.get("cell_id"))


def _widgets_importable() -> bool:
    try:
        import ipywidgets  # noqa: F401
    except Exception:
        return False
    return True


def _stdin_is_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except Exception:
        return False


# -- stdin ------------------------------------------------------------------------------


def _ask_stdin(tool: str, code: str) -> Decision:
    print(f"Kimi wants to run this code ({tool}):", flush=True)
    print(_indent(code), flush=True)
    try:
        answer = input(STDIN_PROMPT)
    except EOFError:
        return Decision(False, HOW_STDIN)
    except Exception as error:
        if type(error).__name__ == "StdinNotImplementedError":
            return Decision(False, HOW_NO_UI)
        raise
    return Decision(answer.strip().lower() in _YES, HOW_STDIN)


# Characters that can make shown code differ from the code that runs: terminal escapes and
# other controls (a line can be erased or hidden), bidi overrides and zero-width marks
# ("Trojan Source"). The user approves what they read, so these are shown as escapes.
_DECEPTIVE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def _visible(code: str) -> str:
    """``code`` for display: line breaks as Python reads them (``\\r`` too), every other
    deceptive character written as its escape (e.g. ``\\x1b``)."""
    code = code.replace("\r\n", "\n").replace("\r", "\n")
    return _DECEPTIVE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), code)


def _indent(code: str) -> str:
    return "\n".join("    " + line for line in (_visible(code).splitlines() or [""]))


# -- widget -----------------------------------------------------------------------------


class _ApprovalWidget:
    """The code, "Run it" and "Don't run"; becomes a one-line record once decided."""

    def __init__(self, tool: str, code: str) -> None:
        import ipywidgets as widgets

        self.tool = tool
        self.code = code
        self._lock = threading.Lock()
        self._decided = threading.Event()
        self.approved: bool | None = None
        title = widgets.HTML(
            f"<b>Kimi wants to run this code</b> <code>{html.escape(tool)}</code> "
            "<span style='opacity:.7'>(nothing runs until you choose)</span>"
        )
        view = widgets.HTML(_code_html(code, max_height="16em"))
        self.approve_button = widgets.Button(description=APPROVE_LABEL, button_style="success", icon="play")
        self.deny_button = widgets.Button(description=DENY_LABEL, button_style="danger", icon="ban")
        self.approve_button.on_click(lambda _button: self._decide(True))
        self.deny_button.on_click(lambda _button: self._decide(False))
        # The buttons first: a long proposal must not push them out of the window.
        buttons = widgets.HBox([self.approve_button, self.deny_button, title],
                               layout=widgets.Layout(align_items="center", flex_flow="row wrap"))
        self.box = widgets.VBox([buttons, view])
        self._widgets = _widget_tree(self.box, widgets.Widget)

    def _decide(self, approved: bool) -> None:
        with self._lock:
            if self.approved is not None:
                return
            self.approved = approved
        self._decided.set()
        for button in (self.approve_button, self.deny_button):
            button.disabled = True

    def decided(self) -> bool:
        return self._decided.is_set()

    def comm_ids(self) -> list[str]:
        return [w.comm.comm_id for w in self._widgets if getattr(w, "comm", None) is not None]

    def bundle(self) -> dict[str, Any]:
        data = dict(self.box._repr_mimebundle_() or {})
        data["text/plain"] = (
            f"Kimi wants to run this code ({self.tool}); answer with the buttons "
            "(this frontend must show widgets; otherwise interrupt and use stdin approval):\n"
            + _indent(self.code)
        )
        return data

    def record(self, outcome: str) -> dict[str, Any]:
        line = f"{self.tool}: {outcome}"
        return {
            "text/plain": line,
            "text/html": (
                f"<details class='kimi-approval'><summary>{html.escape(line)}</summary>"
                f"{_code_html(self.code)}</details>"
            ),
        }

    def close(self) -> None:
        for widget in self._widgets:
            try:
                widget.close()
            except Exception:
                log.debug("could not close an approval widget", exc_info=True)


def _widget_tree(root: Any, widget_type: type) -> list[Any]:
    """``root`` and every widget it refers to (children, layout, style), each once."""
    found: dict[int, Any] = {}
    todo = [root]
    while todo:
        widget = todo.pop()
        if id(widget) in found:
            continue
        found[id(widget)] = widget
        for name in getattr(widget, "keys", ()):
            value = getattr(widget, name, None)
            values = value if isinstance(value, (list, tuple)) else (value,)
            todo.extend(v for v in values if isinstance(v, widget_type))
    return list(found.values())


def _code_html(code: str, max_height: str = "24em") -> str:
    return (
        f"<pre style='margin:4px 0;padding:6px 8px;max-height:{max_height};overflow:auto;"
        "background:var(--jp-layout-color2,#f5f5f5);border-radius:4px'>"
        f"<code class='language-python'>{html.escape(_visible(code))}</code></pre>"
    )


def _ask_widget(
    shell: Any, call_id: str, tool: str, code: str, timeout: float | None, record: bool = True
) -> Decision | None:
    """Ask with buttons; None when the widget cannot be used (the caller falls back to stdin)."""
    try:
        from IPython.display import display

        pump = ui_poll.ShellPump.open(shell.kernel)
    except Exception:
        log.debug("approval widget unavailable", exc_info=True)
        return None
    ui: _ApprovalWidget | None = None
    handle = None
    outcome = "interrupted: not run"
    try:
        try:
            ui = _ApprovalWidget(tool, code)
            handle = display(ui.bundle(), raw=True, display_id=True)
            pump.watch(ui.comm_ids())
        except Exception:
            log.warning("could not show the approval widget; asking on stdin", exc_info=True)
            outcome = ""
            return None
        if not pump.wait(ui.decided, timeout):
            outcome = f"denied (no answer in {timeout:g} s)"
            return Decision(False, HOW_TIMEOUT)
        outcome = "approved: ran" if ui.approved else "denied"
        return Decision(bool(ui.approved), HOW_WIDGET)
    finally:
        try:
            if ui is not None:
                if handle is not None:
                    if outcome and record:
                        handle.update(ui.record(outcome), raw=True)
                    else:
                        handle.update({"text/plain": ""}, raw=True)
                ui.close()
        finally:
            pump.close()
