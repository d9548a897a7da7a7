"""The per-row template: the same ``{name}`` interpolation as ``%%kimi``, with row fields first.

A placeholder is looked up in the row's fields (column names), then in the notebook's
variables. The whole template is checked against the columns before anything is sent, so a
misspelt column fails the call at once with the columns listed. Each row gets a small
namespace holding only the names the template uses, so filling a row costs no copy of the
user namespace.

Row fields are data: a field that names a local file (``~/notes.md``, ``passport.png``) is
sent as that text and the file is never read, unless the user named the column as a column of
files (``map(..., files=["path"])``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import PurePath
from typing import Any

from ..context.interpolate import DataText, referenced_names
from .data import RowsError, RowSource

__all__ = ["RowTemplate"]


class RowTemplate:
    def __init__(self, template: str, source: RowSource, namespace: Mapping[str, Any] | None,
                 files: Sequence[str] | None = None):
        if not isinstance(template, str) or not template.strip():
            raise RowsError("map() needs a prompt template such as 'Sentiment of: {text}'. Nothing was sent.")
        self.text = template
        self.names = referenced_names(template)
        columns = set(source.columns)
        namespace = namespace or {}
        missing = [n for n in self.names if n not in columns and n not in namespace]
        if missing:
            shown = ", ".join(source.columns[:20]) + (" ..." if len(source.columns) > 20 else "")
            raise RowsError(
                f"The template names {{{missing[0]}}}, which is not a column of the data ({shown}) nor a "
                f"notebook variable. Fix the name, or write {{{{{missing[0]}}}}} for literal braces. Nothing was sent.")
        self.row_names = [n for n in self.names if n in columns]
        if not self.row_names and source.kind != "list":
            raise RowsError(
                f"The template names no column, so every row would get the same prompt. Use one of: "
                f"{', '.join(source.columns[:20])} (e.g. {{{source.columns[0]}}}). Nothing was sent.")
        self.shared = {n: namespace[n] for n in self.names if n not in columns and n in namespace}
        if isinstance(files, str):
            files = [files]
        self.files = frozenset(files or ())
        unknown = sorted(self.files - set(self.row_names))
        if unknown:
            raise RowsError(f"files= names {unknown[0]!r}, which is not a column the template uses "
                            f"({', '.join(self.row_names) or 'none'}). Nothing was sent.")

    def namespace(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """The names one row's prompt uses (row fields win over notebook variables)."""
        names = dict(self.shared)
        for name in self.row_names:
            if name in fields:
                value = fields[name]
                if name not in self.files and isinstance(value, (str, PurePath)):
                    value = DataText(os.fspath(value))  # data is text, never a file to read
                names[name] = value
        return names
