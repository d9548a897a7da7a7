"""Session usage totals as a table, for ``%kimi usage``.

The session keeps running :class:`Usage` totals per kind (per source, per model, or however
it groups them); this module only draws them: an HTML table for notebooks and an aligned
text table for terminals and saved notebooks (deterministic, like every saved output).
It takes rows, ``(kind, usage, requests)`` tuples, a mapping of kind to a row-like object
(``.usage``, ``.requests``, optional ``.unreported``) or a ledger holding such a ``.rows``
mapping, so the session's own bookkeeping can be passed as it is.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..events import Usage, format_cost

__all__ = ["UsageRow", "usage_table"]

_COLUMNS = ("kind", "requests", "prompt", "cached", "completion", "reasoning", "total", "cost")
_CELL = "padding:1px 8px;border:1px solid rgba(127,127,127,.35)"
NOT_REPORTED = "n/r"
_REASONING_NOTE = ("reasoning n/r: not reported separately by the server; "
                   "reasoning tokens are counted (and billed) in completion")


@dataclass(frozen=True)
class UsageRow:
    """One line of the table: a label, its summed usage and how many requests it took."""

    kind: str
    usage: Usage
    requests: int = 0
    unreported: int = 0  # requests whose server sent no usage at all


def _rows(source: Any) -> list[UsageRow]:
    rows = getattr(source, "rows", source)
    if isinstance(rows, Mapping):
        return [
            UsageRow(str(kind), row.usage, row.requests, getattr(row, "unreported", 0))
            for kind, row in rows.items()
        ]
    return [row if isinstance(row, UsageRow) else UsageRow(*row) for row in rows]


def _values(row: UsageRow) -> list[str]:
    u = row.usage

    def num(value: int | None) -> str:
        return "–" if value is None or not u.reported else f"{value:,}"

    cost = "–" if u.cost is None or not u.reported else format_cost(u.cost, u.currency)
    if u.cost is None and u.reported and u.note:
        cost = "price unknown"
    # Kimi counts reasoning tokens in completion without reporting them apart: say so, not "–".
    reasoning = NOT_REPORTED if u.reported and u.reasoning is None and u.completion else num(u.reasoning)
    return [
        row.kind,
        f"{row.requests:,}",
        num(u.prompt),
        num(u.cached),
        num(u.completion),
        reasoning,
        num(u.total),
        cost,
    ]


def usage_table(
    rows: Iterable[UsageRow | tuple[str, Usage, int]] | Any, *, totals: bool = True
) -> dict[str, str]:
    """``text/html`` and ``text/plain`` tables of usage by kind, with a total row when useful."""
    table = _rows(rows)
    if not table:
        message = "no requests yet in this session"
        return {"text/plain": message, "text/html": f"<p>{message}</p>"}
    unreported = sum(row.unreported for row in table)
    has_total = totals and len(table) > 1
    if has_total:
        total = Usage.not_reported()
        for row in table:
            total = total + row.usage
        requests = sum(row.requests for row in table)
        table.append(UsageRow("total", total, requests, unreported))
    values = [_values(row) for row in table]

    widths = [max(len(col), *(len(v[k]) for v in values)) for k, col in enumerate(_COLUMNS)]

    def line(cells: Iterable[str]) -> str:
        return "  ".join(
            c.ljust(w) if k == 0 else c.rjust(w) for k, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    notes = [f"{unreported} request(s) had no usage reported by the server"] if unreported else []
    if any(v[5] == NOT_REPORTED for v in values):
        notes.append(_REASONING_NOTE)
    written = [row for row in table if row.usage.reported and row.usage.cache_write]
    if written:  # only where the server reports them: the table's columns stay as they were
        notes.append(f"{written[-1].usage.cache_write:,} prompt tokens written to the prompt cache "
                     "(in prompt, priced at the cache-write price)")
    note = "; ".join(notes)
    plain = "\n".join([line(_COLUMNS), *(line(v) for v in values), *notes])
    head = "".join(f'<th style="{_CELL}">{c}</th>' for c in _COLUMNS)
    body = []
    for k, v in enumerate(values):
        weight = ";font-weight:600" if has_total and k == len(values) - 1 else ""
        cells = "".join(
            f'<td style="{_CELL};text-align:{"left" if i == 0 else "right"}{weight}">{html.escape(c)}</td>'
            for i, c in enumerate(v)
        )
        body.append(f"<tr>{cells}</tr>")
    markup = f'<table class="kimi-usage-table" style="border-collapse:collapse"><tr>{head}</tr>{"".join(body)}</table>'
    if note:
        markup += f'<div style="opacity:.75;font-size:88%">{note}</div>'
    return {"text/html": markup, "text/plain": plain}
