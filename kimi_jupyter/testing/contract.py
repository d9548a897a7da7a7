"""Moonshot's published request contract for Kimi servers, and what a request asks by it.

Moonshot publishes the rules any server that serves Kimi must follow (the Kimi Vendor
Verifier's parameter and feature tests). On the dialects that speak Moonshot's own API
(``Dialect.contract_rules``: ``moonshot`` and ``cloudsway``) the simulator refuses, with a
400 ``invalid_request_error``:

* ``thinking`` that is not an object, a ``type`` other than ``enabled``/``disabled``; while
  thinking is on, a ``keep`` other than ``all`` or an ``effort`` / ``reasoning_effort``
  other than ``low``, ``high`` or ``max`` (with thinking off both are ignored);
* a ``tool_choice`` other than ``auto``, ``none`` or ``required`` (a named function is not
  supported); ``required`` with no tool offered anywhere; any ``tool_choice`` beside an
  empty ``tools`` list;
* a ``response_format`` that is not an object of type ``text``, ``json_object`` or
  ``json_schema``; a ``json_schema`` without an object ``json_schema`` holding a non-empty
  ``name`` and an object ``schema``, or with a ``strict`` that is not a boolean;
* dynamic tools: ``tools`` on a message that is not a system message, a system message
  with both tools and non-empty ``content``, tools that are not a list of valid tool
  definitions, and a tool name declared twice (within or across system messages, or also
  in the request's ``tools``).

The request readings (:func:`effort`, :func:`offered_tools`, :func:`tool_choice`,
:func:`json_schema`) tell ``app.py`` how to answer: ``required`` yields a call to an
offered tool, ``none`` yields none, a ``json_schema`` answer follows its schema, and the
effort sets the length of the demo reasoning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .dialects import Dialect
from .errors import invalid_request
from .models import DEFAULT_EFFORT, EFFORTS, model_spec
from .validation import check_tool

TOOL_CHOICES = ("auto", "none", "required")
RESPONSE_TYPES = ("text", "json_object", "json_schema")


def check_contract(dialect: Dialect, body: Mapping[str, Any], model: str, thinking: bool) -> None:
    """Every rule of the module doc, in order; the first broken one raises its 400."""
    if not dialect.contract_rules:
        return
    _check_thinking(body, model, thinking)
    dynamic = _check_dynamic_tools(body)
    _check_tool_choice(body, dynamic)
    _check_response_format(body.get("response_format"))


def _check_thinking(body: Mapping[str, Any], model: str, thinking: bool) -> None:
    if model_spec(model).thinking == "never":
        return
    value = body.get("thinking")
    if value is not None and not isinstance(value, Mapping):
        raise invalid_request("Invalid request: 'thinking' must be an object, e.g. {\"type\": \"enabled\"}")
    value = value or {}
    kind = value.get("type")
    if kind is not None and kind not in ("enabled", "disabled"):
        raise invalid_request(f"Invalid request: thinking.type must be 'enabled' or 'disabled', not {kind!r}")
    if not thinking:
        return
    keep = value.get("keep")
    if keep is not None and keep != "all":
        raise invalid_request(f"Invalid request: thinking.keep must be 'all' while thinking is enabled, not {keep!r}")
    for name, level in (("thinking.effort", value.get("effort")), ("reasoning_effort", body.get("reasoning_effort"))):
        if level is not None and level not in EFFORTS:
            raise invalid_request(f"Invalid request: {name} must be one of {', '.join(EFFORTS)}, not {level!r}")


def _check_dynamic_tools(body: Mapping[str, Any]) -> list[Any]:
    """Checks tools declared in messages; returns them."""
    seen: set[str] = set()
    globals_ = body.get("tools")
    if isinstance(globals_, list):
        for tool in globals_:
            function = tool.get("function") if isinstance(tool, Mapping) else None
            if isinstance(function, Mapping) and isinstance(function.get("name"), str):
                seen.add(function["name"])
    dynamic: list[Any] = []
    for index, message in enumerate(body.get("messages") or ()):
        tools = message.get("tools") if isinstance(message, Mapping) else None
        if tools is None:
            continue
        if message.get("role") != "system":
            raise invalid_request(
                f"Invalid request: tools in message at index {index}: tools may only be declared in system messages"
            )
        if not isinstance(tools, list):
            raise invalid_request(f"Invalid request: tools in message at index {index} must be a list")
        if message.get("content") not in (None, "", []):
            raise invalid_request(
                f"Invalid request: the system message at index {index} declares tools, so its content must be empty"
            )
        for position, tool in enumerate(tools):
            check_tool(tool, f"tool {position} of message at index {index}", seen)
            dynamic.append(tool)
    return dynamic


def _check_tool_choice(body: Mapping[str, Any], dynamic: Sequence[Any]) -> None:
    choice = body.get("tool_choice")
    if choice is None:
        return
    if isinstance(choice, Mapping):
        raise invalid_request(
            "Invalid request: tool_choice naming a function is not supported; use 'auto', 'none' or 'required'"
        )
    if choice not in TOOL_CHOICES:
        raise invalid_request(f"Invalid request: tool_choice must be 'auto', 'none' or 'required', not {choice!r}")
    tools = body.get("tools")
    if isinstance(tools, list) and not tools:
        raise invalid_request("Invalid request: tool_choice was given with an empty 'tools' list")
    if choice == "required" and not tools and not dynamic:
        raise invalid_request("Invalid request: tool_choice 'required' needs at least one tool")


def _check_response_format(value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, Mapping):
        raise invalid_request("Invalid request: response_format must be an object")
    kind = value.get("type")
    if kind not in RESPONSE_TYPES:
        raise invalid_request(
            f"Invalid request: response_format.type must be one of {', '.join(RESPONSE_TYPES)}, not {kind!r}"
        )
    if kind != "json_schema":
        return
    spec = value.get("json_schema")
    if not isinstance(spec, Mapping):
        raise invalid_request("Invalid request: response_format json_schema needs a 'json_schema' object")
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise invalid_request("Invalid request: response_format.json_schema.name is required")
    if not isinstance(spec.get("schema"), Mapping):
        raise invalid_request("Invalid request: response_format.json_schema.schema must be a JSON schema object")
    strict = spec.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise invalid_request("Invalid request: response_format.json_schema.strict must be a boolean")


# -- what the request asks ----------------------------------------------------------------
def effort(body: Mapping[str, Any], model: str) -> str | None:
    """The thinking effort in force: ``thinking.effort``, else ``reasoning_effort``, else
    ``max``; None on a model without effort levels."""
    if not model_spec(model).efforts:
        return None
    thinking = body.get("thinking")
    level = thinking.get("effort") if isinstance(thinking, Mapping) else None
    if level is None:
        level = body.get("reasoning_effort")
    return level if level in EFFORTS else DEFAULT_EFFORT


def offered_tools(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The request's tools, then those declared in system messages (well-formed ones only)."""
    found: list[Mapping[str, Any]] = []
    sources: list[Any] = [body.get("tools")]
    sources += [m.get("tools") for m in body.get("messages") or () if isinstance(m, Mapping)]
    for tools in sources:
        for tool in tools if isinstance(tools, list) else ():
            if isinstance(tool, Mapping) and isinstance(tool.get("function"), Mapping):
                found.append(tool)
    return found


def tool_choice(body: Mapping[str, Any]) -> str:
    """``auto`` (the default), ``none`` or ``required``."""
    choice = body.get("tool_choice")
    return choice if choice in TOOL_CHOICES else "auto"


def json_schema(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The schema of a ``json_schema`` response format, else None."""
    value = body.get("response_format")
    if not isinstance(value, Mapping) or value.get("type") != "json_schema":
        return None
    spec = value.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, Mapping) else None
    return schema if isinstance(schema, Mapping) else None
