"""Library-neutral facts about a table, and their rendering under a character budget.

The pandas and polars adapters measure a frame once (on bounded slices and samples) into a
:class:`FrameFacts`; this module renders those facts as compact text and shrinks the
rendering (fewer rows, then fewer columns) until it fits the budget. Keeping measurement and
rendering apart means the budget search re-renders strings, never re-reads the frame.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._repr import clip, type_name

__all__ = ["ColumnFacts", "FrameFacts", "Table", "cell", "fit", "guard", "label_text", "num", "reason"]

CELL_WIDTH = 18
STATS_HEADER = ["mean", "std", "min", "25%", "50%", "75%", "max"]


@dataclass
class ColumnFacts:
    """One profiled column: numeric ``stats`` (formatted) or a free-text ``detail``."""

    label: str
    dtype: str
    nulls: str
    stats: list[str] | None = None
    detail: str = ""


@dataclass
class Table:
    """A few rows of cell strings with their index labels."""

    index: list[str]
    rows: list[list[str]]


@dataclass
class FrameFacts:
    """Everything the summary text can show, measured once."""

    title: str
    lines: list[str]
    n_rows: int
    n_columns: int
    column_labels: list[str]  # labels of the first columns shown in row tables
    columns: list[ColumnFacts]  # profiled columns, in frame order
    more_labels: list[str] = field(default_factory=list)  # labels after the profiled ones
    head: Table | None = None
    tail: Table | None = None
    stats_note: str = ""
    notes: list[str] = field(default_factory=list)


def frame_facts(
    *,
    title: str,
    lines: list[str],
    n_rows: int,
    n_columns: int,
    columns: list[ColumnFacts],
    row_cols: int,
    more_labels: list[str],
    head: Table | None,
    tail: Table | None,
    sample_rows: int | None,
    notes: list[str],
) -> FrameFacts:
    """Assemble one frame's facts, with the notes every kind of frame shares.

    ``sample_rows`` is the size of the sample the statistics came from (None: all rows).
    """
    if n_rows == 0:
        notes.append("(no rows)")
    if n_columns == 0:
        notes.append("(no columns)")
    stats_note = (
        f"(stats from a random sample of {sample_rows:,} of {n_rows:,} rows; null counts are exact)"
        if sample_rows is not None
        else ""
    )
    return FrameFacts(
        title=title,
        lines=lines,
        n_rows=n_rows,
        n_columns=n_columns,
        column_labels=[c.label for c in columns[:row_cols]],
        columns=columns,
        more_labels=more_labels,
        head=head,
        tail=tail,
        stats_note=stats_note,
        notes=notes,
    )


def cell(value: Any, width: int = CELL_WIDTH) -> str:
    """One table cell: short, single-line, never raising."""
    try:
        if value is None:
            text = "None"
        elif isinstance(value, float):
            text = f"{value:.6g}"
        elif isinstance(value, str):
            text = value
        elif isinstance(value, datetime.datetime) and _is_midnight(value):
            text = value.date().isoformat()
        else:
            text = str(value)
            if not isinstance(text, str):
                raise TypeError
    except Exception:
        text = f"<unprintable {type_name(value)}>"
    text = text.replace("\r", "\\r").replace("\n", "\\n").replace("\t", " ")
    return clip(text, width)


def _is_midnight(value: datetime.datetime) -> bool:
    return value.time() == datetime.time(0) and not getattr(value, "nanosecond", 0)


def label_text(label: Any, width: int = 40) -> str:
    """A column label as text; tuples (MultiIndex) are joined with '/'."""
    if isinstance(label, tuple):
        return clip("/".join(cell(part, width) for part in label), width)
    return cell(label, width)


def num(value: Any) -> str:
    """A statistic, compactly: integers plainly, other values with 4 significant digits."""
    try:
        x = float(value)
    except Exception:
        return cell(value)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x.is_integer() and abs(x) < 1e12:
        return str(int(x))
    return f"{x:.4g}"


def reason(exc: BaseException) -> str:
    """``Type: message`` of an exception on one short line; never raises."""
    try:
        msg = str(exc).replace("\n", " ")
    except Exception:
        msg = ""
    return clip(f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__, 120)


def guard(notes: list[str], what: str, fn: Any, default: Any = None) -> Any:
    """``fn()``, or ``default`` with a note saying what is unavailable and why."""
    try:
        return fn()
    except Exception as exc:
        notes.append(f"({what} unavailable: {reason(exc)})")
        return default


# ---------------------------------------------------------------------------------------
# rendering


def _align(rows: Sequence[Sequence[str]], upto: int) -> list[list[str]]:
    """Pad the first ``upto`` cells of every row to a common width per position."""
    widths = [0] * upto
    for row in rows:
        for i, value in enumerate(row[:upto]):
            widths[i] = max(widths[i], len(value))
    out = []
    for row in rows:
        padded = [
            value.ljust(widths[i]) if i < upto and i < len(row) - 1 else value for i, value in enumerate(row)
        ]
        out.append(padded)
    return out


def _profile_lines(columns: Sequence[ColumnFacts]) -> list[str]:
    if not columns:
        return []
    any_numeric = any(c.stats for c in columns)
    head = ["column", "dtype", "nulls", *(STATS_HEADER if any_numeric else ["summary"])]
    rows: list[list[str]] = [head]
    for c in columns:
        if c.stats:
            rows.append([c.label, c.dtype, c.nulls, *c.stats])
        else:
            rows.append([c.label, c.dtype, c.nulls, c.detail or "-"])
    # Align label/dtype/nulls everywhere, and the stats columns among numeric rows only.
    prefix = _align([[*r[:3], ""] for r in rows], 3)
    numeric_rows = [[*r[3:], ""] for r in rows if len(r) > 4]
    stats_aligned = iter(_align(numeric_rows, len(STATS_HEADER)) if numeric_rows else [])
    lines = []
    for r, p in zip(rows, prefix, strict=True):
        tail = " ".join(next(stats_aligned)).rstrip() if len(r) > 4 else r[3]
        lines.append(("  " + " ".join(p[:3]) + " " + tail).rstrip())
    return lines


def _table_lines(facts: FrameFacts, n_head: int, n_tail: int, n_cols: int) -> list[str]:
    head, tail = facts.head, facts.tail
    h = min(n_head, len(head.rows)) if head else 0
    t = min(n_tail, len(tail.rows)) if tail else 0
    if h + t == 0 or n_cols <= 0:
        return []
    rows: list[list[str]] = [["", *facts.column_labels[:n_cols]]]
    if head:
        rows += [[head.index[i], *head.rows[i][:n_cols]] for i in range(h)]
    shown_tail = tail.rows[len(tail.rows) - t :] if tail and t else []
    if tail and t:
        gap = facts.n_rows - h - t > 0
        if gap:
            rows.append(["…"])
        offset = len(tail.rows) - t
        rows += [[tail.index[offset + i], *shown_tail[i]][: n_cols + 1] for i in range(t)]
    width = max(len(r) for r in rows)
    aligned = _align([r + [""] * (width - len(r)) + [""] for r in rows], width)
    what = f"first {h}" + (f" and last {t}" if t else "")
    more = facts.n_columns - n_cols
    cols_note = f"; {more:,} more column{'s' if more != 1 else ''} not shown" if more > 0 else ""
    lines = [f"rows ({what} of {facts.n_rows:,}{cols_note}):"]
    lines += ["  " + " ".join(r).rstrip() for r in aligned]
    return lines


def render(facts: FrameFacts, n_head: int, n_tail: int, n_profile: int, n_row_cols: int, n_names: int) -> str:
    out = [facts.title, *facts.lines]
    profiled = facts.columns[:n_profile]
    if profiled:
        shown = len(profiled)
        what = "columns" if shown == facts.n_columns else f"columns (first {shown} of {facts.n_columns:,})"
        out.append(f"{what}:")
        out += _profile_lines(profiled)
    hidden = facts.n_columns - len(profiled)
    if hidden > 0:
        names = [c.label for c in facts.columns[len(profiled) :]] + facts.more_labels
        names = names[:n_names]
        text = f"  … {hidden:,} more column{'s' if hidden != 1 else ''}"
        if names:
            listed = ", ".join(names)
            text += ": " + clip(listed, 240) + (", …" if hidden > len(names) else "")
        out.append(text)
    if facts.stats_note and any(c.stats or c.detail for c in profiled):
        out.append(facts.stats_note)
    out += _table_lines(facts, n_head, n_tail, n_row_cols)
    out += facts.notes
    return "\n".join(out)


def _ladder(k: int, row_cols: int) -> Iterator[tuple[int, int, int, int, int]]:
    """Renderings from richest to poorest: (head, tail, profiled cols, row cols, names)."""
    for h, t in ((5, 3), (3, 2), (2, 1)):
        yield h, t, k, min(k, row_cols), 40
    cols = k
    while cols > 4:
        cols = max(4, int(cols * 0.7))
        yield 2, 1, cols, min(cols, 8), 30
    for cols in (4, 3, 2, 1):
        if cols <= k:
            yield 1, 0, cols, min(cols, 4), 10
    yield 0, 0, min(k, 1), 0, 5
    yield 0, 0, 0, 0, 0


def fit(facts: FrameFacts, limit: int, row_cols: int = 12) -> str:
    """The richest rendering of ``facts`` of at most ``limit`` characters."""
    text = ""
    for config in _ladder(len(facts.columns), row_cols):
        text = render(facts, *config)
        if len(text) <= limit:
            return text
    return clip(text, limit, "\n…(truncated)") if limit > 40 else clip(text, limit)
