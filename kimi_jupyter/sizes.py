"""An upper bound of a JSON value's encoded size that reads no text, for the request size checks.

No character of a JSON string takes more than 6 bytes (``\\u00XX``), except in data URLs
(base64: one byte each), so a bound needs only string lengths. `Conversation` keeps this
bound per stored message, computed once when the message is added, so sizing a request with
a long history costs the new messages only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["json_bound"]


def json_bound(value: Any) -> int:
    """Bytes ``value`` takes at most as compact JSON (UTF-8)."""
    kind = type(value)  # the exact JSON types first: an ABC check costs more than the rest
    if kind is str:
        return len(value) + 2 if value.startswith("data:") else 6 * len(value) + 2
    if kind is dict:
        return 2 + sum(json_bound(k) + json_bound(v) + 2 for k, v in value.items())
    if kind is list:
        return 2 + sum(json_bound(v) + 1 for v in value)
    if kind is int or kind is float or kind is bool or value is None:
        return 24 if kind is not int or -10**20 < value < 10**20 else len(str(value))
    if isinstance(value, str):
        return len(value) + 2 if value.startswith("data:") else 6 * len(value) + 2
    if isinstance(value, Mapping):
        return 2 + sum(json_bound(k) + json_bound(v) + 2 for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return 2 + sum(json_bound(v) + 1 for v in value)
    if isinstance(value, int) and not isinstance(value, bool) and not -10**20 < value < 10**20:
        return len(str(value))
    return 24  # other numbers (a float's repr is at most 24 characters), booleans, null
