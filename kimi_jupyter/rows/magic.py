"""``%%kimi --each df --into sentiment``: the cell is the row template, one turn per row.

The answers go into the frame the user named: a pandas frame gets the column ``into`` (and
``<into>_error``) in place; a polars frame is replaced by one with the new columns (polars
frames are immutable); for a list or other iterable the results are stored as the variable
``into``. With a ``--schema NAME`` (a dict or JSON schema in the notebook), each field
becomes a column prefixed ``<into>_``. The whole result is ``_kimi_rows``. A mistake
prints one line and sends nothing.
"""

from __future__ import annotations

import sys
from typing import Any

from ..errors import KimiError

__all__ = ["run_each"]


def run_each(shell: Any, args: Any, template: str) -> None:
    from .run import map_rows

    ns = shell.user_ns
    name = args.each
    if name not in ns:
        print(f"--each {name}: there is no variable {name!r} in the notebook. Nothing was sent.", file=sys.stderr)
        return
    into = args.into or "answer"
    schema = None
    if getattr(args, "schema", None):
        schema = ns.get(args.schema)
        if schema is None:
            print(f"--schema {args.schema}: there is no such variable. Nothing was sent.", file=sys.stderr)
            return
    options = {k: v for k, v in {"model": args.model, "thinking": args.thinking, "max_tokens": args.max_tokens,
                                 "system": args.system, "effort": getattr(args, "effort", None)}.items()
               if v is not None}
    data = ns[name]
    try:
        out = map_rows(template, data, engine="batch" if args.batch else "live", into=into, schema=schema,
                       namespace=ns, **options)
    except KimiError as error:
        print(str(error), file=sys.stderr)
        return
    ns["_kimi_rows"] = out
    module = type(data).__module__ or ""
    columns = list(out.columns) if hasattr(out, "columns") else []
    if module.startswith("pandas") and hasattr(data, "columns"):
        for column in columns:
            target = column if column.startswith(into) else f"{into}_{column}"
            data[target] = out[column]
    elif module.startswith("polars") and hasattr(data, "with_columns"):
        renamed = {c: (c if c.startswith(into) else f"{into}_{c}") for c in columns}
        ns[name] = data.with_columns([out[c].alias(renamed[c]) for c in columns])
    else:
        ns[into] = out
