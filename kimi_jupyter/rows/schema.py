"""Structured output per row: a JSON schema (or ``{field: type}``) in, one column per field out.

The schema is a `kimi_jupyter.structured.Schema`: the request carries ``response_format``
``json_schema`` where the model supports it (else JSON mode, ``json_object``) and a short
system instruction naming the fields. Answers are parsed within bounds (size and nesting
depth, so a hostile answer cannot raise out of ``map()``), validated with ``jsonschema``,
and each field is coerced to its declared type; an answer that still fails after the one
retry (rows/live.py) gives the row an error that says why, so the row is marked, not dropped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..structured import Schema, SchemaError, loads_bounded
from .data import RowsError

__all__ = ["RowSchema"]


class RowSchema(Schema):
    def __init__(self, schema: Mapping[str, Any]):
        try:
            super().__init__(schema, name="row")
        except SchemaError as error:
            raise RowsError(str(error)) from None

    def parse(self, text: str) -> tuple[dict[str, Any] | None, str | None]:
        """``(fields, None)`` or ``(None, error)`` for one answer: each field coerced to its
        declared type (``"12.5"`` is a number), then the whole checked against the schema."""
        value, problem = loads_bounded(text)
        if problem is not None:
            return None, problem
        if not isinstance(value, dict):
            return None, f"the answer is not a JSON object: {_snippet(text)}"
        out = {name: _coerce(value.get(name), self.types.get(name, "")) for name in self.fields}
        candidate = {k: v for k, v in value.items() if k not in out}
        candidate.update({k: v for k, v in out.items() if v is not None})
        problem = self.problem(candidate)
        if problem is not None:
            return None, f"the answer does not match the schema: {problem}"
        return out, None


def _coerce(value: Any, json_type: str) -> Any:
    if value is None:
        return None
    try:
        if json_type == "integer" and not isinstance(value, bool):
            return int(value)
        if json_type == "number" and not isinstance(value, bool):
            return float(value)
        if json_type == "boolean" and isinstance(value, str):
            return value.strip().lower() in ("true", "yes", "1")
        if json_type == "string" and not isinstance(value, str):
            return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return None
    return value


def _snippet(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= limit else flat[: limit - 1] + "…")
