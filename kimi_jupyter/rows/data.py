"""Rows in, aligned results out.

``map()`` accepts a pandas or polars DataFrame, a pandas or polars Series, or any iterable
(of dicts, or of plain values). Rows are read one at a time as the engines need them, so
nothing but the input itself and the answers is held for the whole run. The result is
aligned with the input: a DataFrame with the same index (one answer column, or one column
per schema field, plus an ``error`` column) for frame and Series input, a `RowResults`
list otherwise. A failed row is marked in ``error``, never dropped.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import KimiError

__all__ = ["RowResults", "RowsError", "RunSummary", "RowSource", "row_source", "assemble"]


class RowsError(KimiError):
    """A mistake in a ``map()`` call (empty input, unknown column...): nothing was sent."""


@dataclass
class RunSummary:
    """What one run did: counts, tokens and cost (``.summary`` of every result)."""

    engine: str = "live"
    rows: int = 0
    done: int = 0
    cached: int = 0
    failed: int = 0
    not_run: int = 0
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    currency: str | None = None
    seconds: float = 0.0
    stopped: str | None = None  # why the run ended early (budget, Stop, a fatal error)
    run_id: str | None = None
    # While a batch runs, the provider reports rows, not tokens: the tokens shown are then the
    # pre-flight estimate of the rows finished so far (exact once the answers are collected).
    tokens_estimated: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        from ..events import format_cost

        parts = [f"{self.done:,}/{self.rows:,} rows done"]
        if self.cached:
            parts.append(f"{self.cached:,} from the cache")
        if self.failed:
            parts.append(f"{self.failed:,} failed")
        if self.not_run:
            parts.append(f"{self.not_run:,} not run")
        parts.append(f"{self.prompt_tokens + self.completion_tokens:,} tokens")
        if self.cost:
            parts.append(format_cost(self.cost, self.currency))
        parts.append(f"{self.seconds:.1f} s")
        text = " · ".join(parts)
        return f"{text}. Stopped: {self.stopped}" if self.stopped else text


class RowResults(list[Any]):
    """Answers of an iterable's rows, in input order; ``errors[i]`` is None or a message."""

    def __init__(self, answers: Iterable[Any], errors: list[str | None], summary: RunSummary):
        super().__init__(answers)
        self.errors = errors
        self.summary = summary

    def __repr__(self) -> str:
        return f"RowResults({list.__repr__(self)}, errors={sum(e is not None for e in self.errors)})"


@dataclass
class RowSource:
    """The input, readable row by row as ``{field: value}`` mappings."""

    kind: str  # "pandas", "polars" or "list"
    count: int
    columns: list[str]
    data: Any
    index: Any = None
    series_name: str | None = None
    items: list[Any] = field(default_factory=list)

    def fields(self, only: Iterable[str] | None = None) -> Iterator[dict[str, Any]]:
        """Each row's fields, in order (lazily for frames); ``only``: just these columns
        (the ones the template names), so a wide frame's other columns are never read."""
        data = self.data
        if self.kind == "pandas" and self.series_name is None:
            names = [str(c) for c in data.columns]
            wanted = set(names if only is None else only)
            positions = [i for i, name in enumerate(names) if name in wanted]
            picked = [names[i] for i in positions]
            if not positions:
                for _ in range(len(data)):
                    yield {}
                return
            for values in zip(*(data.iloc[:, i] for i in positions), strict=True):
                yield dict(zip(picked, values, strict=True))
        elif self.kind == "polars" and self.series_name is None:
            frame = data if only is None else data.select([c for c in data.columns if c in set(only)])
            if frame.width == 0:
                for _ in range(data.height):
                    yield {}
                return
            yield from frame.iter_rows(named=True)
        elif self.series_name is not None:
            name = self.series_name
            values = data.tolist() if self.kind == "pandas" else data.to_list()
            for value in values:
                yield {"value": value, name: value} if name else {"value": value}
        else:
            for item in self.items:
                yield dict(item) if isinstance(item, dict) else {"value": item}


MAX_ITERABLE_ROWS = 1_000_000  # rows read from a plain iterable (frames have their own length)


def row_source(data: Any) -> RowSource:
    """A `RowSource` for ``data``, or a `RowsError` that says what to pass instead."""
    module = type(data).__module__ or ""
    if module.startswith("pandas"):
        pd = sys.modules["pandas"]
        if isinstance(data, pd.DataFrame):
            return RowSource("pandas", len(data), [str(c) for c in data.columns], data, data.index)
        if isinstance(data, pd.Series):
            name = str(data.name) if data.name is not None else ""
            return RowSource("pandas", len(data), ["value", *([name] if name else [])], data, data.index, name)
    if module.startswith("polars"):
        pl = sys.modules["polars"]
        if isinstance(data, pl.DataFrame):
            return RowSource("polars", data.height, list(data.columns), data)
        if isinstance(data, pl.Series):
            name = data.name or ""
            return RowSource("polars", len(data), ["value", *([name] if name else [])], data, None, name)
    if isinstance(data, (str, bytes)) or data is None:
        raise RowsError(f"map() needs a DataFrame, a Series or an iterable of rows, not {type(data).__name__}. "
                        "Wrap a single prompt in a list, or use ask() for one question.")
    try:
        iterator = iter(data)
    except TypeError:
        raise RowsError(f"map() needs a DataFrame, a Series or an iterable of rows, not {type(data).__name__}.") from None
    # Read lazily up to the cap: an endless or huge iterator is refused, not drained into memory.
    items = list(itertools.islice(iterator, MAX_ITERABLE_ROWS + 1))
    if len(items) > MAX_ITERABLE_ROWS:
        raise RowsError(f"The iterable has more than {MAX_ITERABLE_ROWS:,} rows (it may never end). Pass at most "
                        f"{MAX_ITERABLE_ROWS:,} (itertools.islice(rows, n)) or a DataFrame. Nothing was sent.")
    columns = sorted({str(k) for item in items[:100] if isinstance(item, dict) for k in item}) or ["value"]
    return RowSource("list", len(items), columns, data, items=items)


def assemble(source: RowSource, answers: list[Any], errors: list[str | None], summary: RunSummary,
             fields: list[str] | None, into: str | None) -> Any:
    """The result aligned with ``source``: a frame for frame/Series input, else `RowResults`."""
    if source.kind == "list":
        return RowResults(answers, errors, summary)
    names = list(fields) if fields else [into or "answer"]
    error_name = f"{into}_error" if into and not fields else "error"
    columns: dict[str, list[Any]] = {}
    if fields:
        for name in names:
            columns[name] = [a.get(name) if isinstance(a, dict) else None for a in answers]
    else:
        columns[names[0]] = list(answers)
    columns[error_name] = list(errors)
    if source.kind == "pandas":
        pd = sys.modules["pandas"]
        frame = pd.DataFrame(columns, index=source.index)
        frame.attrs["kimi"] = summary.as_dict()
        return frame
    pl = sys.modules["polars"]
    return pl.DataFrame(columns, strict=False)


def _one_line_traceback(self: RowsError) -> list[str]:
    """IPython shows a `RowsError` as its message alone: a user mistake, not our traceback."""
    return [f"{type(self).__name__}: {self}"]


RowsError._render_traceback_ = _one_line_traceback  # type: ignore[attr-defined]
