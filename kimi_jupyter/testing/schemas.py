"""A small value that conforms to a JSON schema: the simulator's structured answers.

When a request asks for a ``json_schema`` answer, or ``tool_choice: "required"`` forces a
tool call, the simulated model needs JSON that the schema accepts. :func:`example` builds
the smallest sensible instance, deterministically:

* ``const``, then the first of ``enum``, then ``default`` (if of a fitting kind), win;
* an object holds its ``required`` properties, plus the first declared others when
  ``minProperties`` asks for more;
* strings are ``"example"`` cut or padded to ``minLength``/``maxLength`` (a ``format`` of
  ``date``, ``date-time``, ``email``, ``uri`` or ``uuid`` gets a value of that form);
  numbers are 0 moved into ``minimum``/``maximum`` (exclusive bounds and ``multipleOf``
  honoured); booleans are false; arrays hold ``minItems`` items (``prefixItems`` first);
* ``anyOf``/``oneOf`` take their first branch, ``allOf`` merges its branches, ``$ref``
  follows local references (``#/$defs/...``, ``#/definitions/...``, ``#``).

``pattern`` and ``not`` are not solved: a schema that needs them may get a value it
refuses. Recursion is bounded (a reference cycle ends in null where allowed, else ``{}``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

_FORMATS = {
    "date": "2026-01-01",
    "date-time": "2026-01-01T00:00:00Z",
    "time": "00:00:00Z",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "ipv4": "127.0.0.1",
    "hostname": "example.com",
}
_MAX_DEPTH = 12
_KINDS = ("object", "array", "string", "integer", "number", "boolean", "null")


def example(schema: Any) -> Any:
    """A value ``schema`` accepts (see the module doc for what is not solved)."""
    root = schema if isinstance(schema, Mapping) else {}
    return _value(root, root, 0)


def _resolve(ref: str, root: Mapping[str, Any]) -> Mapping[str, Any]:
    if ref == "#":
        return root
    if not ref.startswith("#/"):
        return {}
    node: Any = root
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        node = node.get(part) if isinstance(node, Mapping) else None
    return node if isinstance(node, Mapping) else {}


def _merge(schema: Mapping[str, Any], root: Mapping[str, Any], depth: int) -> dict[str, Any]:
    """``schema`` with its ``$ref`` and ``allOf`` folded in (first-level keys; required lists joined)."""
    merged: dict[str, Any] = {}
    parts: list[Mapping[str, Any]] = []
    if isinstance(schema.get("$ref"), str) and depth < _MAX_DEPTH:
        parts.append(_merge(_resolve(schema["$ref"], root), root, depth + 1))
    for sub in schema.get("allOf") or ():
        if isinstance(sub, Mapping) and depth < _MAX_DEPTH:
            parts.append(_merge(sub, root, depth + 1))
    parts.append({k: v for k, v in schema.items() if k not in ("$ref", "allOf")})
    for part in parts:
        for key, value in part.items():
            if key == "required" and isinstance(value, list):
                merged["required"] = list(dict.fromkeys([*merged.get("required", []), *value]))
            elif key == "properties" and isinstance(value, Mapping):
                merged["properties"] = {**merged.get("properties", {}), **value}
            else:
                merged[key] = value
    return merged


def _kind(schema: Mapping[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k in _KINDS]
        non_null = [k for k in kinds if k != "null"]
        return (non_null or kinds or [None])[0]
    if kind in _KINDS:
        return str(kind)
    if "properties" in schema or "required" in schema or "additionalProperties" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    if any(k in schema for k in ("minLength", "maxLength", "pattern", "format")):
        return "string"
    if any(k in schema for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")):
        return "number"
    return None


def _fits(value: Any, kind: str | None) -> bool:
    checks = {
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
    }
    return kind is None or checks[kind](value)


def _value(schema: Mapping[str, Any], root: Mapping[str, Any], depth: int) -> Any:
    if depth > _MAX_DEPTH:
        return None
    schema = _merge(schema, root, depth)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        branches = [b for b in schema.get(key) or () if isinstance(b, Mapping)]
        if branches:
            rest = {k: v for k, v in schema.items() if k != key}
            return _value({**rest, **_merge(branches[0], root, depth + 1)}, root, depth + 1)
    kind = _kind(schema)
    if "default" in schema and _fits(schema["default"], kind):
        return schema["default"]
    if kind == "object":
        return _object(schema, root, depth)
    if kind == "array":
        return _array(schema, root, depth)
    if kind == "string":
        return _string(schema)
    if kind in ("integer", "number"):
        return _number(schema, kind == "integer")
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    return {}


def _object(schema: Mapping[str, Any], root: Mapping[str, Any], depth: int) -> dict[str, Any]:
    properties = schema.get("properties") if isinstance(schema.get("properties"), Mapping) else {}
    names = [n for n in schema.get("required") or () if isinstance(n, str)]
    minimum = schema.get("minProperties")
    if isinstance(minimum, int):
        names += [n for n in properties if n not in names][: max(0, minimum - len(names))]
    out: dict[str, Any] = {}
    for name in names:
        sub = properties.get(name)
        if not isinstance(sub, Mapping):
            extra = schema.get("additionalProperties")
            sub = extra if isinstance(extra, Mapping) else {"type": "string"}
        out[name] = _value(sub, root, depth + 1)
    return out


def _array(schema: Mapping[str, Any], root: Mapping[str, Any], depth: int) -> list[Any]:
    prefix = [p for p in schema.get("prefixItems") or () if isinstance(p, Mapping)]
    items = schema.get("items") if isinstance(schema.get("items"), Mapping) else {}
    count = schema.get("minItems") if isinstance(schema.get("minItems"), int) else 0
    out = [_value(p, root, depth + 1) for p in prefix[:count]]
    while len(out) < count:
        value = _value(items, root, depth + 1)
        if schema.get("uniqueItems") and value in out:
            value = _distinct(value, len(out))
        out.append(value)
    return out


def _distinct(value: Any, index: int) -> Any:
    if isinstance(value, str):
        return f"{value}{index}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value + index
    return value


def _string(schema: Mapping[str, Any]) -> str:
    text = _FORMATS.get(str(schema.get("format")), "example")
    low = schema.get("minLength") if isinstance(schema.get("minLength"), int) else 0
    high = schema.get("maxLength") if isinstance(schema.get("maxLength"), int) else None
    if len(text) < low:
        text = text + "x" * (low - len(text))
    if high is not None and len(text) > high:
        text = text[:high]
    return text


def _number(schema: Mapping[str, Any], integer: bool) -> int | float:
    low, high = -math.inf, math.inf
    step = schema.get("multipleOf") if isinstance(schema.get("multipleOf"), (int, float)) else None
    if isinstance(schema.get("minimum"), (int, float)):
        low = schema["minimum"]
    if isinstance(schema.get("maximum"), (int, float)):
        high = schema["maximum"]
    tiny = 1 if integer or step else 1e-6
    if isinstance(schema.get("exclusiveMinimum"), (int, float)):
        low = max(low, schema["exclusiveMinimum"] + (step or tiny) * 0.5)
    if isinstance(schema.get("exclusiveMaximum"), (int, float)):
        high = min(high, schema["exclusiveMaximum"] - (step or tiny) * 0.5)
    value: float = min(max(0, low), high) if low <= high else low
    unit = step if step else (1 if integer else None)
    if unit:
        value = math.ceil(value / unit) * unit
        if value > high:
            value = math.floor(high / unit) * unit
    if integer or (isinstance(value, float) and value.is_integer() and not isinstance(step, float)):
        return int(value)
    return value
