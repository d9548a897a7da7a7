"""Structured output per row: a JSON schema (or ``{field: type}``) in, one column per field out.

The schema goes to the model twice: as JSON mode (``response_format: {"type":
"json_object"}``, which Moonshot supports) and as a short system instruction naming the
fields, because JSON mode alone does not say which fields. Answers are parsed leniently (a
fenced ```json block is accepted) and each field is coerced to its declared type; an answer
that is not a JSON object gives the row an error that quotes its start, so the row is
marked, not dropped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .data import RowsError

__all__ = ["RowSchema"]

_TYPES: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean", list: "array",
                          dict: "object"}
_NAMES = {"str": "string", "string": "string", "int": "integer", "integer": "integer", "float": "number",
          "number": "number", "bool": "boolean", "boolean": "boolean", "list": "array", "array": "array",
          "dict": "object", "object": "object"}


class RowSchema:
    def __init__(self, schema: Mapping[str, Any]):
        if not isinstance(schema, Mapping) or not schema:
            raise RowsError("schema= needs a JSON schema or a dict such as {'name': str, 'total': float}.")
        if schema.get("type") == "object" and isinstance(schema.get("properties"), Mapping):
            props = {str(k): dict(v) if isinstance(v, Mapping) else {} for k, v in schema["properties"].items()}
            self.json_schema: dict[str, Any] = dict(schema)
        else:
            props = {}
            for name, kind in schema.items():
                json_type = _TYPES.get(kind) or (_NAMES.get(kind.lower()) if isinstance(kind, str) else None)
                if json_type is None:
                    raise RowsError(f"schema field {name!r}: unknown type {kind!r}; use str, int, float, bool, "
                                    "list or dict (or a JSON schema).")
                props[str(name)] = {"type": json_type}
            self.json_schema = {"type": "object", "properties": props, "required": list(props)}
        if not props:
            raise RowsError("schema= names no fields.")
        self.fields = list(props)
        self.types = {name: str(spec.get("type", "")) for name, spec in props.items()}

    @property
    def response_format(self) -> dict[str, Any]:
        return {"type": "json_object"}

    def instruction(self) -> str:
        return ("Answer with one JSON object and nothing else. It must match this JSON schema: "
                + json.dumps(self.json_schema, ensure_ascii=False, separators=(",", ":")))

    def parse(self, text: str) -> tuple[dict[str, Any] | None, str | None]:
        """``(fields, None)`` or ``(None, error)`` for one answer."""
        body = text.strip()
        if len(body) > MAX_ANSWER_CHARS:
            return None, f"the answer is {len(body):,} characters, over the {MAX_ANSWER_CHARS:,} read as JSON"
        if body.startswith("```"):
            body = body.split("\n", 1)[1] if "\n" in body else ""
            body = body.rsplit("```", 1)[0]
        if _too_deep(body, MAX_DEPTH):
            return None, f"the answer nests deeper than {MAX_DEPTH} levels: {_snippet(text)}"
        try:
            value = json.loads(body)
        except (ValueError, RecursionError):
            return None, f"the answer is not JSON: {_snippet(text)}"
        if not isinstance(value, dict):
            return None, f"the answer is not a JSON object: {_snippet(text)}"
        out: dict[str, Any] = {}
        for name in self.fields:
            out[name] = _coerce(value.get(name), self.types.get(name, ""))
        return out, None


MAX_ANSWER_CHARS = 2_000_000  # a structured answer larger than this is a bad row, not parsed
MAX_DEPTH = 64  # nesting deeper than this is a bad row (the parser would recurse that deep)


def _too_deep(body: str, limit: int) -> bool:
    """Whether ``body``'s brackets nest deeper than ``limit`` (outside JSON strings)."""
    if body.count("[") + body.count("{") <= limit:
        return False
    depth = 0
    in_string = escaped = False
    for char in body:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


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
