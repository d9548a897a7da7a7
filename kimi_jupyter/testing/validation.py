"""Request checks, the way Moonshot's API refuses requests.

Clients must be tested against the rules the real service enforces, so the simulator
enforces them too and answers with Moonshot's error types and wording:

* for K2.5 models (on the ``moonshot`` and ``cloudsway`` dialects), fixed sampling values:
  temperature 1.0 with thinking / 0.6 without, top_p 0.95, n 1, penalties 0;
* on dialects that forward to Moonshot (``moonshot``, ``cloudsway``, ``openrouter``):
  images and videos only as ``data:`` (or ``ms://``) URLs; ``reasoning_content`` on every
  assistant tool-call message while thinking is on; tool messages with a ``tool_call_id``
  that answers an earlier call, and a result for every call; tool names matching
  ``^[a-zA-Z_][a-zA-Z0-9-_]{2,63}$`` (or the builtin ``$web_search``), at most 128 tools,
  typed schema properties; ``$web_search`` results echoing the call's arguments unchanged;
* everywhere: a known model (except llama.cpp, which serves whatever it loaded), decodable
  data URLs, and a prompt within the context limit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from .dialects import Dialect
from .errors import ApiError, invalid_request, not_found
from .faults import context_limit_message, model_not_found_message
from .models import fixed_sampling, model_spec
from .tokens import PromptStats

MAX_TOOLS = 128
TOOL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9-_]{2,63}$")
WEB_SEARCH = "$web_search"
_ROLES = ("system", "user", "assistant", "tool")
_SCHEMA_KEYS = ("type", "anyOf", "oneOf", "allOf", "enum", "$ref", "const")


def check_shape(body: Any) -> None:
    """The body is an object with a non-empty ``messages`` list of objects."""
    if not isinstance(body, Mapping):
        raise invalid_request("Invalid request: the body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid_request("Invalid request: 'messages' must be a non-empty list")
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise invalid_request(f"Invalid request: message at index {index} must be an object")


def check_model(dialect: Dialect, model: Any, known: Sequence[str]) -> None:
    """The model id is a string the provider serves."""
    if not dialect.checks_model:
        return
    if not isinstance(model, str) or not model:
        raise invalid_request("Invalid request: 'model' is required")
    if model not in known:
        raise not_found(model_not_found_message(model))


def check_sampling(dialect: Dialect, body: Mapping[str, Any], model: str, thinking: bool) -> None:
    """Fixed sampling values (``models.fixed_sampling``): any other value is a 400."""
    if not dialect.sampling_rules:
        return
    for name, allowed in fixed_sampling(model, thinking).items():
        value = body.get(name)
        if value is None:
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not any(abs(value - a) <= 1e-9 for a in allowed)
        ):
            shown = " or ".join(f"{a:g}" for a in allowed)
            raise invalid_request(f"invalid {name}: only {shown} is allowed for this model")


def check_media(dialect: Dialect, stats: PromptStats) -> None:
    """Images and videos must be (decodable) base64 data URLs."""
    for media in stats.media:
        where = f"{media.kind}_url in message at index {media.message_index}"
        if media.source == "invalid":
            raise invalid_request(f"Invalid request: malformed data URL in {where}")
        if media.source == "remote" and dialect.moonshot_rules:
            raise invalid_request(
                f"Invalid request: unsupported {where}: only base64 data URLs "
                f"(data:{media.kind}/...;base64,...) are accepted, got {media.url_start!r}"
            )


def check_messages(dialect: Dialect, messages: Sequence[Mapping[str, Any]], thinking: bool) -> None:
    """Roles, reasoning on tool-call turns, and tool results that answer real calls."""
    if not dialect.moonshot_rules:
        return
    calls: dict[str, str] = {}  # id -> arguments, for $web_search echo checks
    names: dict[str, str] = {}
    pending: dict[str, int] = {}  # call id -> index of the assistant message waiting for it
    for index, message in enumerate(messages):
        role = message.get("role")
        if role not in _ROLES:
            raise invalid_request(f"Invalid request: unknown role {role!r} in message at index {index}")
        if role != "tool" and pending:
            first = min(pending.values())
            raise invalid_request(
                f"Invalid request: the assistant message at index {first} has tool calls without tool "
                f"results: {sorted(pending)}"
            )
        if role == "assistant" and message.get("tool_calls"):
            if thinking and not any(message.get(f) for f in dialect.reasoning_request_fields):
                raise invalid_request(
                    "thinking is enabled but reasoning_content is missing in assistant tool call "
                    f"message at index {index}"
                )
            for call in message["tool_calls"]:
                function = call.get("function") if isinstance(call, Mapping) else None
                if not isinstance(function, Mapping) or not isinstance(call.get("id"), str):
                    raise invalid_request(f"Invalid request: malformed tool call in message at index {index}")
                calls[call["id"]] = str(function.get("arguments") or "")
                names[call["id"]] = str(function.get("name") or "")
                pending[call["id"]] = index
        if role == "tool":
            _check_tool_message(message, index, calls, names)
            pending.pop(message["tool_call_id"], None)


def _check_tool_message(
    message: Mapping[str, Any], index: int, calls: Mapping[str, str], names: Mapping[str, str]
) -> None:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise invalid_request(f"Invalid request: tool_call_id is missing in tool message at index {index}")
    if call_id not in calls:
        raise invalid_request(
            f"Invalid request: tool_call_id {call_id} in tool message at index {index} is not found "
            "in any earlier assistant tool call"
        )
    if names[call_id] == WEB_SEARCH and message.get("content") != calls[call_id]:
        raise invalid_request(
            f"Invalid request: the $web_search tool message at index {index} must carry the call's "
            "arguments unchanged as its content"
        )


def check_tools(dialect: Dialect, tools: Any) -> None:
    """At most 128 well-named tools with typed parameter schemas, no name twice."""
    if tools is None or not dialect.moonshot_rules:
        return
    if not isinstance(tools, list):
        raise invalid_request("Invalid request: 'tools' must be a list")
    if len(tools) > MAX_TOOLS:
        raise invalid_request(f"Invalid request: too many tools: {len(tools)} (at most {MAX_TOOLS})")
    seen: set[str] = set()
    for index, tool in enumerate(tools):
        check_tool(tool, f"tool at index {index}", seen)


def check_tool(tool: Any, where: str, seen: set[str] | None = None) -> None:
    """One tool definition (``where`` names it in the error); ``seen`` collects names to refuse repeats."""
    function = tool.get("function") if isinstance(tool, Mapping) else None
    if not isinstance(function, Mapping):
        raise invalid_request(f"Invalid request: {where} has no 'function' object")
    name = function.get("name")
    if tool.get("type") == "builtin_function":
        if name != WEB_SEARCH:
            raise invalid_request(f"Invalid request: unknown builtin function {name!r}")
    else:
        if tool.get("type") != "function":
            raise invalid_request(f"Invalid request: {where} must have type 'function'")
        if not isinstance(name, str) or not TOOL_NAME.match(name):
            raise invalid_request(
                f"Invalid request: invalid tool name {name!r} ({where}): it must match {TOOL_NAME.pattern}"
            )
        parameters = function.get("parameters")
        if parameters is not None:
            _check_schema(parameters, f"{name}.parameters")
    if seen is not None:
        if name in seen:
            raise invalid_request(f"Invalid request: duplicate tool name {name!r} ({where})")
        seen.add(name)


def _check_schema(schema: Any, path: str) -> None:
    if not isinstance(schema, Mapping):
        raise invalid_request(f"Invalid request: tool schema {path} must be an object")
    properties = schema.get("properties")
    if isinstance(properties, Mapping):
        for key, sub in properties.items():
            where = f"{path}.properties.{key}"
            if not isinstance(sub, Mapping) or not any(k in sub for k in _SCHEMA_KEYS):
                raise invalid_request(f"Invalid request: tool schema property {where} needs a 'type'")
            _check_schema(sub, where)
    items = schema.get("items")
    if isinstance(items, Mapping):
        _check_schema(items, f"{path}.items")


def check_web_search(dialect: Dialect, tools: Any, model: str, thinking: bool) -> None:
    """On K2.5/K2.6, a request that offers ``$web_search`` must switch thinking off."""
    if not dialect.moonshot_rules or not thinking or not model_spec(model).web_search_needs_thinking_off:
        return
    for tool in tools if isinstance(tools, list) else ():
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if isinstance(function, Mapping) and function.get("name") == WEB_SEARCH:
            raise invalid_request(
                "Invalid request: the builtin $web_search cannot be used while thinking is enabled; "
                "send thinking: {\"type\": \"disabled\"} with it"
            )


def partial_prefix(dialect: Dialect, messages: Sequence[Mapping[str, Any]]) -> str | None:
    """The prefix of a partial-mode request (None without one); misplaced ``partial`` is a 400.

    Moonshot's partial mode: the last message is ``{"role": "assistant", "content": PREFIX,
    "partial": true}`` and the reply continues PREFIX without repeating it. Dialects whose
    servers do not support it refuse the field.
    """
    last = len(messages) - 1
    for index, message in enumerate(messages):
        if message.get("partial") is None:
            continue
        if not dialect.partial_mode:
            raise invalid_request(
                f"Invalid request: unrecognized field 'partial' in message at index {index}: "
                "partial mode is not supported here"
            )
        if message.get("partial") is not True or index != last or message.get("role") != "assistant":
            raise invalid_request(
                f"Invalid request: 'partial': true is only allowed on the last message, which must be an "
                f"assistant message (message at index {index})"
            )
        content = message.get("content")
        return content if isinstance(content, str) else ""
    return None


def check_context(stats: PromptStats, limit: int) -> None:
    """The prompt fits in the model's context window."""
    if stats.total > limit:
        raise ApiError(400, "invalid_request_error", context_limit_message(stats.total, limit))
