"""Structured output: a JSON schema in, a checked JSON value out.

``%%kimi -f json --schema NAME``, ``ask(schema=...)`` and ``map(schema=...)`` share this:

* the schema is a JSON schema (``{"type": "object", "properties": ...}``) or the short form
  ``{"name": str, "total": float}``, turned into an object schema with every field required;
* the request carries ``response_format: {"type": "json_schema", "json_schema": {"name",
  "schema", "strict"}}`` where the model supports it (the model registry says which:
  kimi-k2.6, kimi-k3, kimi-k3.1-pro), else ``{"type": "json_object"}``; either way a short
  instruction names the schema, because JSON mode alone does not say which fields;
* the answer is parsed with bounds (at most `MAX_ANSWER_BYTES`, nesting at most `MAX_DEPTH`
  levels, checked before the parser runs, so a hostile answer cannot raise RecursionError)
  and validated with ``jsonschema``; on failure the entry point asks once more with the
  validation error (`retry_prompt`) and marks what still fails.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["MAX_ANSWER_BYTES", "MAX_DEPTH", "Schema", "SchemaError", "loads_bounded"]

MAX_ANSWER_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 64

_TYPES: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean", list: "array",
                          dict: "object"}
_NAMES = {"str": "string", "string": "string", "int": "integer", "integer": "integer", "float": "number",
          "number": "number", "bool": "boolean", "boolean": "boolean", "list": "array", "array": "array",
          "dict": "object", "object": "object"}
_NAME_OK = re.compile(r"[^a-zA-Z0-9_-]")


class SchemaError(ValueError):
    """The schema given by the user cannot be used (one line, nothing was sent)."""


def loads_bounded(text: str) -> tuple[Any, str | None]:
    """``(value, None)`` or ``(None, problem)``: JSON parsed within size and depth bounds.

    A fenced ```json block is accepted. The nesting depth is counted by one linear scan
    (outside strings) before ``json.loads`` runs."""
    body = text.strip()
    if body.startswith("```"):
        body = body.split("\n", 1)[1] if "\n" in body else ""
        body = body.rsplit("```", 1)[0].strip()
    if len(body) > MAX_ANSWER_BYTES:
        return None, f"the answer is over {MAX_ANSWER_BYTES // (1024 * 1024)} MiB of JSON"
    depth = _max_depth(body)
    if depth > MAX_DEPTH:
        return None, f"the answer nests deeper than {MAX_DEPTH} levels"
    try:
        return json.loads(body), None
    except (ValueError, RecursionError):
        return None, f"the answer is not JSON: {_snippet(text)}"


def _max_depth(text: str) -> int:
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_DEPTH:
                    return deepest
        elif ch in "]}":
            depth -= 1
    return deepest


class Schema:
    """A user's schema, checked once: the JSON schema, its name, and its object fields."""

    def __init__(self, schema: Any, name: str | None = None, strict: bool = True):
        if not isinstance(schema, Mapping) or not schema:
            raise SchemaError("schema= needs a JSON schema or a dict such as {'name': str, 'total': float}.")
        if schema.get("type") == "object" and isinstance(schema.get("properties"), Mapping):
            props = {str(k): dict(v) if isinstance(v, Mapping) else {} for k, v in schema["properties"].items()}
            json_schema: dict[str, Any] = dict(schema)
        else:
            props = {}
            for field, kind in schema.items():
                json_type = _TYPES.get(kind) or (_NAMES.get(kind.lower()) if isinstance(kind, str) else None)
                if json_type is None:
                    raise SchemaError(f"schema field {field!r}: unknown type {kind!r}; use str, int, float, bool, "
                                      "list or dict (or a JSON schema).")
                props[str(field)] = {"type": json_type}
            json_schema = {"type": "object", "properties": props, "required": list(props),
                           "additionalProperties": False}
        if not props:
            raise SchemaError("schema= names no fields.")
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError as BadSchema

        try:
            Draft202012Validator.check_schema(json_schema)
        except BadSchema as error:
            raise SchemaError(f"schema= is not a valid JSON schema: {error.message}") from None
        self.json_schema = json_schema
        self._validator = Draft202012Validator(json_schema)
        self.fields = list(props)
        self.types = {field: str(spec.get("type", "")) for field, spec in props.items()}
        self.name = _NAME_OK.sub("_", name or str(schema.get("title") or "answer"))[:64] or "answer"
        self.strict = bool(strict)

    def response_format(self, info: Any) -> dict[str, Any]:
        """``json_schema`` where the model (a `ModelInfo`, or None) supports it, else ``json_object``."""
        if info is not None and getattr(info, "json_schema", False):
            return {"type": "json_schema",
                    "json_schema": {"name": self.name, "schema": self.json_schema, "strict": self.strict}}
        return {"type": "json_object"}

    def instruction(self) -> str:
        return ("Answer with one JSON object and nothing else. It must match this JSON schema: "
                + json.dumps(self.json_schema, ensure_ascii=False, separators=(",", ":")))

    def check(self, text: str) -> tuple[Any, str | None]:
        """``(value, None)`` when ``text`` is JSON matching the schema, else ``(value or None, problem)``."""
        value, problem = loads_bounded(text)
        if problem is not None:
            return None, problem
        return value, self.problem(value)

    def problem(self, value: Any) -> str | None:
        """Why ``value`` does not match the schema (the most relevant error), or None."""
        from jsonschema.exceptions import best_match

        error = best_match(self._validator.iter_errors(value))
        if error is None:
            return None
        where = "/".join(str(p) for p in error.absolute_path) or "the answer"
        return f"{where}: {error.message[:300]}"

    def retry_prompt(self, problem: str, answer: str | None = None, prompt: Any = None) -> Any:
        """The follow-up that asks once more. With ``prompt`` (a turn without history) the
        original prompt and the failed answer are repeated; content parts stay parts."""
        ask = (f"The answer did not match the JSON schema ({problem}). Reply again with only the corrected JSON "
               "object, matching the schema exactly.")
        if prompt is None:
            return ask
        previous = f"\n\nA previous answer was:\n{(answer or '')[:20_000]}\n\n{ask}"
        if isinstance(prompt, list):
            return [*prompt, {"type": "text", "text": previous}]
        return f"{prompt}{previous}"


def _snippet(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= limit else flat[: limit - 1] + "…")
