"""Compact, budgeted text summaries of pandas and polars tables for prompts.

A DataFrame named in a prompt must tell the model its shape, dtypes, nulls, a few rows and
its value distributions, within a token budget, for frames of any size or oddity, quickly,
and without ever raising or copying the frame. The adapters measure bounded pieces of the
frame once; :func:`summarize_frame` then renders the richest text that fits the budget.
"""

from __future__ import annotations

from typing import Any

from ._detect import is_pandas_frame, is_polars_frame, is_polars_lazy
from ._frame_model import fit, reason
from ._repr import bounded_repr, clip, type_name

__all__ = ["is_frame", "summarize_frame"]

#: Characters per token used for budgets (a deliberately conservative estimate).
CHARS_PER_TOKEN = 4
#: Rough characters one profiled column line costs; bounds how many columns are measured.
_CHARS_PER_PROFILE = 80
_MAX_PROFILE = 200


def is_frame(obj: Any) -> bool:
    """True for pandas DataFrame/Series and polars DataFrame/Series/LazyFrame."""
    return is_pandas_frame(obj) or is_polars_frame(obj) or is_polars_lazy(obj)


def estimate_tokens(text: str) -> int:
    """The budget's token estimate: ``ceil(len(text) / 4)``."""
    return -(-len(text) // CHARS_PER_TOKEN)


def summarize_frame(obj: Any, *, budget_tokens: int = 1500, name: str | None = None) -> str:
    """Summarise a table as text of at most ``budget_tokens * 4`` characters.

    Shows type, shape, index, per-column dtype and exact null count, numeric statistics
    (mean, std, min, quartiles, max) or, for other columns, unique counts and top values,
    then the first and last rows. Statistics of frames over 20,000 rows come from a fixed
    random sample and say so. Never raises: a failing section becomes a note such as
    ``(stats unavailable: TypeError: ...)``.
    """
    try:
        limit = max(0, int(budget_tokens)) * CHARS_PER_TOKEN
    except Exception:
        limit = 1500 * CHARS_PER_TOKEN
    try:
        max_profile = max(1, min(_MAX_PROFILE, limit // _CHARS_PER_PROFILE))
        if is_pandas_frame(obj):
            import numpy as np

            from ._frames_pandas import pandas_facts

            with np.errstate(all="ignore"):  # inf - inf in the stats is data, not a warning for the user
                return fit(pandas_facts(obj, name, max_profile), limit)
        if is_polars_frame(obj):
            from ._frames_polars import polars_facts

            return fit(polars_facts(obj, name, max_profile), limit)
        if is_polars_lazy(obj):
            from ._frames_polars import lazy_summary

            return lazy_summary(obj, name, limit)
        label = f"{type_name(obj)} {name}" if name else type_name(obj)
        return clip(f"{label} (not a DataFrame): {bounded_repr(obj, limit)}", limit)
    except Exception as exc:
        label = f"{type_name(obj)} {name}" if name else type_name(obj)
        return clip(f"{label} (summary unavailable: {reason(exc)})", limit)
