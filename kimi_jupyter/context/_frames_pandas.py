"""Measure a pandas DataFrame or Series into :class:`FrameFacts` without copying it.

Only bounded pieces are ever materialised: ``iloc`` slices of a few rows, one column at a
time, and a fixed random sample of at most ``SAMPLE_ROWS`` rows for statistics. Null counts
are exact, computed column by column in chunks. Every section is guarded, so an odd column
(unhashable objects, raising ``__repr__``, mixed types) degrades to a note, never an error.
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any

from ._frame_model import ColumnFacts, FrameFacts, Table, cell, frame_facts, guard, label_text, num, reason
from ._repr import safe_repr

__all__ = ["SAMPLE_ROWS", "pandas_facts"]

SAMPLE_ROWS = 20_000
HEAD_ROWS, TAIL_ROWS = 5, 3
ROW_TABLE_COLUMNS = 12
_CHUNK = 1 << 20


def sample_positions(n: int, size: int = SAMPLE_ROWS) -> Any:
    """Sorted, reproducible random row positions (None when all rows fit the sample)."""
    if n <= size:
        return None
    import numpy as np

    rng = np.random.default_rng(0)
    idx = rng.choice(n, size=size, replace=False, shuffle=False)
    idx.sort()
    return idx


def pandas_facts(obj: Any, name: str | None, max_profile: int) -> FrameFacts:
    pd = sys.modules["pandas"]
    is_series = isinstance(obj, pd.Series)
    notes: list[str] = []
    n = len(obj.index)
    n_cols = 1 if is_series else int(obj.shape[1])
    kind = "pandas.Series" if is_series else "pandas.DataFrame"
    title = f"{kind} {name}" if name else kind
    if is_series:
        series_name = "" if obj.name is None else f", name {cell(obj.name, 40)}"
        title += f": length {n:,}, dtype {cell(obj.dtype, 40)}{series_name}"
    else:
        title += f": {n:,} rows x {n_cols:,} columns"
    lines: list[str] = []
    index_line = guard(notes, "index", lambda: _index_line(pd, obj.index))
    if index_line:
        lines.append(index_line)
    if not is_series:
        if isinstance(obj.columns, pd.MultiIndex):
            names = ", ".join(cell(x) for x in obj.columns.names)
            lines.append(
                f"column labels: MultiIndex with {obj.columns.nlevels} levels ({names}), shown as a/b"
            )
        if n_cols > max_profile:
            dtypes = guard(notes, "dtype counts", lambda: _dtype_counts(obj))
            if dtypes:
                lines.append(dtypes)

    def column(j: int) -> Any:
        return obj if is_series else obj.iloc[:, j]

    def label(j: int) -> str:
        if is_series:
            return cell(obj.name, 40) if obj.name is not None else "(values)"
        return label_text(obj.columns[j])

    k = min(n_cols, max_profile)
    idx = sample_positions(n)
    columns = []
    for j in range(k):
        lab = guard(notes, f"label of column {j}", lambda j=j: label(j), f"#{j}")
        try:
            columns.append(_profile(pd, column(j), lab, idx))
        except Exception as exc:
            columns.append(ColumnFacts(lab, "?", "?", None, f"(stats unavailable: {reason(exc)})"))
    more = guard(notes, "column labels", lambda: [label(j) for j in range(k, min(n_cols, k + 60))], [])
    row_cols = min(k, ROW_TABLE_COLUMNS)
    head, tail = _tables(obj, n, row_cols, column, notes)
    return frame_facts(
        title=title, lines=lines, n_rows=n, n_columns=n_cols, columns=columns, row_cols=row_cols,
        more_labels=more, head=head, tail=tail, sample_rows=SAMPLE_ROWS if idx is not None else None,
        notes=notes,
    )


def _index_line(pd: Any, index: Any) -> str:
    if isinstance(index, pd.RangeIndex):
        if len(index) == 0:
            return "index: RangeIndex (empty)"
        step = f" step {index.step}" if index.step != 1 else ""
        return f"index: RangeIndex {index.start}..{index[-1]}{step}"
    name = ""
    if isinstance(index, pd.MultiIndex):
        names = ", ".join(cell(x) for x in index.names)
        levels = ", ".join(cell(level.dtype) for level in index.levels)
        return f"index: MultiIndex with {index.nlevels} levels ({names}; dtypes {levels})"
    if index.name is not None:
        name = f" named {cell(index.name)}"
    span = f", {cell(index[0], 32)} … {cell(index[-1], 32)}" if len(index) else " (empty)"
    return f"index: {type(index).__name__}{name} ({cell(index.dtype, 40)}){span}"


def _dtype_counts(df: Any) -> str:
    counts = Counter(str(t) for t in df.dtypes)
    parts = [f"{t} ({c:,})" for t, c in counts.most_common(8)]
    if len(counts) > 8:
        parts.append("…")
    return "dtypes: " + ", ".join(parts)


def _count_nulls(np: Any, s: Any) -> int:
    n = len(s)
    dtype = s.dtype
    if isinstance(dtype, np.dtype):
        if dtype.kind in "iub":
            return 0
        values = s.to_numpy()
        if dtype.kind == "f":
            if not np.isnan(np.add.reduce(values)):  # one pass, no allocation
                return 0
            return sum(int(np.count_nonzero(np.isnan(values[i : i + _CHUNK]))) for i in range(0, n, _CHUNK))
        if dtype.kind in "mM":
            return sum(int(np.count_nonzero(np.isnat(values[i : i + _CHUNK]))) for i in range(0, n, _CHUNK))
    return sum(int(s.iloc[i : i + _CHUNK].isna().sum()) for i in range(0, n, _CHUNK))


def _profile(pd: Any, s: Any, label: str, idx: Any) -> ColumnFacts:
    import numpy as np

    api = pd.api.types
    dtype = s.dtype
    facts = ColumnFacts(label, cell(dtype, 36), "?")
    n = len(s)
    try:
        nulls = _count_nulls(np, s)
        facts.nulls = f"{nulls:,}" if not nulls or not n else f"{nulls:,} ({nulls / n:.0%})"
    except Exception:
        facts.nulls = "?"
    if n == 0:
        facts.detail = "(no rows)"
        return facts
    if isinstance(dtype, np.dtype) and dtype.kind in "iuf":
        try:  # fast path: gather the sample straight from the numpy values
            values = s.to_numpy()
            _numeric_values(np, values if idx is None else values[idx], facts)
            return facts
        except Exception:
            pass  # the general path below says why, if it fails too
    sample = s if idx is None else s.iloc[idx]
    errors = []
    if api.is_bool_dtype(dtype):
        attempts = [_bool_detail]
    elif api.is_numeric_dtype(dtype) and not api.is_complex_dtype(dtype):
        attempts = [_numeric, _values_detail]
    elif api.is_datetime64_any_dtype(dtype) or api.is_timedelta64_dtype(dtype):
        attempts = [_range_detail, _values_detail]
    else:
        attempts = [_values_detail]
    for attempt in attempts:
        try:
            attempt(np, pd, sample, facts, idx is not None)
            return facts
        except Exception as exc:
            errors.append(reason(exc))
    facts.detail = f"(stats unavailable: {errors[0]})"
    return facts


def _numeric(np: Any, pd: Any, sample: Any, facts: ColumnFacts, sampled: bool) -> None:
    _numeric_values(np, sample.to_numpy(dtype="float64", na_value=np.nan), facts)


def _numeric_values(np: Any, values: Any, facts: ColumnFacts) -> None:
    values = values.astype(np.float64, copy=False)
    values = values[~np.isnan(values)]
    if values.size == 0:
        facts.detail = "all null"
        return
    q = np.percentile(values, [25, 50, 75])
    std = values.std(ddof=1) if values.size > 1 else float("nan")
    stats = [values.mean(), std, values.min(), q[0], q[1], q[2], values.max()]
    facts.stats = [num(x) for x in stats]


def _bool_detail(np: Any, pd: Any, sample: Any, facts: ColumnFacts, sampled: bool) -> None:
    counts = sample.value_counts(dropna=True)
    total = int(counts.sum())
    if not total:
        facts.detail = "all null"
        return
    facts.detail = ", ".join(f"{cell(k)} {int(c) / total:.0%}" for k, c in counts.items())


def _range_detail(np: Any, pd: Any, sample: Any, facts: ColumnFacts, sampled: bool) -> None:
    valid = sample.dropna()
    if len(valid) == 0:
        facts.detail = "all null"
        return
    facts.detail = f"min {cell(valid.min(), 32)}, max {cell(valid.max(), 32)}"


def _values_detail(np: Any, pd: Any, sample: Any, facts: ColumnFacts, sampled: bool) -> None:
    prefix = ""
    if isinstance(sample.dtype, pd.CategoricalDtype):
        prefix = f"{len(sample.cat.categories):,} categories; "
    valid = sample.dropna()
    total = len(valid)
    if total == 0:
        facts.detail = prefix + "all null"
        return
    try:
        counts = valid.value_counts(dropna=True)
        pairs = [(cell(k, 24), int(c)) for k, c in counts.head(3).items()]
        unique = len(counts)
        how = ""
    except Exception:
        # Unhashable values (lists, dicts) or a raising __hash__: count reprs of a few.
        head = valid.iloc[:1000].tolist()
        counter = Counter(safe_repr(v, 24) for v in head)
        pairs = counter.most_common(3)
        unique = len(counter)
        total = len(head)
        how = " by repr"
    scope = " in the first 1,000 values" if how else " in the sample" if sampled else ""
    if unique == total and total > 1:
        examples = ", ".join(p for p, _ in pairs[:2])
        facts.detail = f"{prefix}all {total:,} unique{how}{scope}; e.g. {examples}"
        return
    top = ", ".join(f"{p} {c / total:.0%}" for p, c in pairs)
    facts.detail = f"{prefix}{unique:,} unique{how}{scope}; top {top}"


def _tables(
    obj: Any, n: int, n_cols: int, column: Any, notes: list[str]
) -> tuple[Table | None, Table | None]:
    h = min(HEAD_ROWS, n)
    t = min(TAIL_ROWS, n - h)
    if h == 0 or n_cols == 0:
        return None, None
    index = obj.index
    head_index = guard(notes, "row labels", lambda: [cell(v, 24) for v in index[:h].tolist()], ["?"] * h)
    tail_index = guard(notes, "row labels", lambda: [cell(v, 24) for v in index[n - t :].tolist()], ["?"] * t)
    head_cols, tail_cols = [], []
    for j in range(n_cols):
        try:
            col = column(j)
            head_cols.append([cell(v) for v in col.iloc[:h].tolist()])
            tail_cols.append([cell(v) for v in col.iloc[n - t :].tolist()] if t else [])
        except Exception as exc:
            notes.append(f"(values of column {j} unavailable: {reason(exc)})")
            head_cols.append(["?"] * h)
            tail_cols.append(["?"] * t)
    head = Table(head_index, [[c[i] for c in head_cols] for i in range(h)])
    tail = Table(tail_index, [[c[i] for c in tail_cols] for i in range(t)]) if t else None
    return head, tail
