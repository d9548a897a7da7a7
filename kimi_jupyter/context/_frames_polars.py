"""Measure a polars DataFrame or Series into :class:`FrameFacts`; describe a LazyFrame.

polars columns are immutable and selecting them is zero-copy, null counts are stored
metadata, and ``head``/``tail``/``sample`` materialise only what they return, so the same
bounded approach as for pandas costs little here. A LazyFrame is never collected: only its
schema is described.
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any

from ._frame_model import ColumnFacts, FrameFacts, Table, cell, frame_facts, guard, num, reason
from ._frames_pandas import HEAD_ROWS, ROW_TABLE_COLUMNS, SAMPLE_ROWS, TAIL_ROWS
from ._repr import clip, safe_repr

__all__ = ["lazy_summary", "polars_facts"]


def polars_facts(obj: Any, name: str | None, max_profile: int) -> FrameFacts:
    pl = sys.modules["polars"]
    notes: list[str] = []
    is_series = isinstance(obj, pl.Series)
    df = obj.to_frame() if is_series else obj
    n, n_cols = int(df.height), int(df.width)
    kind = "polars.Series" if is_series else "polars.DataFrame"
    title = f"{kind} {name}" if name else kind
    if is_series:
        title += f": length {n:,}, dtype {cell(obj.dtype, 40)}, name {cell(obj.name, 40)}"
    else:
        title += f": {n:,} rows x {n_cols:,} columns"
    lines: list[str] = []
    k = min(n_cols, max_profile)
    names = df.columns
    if n_cols > max_profile:
        counts = guard(notes, "dtype counts", lambda: Counter(str(t) for t in df.schema.values()))
        if counts:
            parts = [f"{t} ({c:,})" for t, c in counts.most_common(8)]
            lines.append("dtypes: " + ", ".join(parts) + (", …" if len(counts) > 8 else ""))
    shown = df.select(names[:k]) if k < n_cols else df
    sampled = n > SAMPLE_ROWS
    sample = guard(notes, "sample", lambda: shown.sample(n=SAMPLE_ROWS, seed=0) if sampled else shown)
    columns = []
    for j in range(k):
        label = cell(names[j], 40)
        try:
            s = shown.to_series(j)
            ss = sample.to_series(j) if sample is not None else None
            columns.append(_profile(pl, s, ss, label, sampled))
        except Exception as exc:
            columns.append(ColumnFacts(label, "?", "?", None, f"(stats unavailable: {reason(exc)})"))
    row_cols = min(k, ROW_TABLE_COLUMNS)
    head, tail = guard(notes, "rows", lambda: _tables(shown, n, row_cols), (None, None))
    return frame_facts(
        title=title, lines=lines, n_rows=n, n_columns=n_cols, columns=columns, row_cols=row_cols,
        more_labels=[cell(x, 40) for x in names[k : k + 60]], head=head, tail=tail,
        sample_rows=SAMPLE_ROWS if sampled else None, notes=notes,
    )


def _profile(pl: Any, s: Any, sample: Any, label: str, sampled: bool) -> ColumnFacts:
    dtype = s.dtype
    facts = ColumnFacts(label, cell(dtype, 36), "?")
    n = len(s)
    try:
        nulls = int(s.null_count())
        facts.nulls = f"{nulls:,}" if not nulls or not n else f"{nulls:,} ({nulls / n:.0%})"
    except Exception:
        pass
    if n == 0:
        facts.detail = "(no rows)"
        return facts
    if sample is None:
        facts.detail = "(stats unavailable: no sample)"
        return facts
    try:
        if dtype == pl.Boolean:
            _values(sample, facts, sampled, share_only=True)
        elif dtype.is_numeric():
            _numeric(pl, sample, facts)
        elif dtype.is_temporal():
            valid = sample.drop_nulls()
            facts.detail = (
                f"min {cell(valid.min(), 32)}, max {cell(valid.max(), 32)}" if len(valid) else "all null"
            )
        else:
            _values(sample, facts, sampled)
    except Exception as exc:
        facts.detail = f"(stats unavailable: {reason(exc)})"
    return facts


def _numeric(pl: Any, sample: Any, facts: ColumnFacts) -> None:
    x = sample.cast(pl.Float64)
    x = x.fill_nan(None).drop_nulls().sort()
    m = len(x)
    if m == 0:
        facts.detail = "all null"
        return

    def quantile(q: float) -> float:
        pos = q * (m - 1)
        lo = int(pos)
        hi = min(lo + 1, m - 1)
        return float(x[lo]) + (float(x[hi]) - float(x[lo])) * (pos - lo)

    std = x.std() if m > 1 else float("nan")
    stats = [x.mean(), std, x[0], quantile(0.25), quantile(0.5), quantile(0.75), x[m - 1]]
    facts.stats = [num(v) for v in stats]


def _values(sample: Any, facts: ColumnFacts, sampled: bool, share_only: bool = False) -> None:
    valid = sample.drop_nulls()
    total = len(valid)
    if total == 0:
        facts.detail = "all null"
        return
    how = ""
    try:
        vc = valid.value_counts(sort=True)
        unique = vc.height
        pairs = [(cell(row[0], 24), int(row[1])) for row in vc.head(3).iter_rows()]
    except Exception:
        head = valid.head(1000).to_list()
        counter = Counter(safe_repr(v, 24) for v in head)
        unique, total, how = len(counter), len(head), " by repr"
        pairs = counter.most_common(3)
    if share_only:
        facts.detail = ", ".join(f"{p} {c / total:.0%}" for p, c in pairs)
        return
    scope = " in the first 1,000 values" if how else " in the sample" if sampled else ""
    if unique == total and total > 1:
        facts.detail = f"all {total:,} unique{how}{scope}; e.g. " + ", ".join(p for p, _ in pairs[:2])
        return
    top = ", ".join(f"{p} {c / total:.0%}" for p, c in pairs)
    facts.detail = f"{unique:,} unique{how}{scope}; top {top}"


def _tables(df: Any, n: int, n_cols: int) -> tuple[Table | None, Table | None]:
    h = min(HEAD_ROWS, n)
    t = min(TAIL_ROWS, n - h)
    if h == 0 or n_cols == 0:
        return None, None
    head_df = df.head(h)
    tail_df = df.tail(t) if t else None
    head_cols = [[cell(v) for v in head_df.to_series(j).to_list()] for j in range(n_cols)]
    head = Table([str(i) for i in range(h)], [[c[i] for c in head_cols] for i in range(h)])
    tail = None
    if tail_df is not None:
        tail_cols = [[cell(v) for v in tail_df.to_series(j).to_list()] for j in range(n_cols)]
        tail = Table([str(n - t + i) for i in range(t)], [[c[i] for c in tail_cols] for i in range(t)])
    return head, tail


def lazy_summary(lf: Any, name: str | None, limit: int) -> str:
    """Schema-only description of a LazyFrame (the query is never run)."""
    title = f"polars.LazyFrame {name}" if name else "polars.LazyFrame"
    try:
        schema = lf.collect_schema() if hasattr(lf, "collect_schema") else lf.schema
        items = list(schema.items())
    except Exception as exc:
        return clip(f"{title}: lazy query, not collected (schema unavailable: {reason(exc)})", limit)
    head = f"{title}: lazy query, not collected; schema of {len(items):,} columns:"
    lines = [head]
    used = len(head)
    for i, (col, dtype) in enumerate(items):
        line = f"  {cell(col, 40)}: {cell(dtype, 40)}"
        rest = len(items) - i
        tail = f"\n  … {rest:,} more columns"
        if used + 1 + len(line) + len(tail) > limit and rest > 1:
            lines.append(tail.strip("\n"))
            break
        lines.append(line)
        used += 1 + len(line)
    return clip("\n".join(lines), limit)
