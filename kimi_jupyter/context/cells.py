"""Earlier cells as prompt context (``%%kimi --cells N``).

The model often needs to see what the user just did: the code of the last few cells and
what they produced. This renders them compactly with their execution counts, bounding each
source, each output and the whole text, and marks cells whose plots were captured.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ._repr import bounded_repr, clip
from .frames import is_frame, summarize_frame

__all__ = ["recent_cells"]

_SOURCE_CHARS = 3000
_OUTPUT_CHARS = 800
_FRAME_TOKENS = 200


def _sources(shell: Any) -> Sequence[Any]:
    """Raw cell sources (as typed, magics included) when IPython keeps them, else ``In``."""
    parsed = shell.user_ns.get("In")
    raw = getattr(getattr(shell, "history_manager", None), "input_hist_raw", None)
    if isinstance(raw, list) and (not isinstance(parsed, list) or len(raw) == len(parsed)):
        return raw
    return parsed if isinstance(parsed, Sequence) else []


def _plot_count(plots: Any, count: int) -> int:
    if plots is None:
        return 0
    try:
        if hasattr(plots, "plots_for"):
            return len(plots.plots_for(count))
        if isinstance(plots, Mapping):
            return len(plots.get(count, ()))
        if callable(plots):
            return len(plots(count))
    except Exception:
        return 0
    return 0


def _output_text(value: Any) -> str:
    if is_frame(value):
        return summarize_frame(value, budget_tokens=_FRAME_TOKENS)
    return bounded_repr(value, _OUTPUT_CHARS)


def recent_cells(
    shell: Any,
    n: int,
    before_count: int | None = None,
    *,
    plots: Callable[[int], Sequence[bytes]] | Mapping[int, Sequence[bytes]] | Any = None,
    max_chars: int = 12_000,
    skip_prefixes: Sequence[str] = ("%%kimi",),
    secrets: Iterable[str] = (),
) -> str:
    """The last ``n`` executed cells before ``before_count``, oldest first, as text.

    ``before_count`` defaults to ``shell.execution_count`` (the cell now running, which is
    skipped). Empty cells and cells starting with one of ``skip_prefixes`` (earlier prompts,
    already in the conversation) are skipped. Each cell reads::

        In [3]:
        <source>
        Out[3]: <bounded repr or frame summary>
        [plot] x2

    ``plots`` (a ``PlotCapture``, callable or mapping by count) adds the ``[plot]`` markers.
    The oldest cells are dropped first when the text would exceed ``max_chars``; returns ""
    when there is nothing to show. ``secrets`` (`kimi_jupyter.secrets.secrets_of`) are
    masked in each source and output before anything is cut (a cell that ran
    ``%config Kimi.api_key = '...'`` is shown with ``***``).
    """
    from ..secrets import redact_text

    secrets = tuple(secrets)
    try:
        n = int(n)
    except (TypeError, ValueError):
        return ""
    if n <= 0:
        return ""
    sources = _sources(shell)
    outputs = shell.user_ns.get("Out")
    outputs = outputs if isinstance(outputs, Mapping) else {}
    if before_count is None:
        before_count = getattr(shell, "execution_count", len(sources))
    start = min(int(before_count), len(sources)) - 1
    blocks: list[str] = []
    for count in range(start, 0, -1):
        if len(blocks) >= n:
            break
        source = sources[count]
        if not isinstance(source, str) or not source.strip():
            continue
        if any(source.lstrip().startswith(p) for p in skip_prefixes):
            continue
        source = redact_text(source, secrets)
        lines = [f"In [{count}]:", clip(source.rstrip("\n"), _SOURCE_CHARS, "\n…(cell truncated)")]
        if count in outputs:
            lines.append(f"Out[{count}]: " + redact_text(_output_text(outputs[count]), secrets))
        shown = _plot_count(plots, count)
        if shown:
            lines.append("[plot]" + (f" x{shown}" if shown > 1 else ""))
        blocks.append("\n".join(lines))
    kept: list[str] = []
    used = 0
    for block in blocks:  # newest first
        cost = len(block) + 2
        if used + cost > max_chars:
            if not kept:
                kept.append(clip(block, max(0, max_chars), "\n…(truncated)"))
            break
        kept.append(block)
        used += cost
    omitted = len(blocks) - len(kept)
    text = "\n\n".join(reversed(kept))
    if omitted and len(text) + 60 <= max_chars:
        text = f"({omitted} earlier cell{'s' if omitted > 1 else ''} omitted for length)\n\n" + text
    return text
