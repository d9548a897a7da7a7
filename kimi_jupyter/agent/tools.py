"""The tools Kimi may call in agent mode, run against the user's kernel namespace.

Names and schemas are what the model sees. ``run_python`` executes in the user's namespace
(only after approval, which the loop enforces); ``get_variable`` and ``list_variables`` are
read-only and go through the context layer, so a DataFrame is summarised exactly as a
``{name}`` reference would be. Both see the same names: no underscore names, nothing IPython
keeps for itself (``In``, ``Out``, ``_ih``, ``_oh``, ``_i1``, ``_1``, ...), nothing in
``user_ns_hidden``. Every result, whatever the tool, has the API key masked
(`kimi_jupyter.secrets.redact`) before it goes back to the model or onto the screen. Every tool returns a `ToolResult`: text for the tool message
and, optionally, image parts that go back to the model in a following user message.
"""

from __future__ import annotations

import json
import re
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ToolResult", "TOOL_SCHEMAS", "WEB_SEARCH", "READ_ONLY", "run_tool", "tool_schemas"]

RESULT_CHARS = 8000
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

TOOL_SCHEMAS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "run_python",
            "description": (
                "Run Python code in the user's Jupyter kernel (their live namespace). Returns "
                "stdout, stderr, the value of the last expression and displayed outputs; "
                "plots come back as images. The user must approve each run."
            ),
            "parameters": {
                "type": "object",
                "properties": {"code": {"type": "string", "description": "Python source to run"}},
                "required": ["code"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_variable",
            "description": (
                "Inspect one variable of the user's namespace: DataFrames as a summary "
                "(shape, dtypes, nulls, sample rows, stats), figures and images as images, "
                "other objects as a bounded repr."
            ),
            "parameters": {
                "type": "object",
                "properties": {"name": {"type": "string", "description": "variable name"}},
                "required": ["name"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "list_variables",
            "description": "List the user's variables with their types and shapes.",
            "parameters": {"type": "object", "properties": {}},
        },
    },
]

WEB_SEARCH: dict[str, Any] = {"type": "builtin_function", "function": {"name": "$web_search"}}
READ_ONLY = frozenset({"get_variable", "list_variables", "$web_search"})


def tool_schemas(web: bool = False) -> list[dict[str, Any]]:
    return [*TOOL_SCHEMAS, WEB_SEARCH] if web else list(TOOL_SCHEMAS)


@dataclass
class ToolResult:
    text: str
    error: str | None = None
    images: list[dict[str, Any]] = field(default_factory=list)


def _clip(text: str, limit: int = RESULT_CHARS, secrets: Iterable[str] = ()) -> str:
    if secrets:  # masked before the cut, so a cut can never leave part of a key
        from ..secrets import redact_text

        text = redact_text(text, secrets)
    return text if len(text) <= limit else text[:limit] + f"\n… ({len(text) - limit} more characters cut)"


_HIDDEN = {"In", "Out", "exit", "quit", "get_ipython", "open"}


def _visible(name: str, hidden: set[str]) -> bool:
    return isinstance(name, str) and not name.startswith("_") and name not in hidden


def _hidden(shell: Any) -> set[str]:
    return set(getattr(shell, "user_ns_hidden", {}) or {}) | _HIDDEN


def _user_names(shell: Any) -> list[str]:
    hidden = _hidden(shell)
    return sorted(n for n in shell.user_ns if _visible(n, hidden))


def _shape(value: Any) -> str:
    try:
        shape = getattr(value, "shape", None)
        if shape is not None:
            return f"shape {tuple(shape)}"
        if isinstance(value, (str, bytes, list, tuple, dict, set)):
            return f"len {len(value)}"
    except Exception:  # an odd object must not break the listing
        pass
    return ""


def list_variables(shell: Any) -> ToolResult:
    import types

    from ..context._repr import type_name

    rows = []
    for name in _user_names(shell):
        value = shell.user_ns[name]
        if isinstance(value, types.ModuleType):
            continue
        shape = _shape(value)
        rows.append(f"{name}: {type_name(value)}" + (f", {shape}" if shape else ""))
    return ToolResult("\n".join(rows) if rows else "(no user variables)")


def get_variable(shell: Any, name: str, frame_budget: int, image_max_size: tuple[int, int],
                 secrets: Iterable[str] = ()) -> ToolResult:
    from ..context import value_parts
    from ..context.errors import ContextError

    if not isinstance(name, str) or name not in shell.user_ns or not _visible(name, _hidden(shell)):
        return ToolResult(
            f"No variable named {name!r}. Call list_variables to see what exists.", error="unknown variable"
        )
    try:
        parts = value_parts(
            shell.user_ns[name], name, frame_budget=frame_budget, image_max_size=image_max_size
        )
    except ContextError as error:
        return ToolResult(str(error), error="could not summarise")
    text = "\n".join(p["text"] for p in parts if p.get("type") == "text")
    images = [p for p in parts if p.get("type") in ("image_url", "video_url")]
    return ToolResult(_clip(text or f"[{name}]", secrets=secrets), images=images)


def run_python(shell: Any, code: str, image_max_size: tuple[int, int], secrets: Iterable[str] = ()) -> ToolResult:
    """Run ``code`` like a cell (without storing history) and report what it produced."""
    from IPython.core.displayhook import CapturingDisplayHook
    from IPython.display import publish_display_data
    from IPython.utils.capture import capture_output

    from ..context import image_part

    # The model should see plots even where the frontend shows only text (terminal IPython).
    formatter = shell.display_formatter
    saved_types = list(formatter.active_types)
    if "image/png" not in saved_types:
        formatter.active_types = [*saved_types, "image/png"]
    with capture_output(stdout=True, stderr=True, display=True) as captured:
        # The value of a last expression goes through the shell's display trap, not
        # sys.displayhook: point the trap at the capture too, so nothing leaks into the cell.
        trap = shell.display_trap
        saved_hook = trap.hook
        trap.hook = CapturingDisplayHook(shell, shell.display_pub.outputs)
        # A kernel publishes tracebacks straight to the frontend; keep them for the model.
        tracebacks: list[str] = []
        saved_showtraceback = shell._showtraceback
        shell._showtraceback = lambda etype, evalue, stb: tracebacks.append("\n".join(stb))
        try:
            result = shell.run_cell(code, store_history=False, silent=False)
        finally:
            trap.hook = saved_hook
            shell._showtraceback = saved_showtraceback
            formatter.active_types = saved_types
    if isinstance(result.error_in_exec, KeyboardInterrupt):
        raise KeyboardInterrupt
    pieces = []
    if captured.stdout:
        pieces.append("stdout:\n" + captured.stdout)
    if captured.stderr:
        pieces.append("stderr:\n" + captured.stderr)
    images = []
    for output in captured.outputs:
        data = output.data or {}
        png = data.get("image/png") or data.get("image/jpeg")
        if png:
            # The user sees what the code drew, too, not only the model.
            publish_display_data(data, output.metadata or {})
            import base64

            raw = base64.b64decode(png) if isinstance(png, str) else png
            images.append(image_part(raw, max_size=image_max_size))
            pieces.append("[displayed an image; attached below]")
        elif "text/plain" in data:
            pieces.append("output:\n" + str(data["text/plain"]))
    error = result.error_in_exec or result.error_before_exec
    if error is not None:
        formatted = "".join(traceback.format_exception_only(type(error), error)).strip()
        detail = _ANSI.sub("", tracebacks[-1]) if tracebacks else formatted
        pieces.append("error:\n" + _clip(detail, 3000, secrets))
        last = _clip(formatted, len(formatted), secrets).splitlines()[-1][:200]
        return ToolResult(_clip("\n\n".join(pieces), secrets=secrets), error=last, images=images)
    return ToolResult(_clip("\n\n".join(pieces) or "(ran without output)", secrets=secrets), images=images)


def run_tool(
    shell: Any,
    name: str,
    arguments: str,
    *,
    frame_budget: int = 1500,
    image_max_size: tuple[int, int] = (4096, 2160),
    secrets: Iterable[str] = (),
) -> ToolResult:
    """Dispatch one call; any exception in the tool becomes the result, never a crash.

    ``secrets`` (`kimi_jupyter.secrets.secrets_of`) are masked in the result's text and
    error, before anything is cut from them."""
    secrets = tuple(secrets)
    result = _run_tool(shell, name, arguments, frame_budget, image_max_size, secrets)
    if secrets:
        from ..secrets import redact

        text, error = redact(result.text, secrets), redact(result.error, secrets)
        if text is not result.text or error is not result.error:
            result = ToolResult(text, error, result.images)
    return result


def _run_tool(shell: Any, name: str, arguments: str, frame_budget: int,
              image_max_size: tuple[int, int], secrets: tuple[str, ...]) -> ToolResult:
    try:
        args = json.loads(arguments or "{}")
        if not isinstance(args, dict):
            raise ValueError("arguments must be a JSON object")
    except ValueError as error:
        return ToolResult(f"Invalid arguments for {name}: {error}", error="invalid arguments")
    try:
        if name == "list_variables":
            return list_variables(shell)
        if name == "get_variable":
            return get_variable(shell, args.get("name", ""), frame_budget, image_max_size, secrets)
        if name == "run_python":
            code = args.get("code")
            if not isinstance(code, str) or not code.strip():
                return ToolResult("run_python needs a non-empty 'code' string.", error="invalid arguments")
            return run_python(shell, code, image_max_size, secrets)
        return ToolResult(
            f"Unknown tool {name!r}. Available: run_python, get_variable, list_variables.",
            error="unknown tool",
        )
    except KeyboardInterrupt:
        raise
    except Exception as error:  # a tool must never crash the loop
        return ToolResult(f"The tool failed: {type(error).__name__}: {error}", error=type(error).__name__)
