"""What the simulated model says, and when: replies, tool calls, rules and scripts.

A :class:`Reply` is the content of one answer (reasoning, text, tool calls, optional usage
override and chunking); the dialect decides its wire shape. Replies are chosen per chat
request in this order: a queued fault, a queued reply (FIFO), the first matching
:class:`Rule`, and finally the built-in demo reply.

Rules and their script form
---------------------------
A rule answers *either* a user turn *or* a tool-result turn, never both, so a scripted
agent cannot loop on its own tool call:

* ``after_tool`` unset: the rule answers a request whose last message is not a tool result
  (a user message, or a partial assistant prefix);
* ``after_tool="run_python"``: it answers only when the last message is the result of a
  ``run_python`` call (``"*"``: of any tool);
* ``match``: a regular expression searched (``re.search``) in the text of the last *user*
  message, which stays the same during the tool rounds of an agent turn; in Python it may
  also be a callable ``(messages) -> bool``;
* ``after_result``: with ``after_tool``, a regular expression that must also be found in
  the text of that tool result (e.g. the loop's "declined" message when the user said no);
* ``step``: the number of assistant messages since that last user message (0 for the
  first answer, 1 after the first tool round, ...), to script multi-step agents;
* ``times``: how often the rule may fire (unset: any number of times).

A script file is JSON: a list of rules (or ``{"rules": [...]}``), each an object with the
keys above plus ``reply`` (a :meth:`Reply.from_dict` object, or a string for plain text)
or ``fault`` (a :meth:`Fault.from_dict` object)::

    [
      {"match": "(?i)plot", "reply": {"reasoning": "Run code first.",
        "tool_calls": [{"name": "run_python", "arguments": {"code": "print(1)"}}]}},
      {"match": "(?i)plot", "after_tool": "run_python", "reply": "Here is your plot."},
      {"match": "busy", "fault": {"kind": "rate_limit", "wait": 1}, "times": 1}
    ]
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

from .faults import Fault

Messages = list[dict[str, Any]]
Predicate = Callable[[Messages], bool]
_USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens", "reasoning_tokens")
_FINISH_REASONS = ("stop", "length", "tool_calls", "content_filter")


@dataclass(frozen=True)
class ToolCall:
    """A function call the simulated model makes; ``arguments`` is a JSON string or a dict.

    ``id`` is chosen by the dialect (``functions.name:0``, ``call_...``) unless given.
    """

    name: str
    arguments: str | Mapping[str, Any] = "{}"
    id: str | None = None

    @property
    def arguments_json(self) -> str:
        """The arguments exactly as they go on the wire."""
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(dict(self.arguments), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ToolCall:
        """``{"name": ..., "arguments": str | dict, "id": optional}``."""
        _check_keys("tool call", data, ("name", "arguments", "id"))
        if not isinstance(data.get("name"), str):
            raise ValueError(f"a tool call needs a string 'name': {data!r}")
        return cls(data["name"], data.get("arguments", "{}"), data.get("id"))


@dataclass(frozen=True)
class Reply:
    """One scripted answer.

    ``chunks``/``reasoning_chunks`` give the exact streamed pieces (and then replace
    ``text``/``reasoning``); otherwise the strings are cut every ``chunk_chars``
    characters. ``chunk_delay`` is the pause between streamed chunks (None: the
    simulator's default). ``finish_reason`` None means ``tool_calls`` when there are tool
    calls, else ``stop`` (or ``length`` when ``max_tokens`` cuts the answer). ``usage``
    overrides any of ``prompt_tokens``, ``completion_tokens``, ``total_tokens``,
    ``cached_tokens``, ``reasoning_tokens``. ``model`` overrides the model echoed back.
    Reasoning is only sent when thinking is on for the request.
    """

    text: str = ""
    reasoning: str = ""
    tool_calls: Sequence[ToolCall] = ()
    finish_reason: str | None = None
    usage: Mapping[str, int] | None = None
    chunks: Sequence[str] | None = None
    chunk_chars: int = 8
    chunk_delay: float | None = None
    reasoning_chunks: Sequence[str] | None = None
    model: str | None = None

    def __post_init__(self) -> None:
        if self.chunk_chars < 1:
            raise ValueError("chunk_chars must be at least 1")
        if self.usage is not None and set(self.usage) - set(_USAGE_KEYS):
            raise ValueError(
                f"unknown usage keys {sorted(set(self.usage) - set(_USAGE_KEYS))}; use {_USAGE_KEYS}"
            )
        if self.finish_reason is not None and self.finish_reason not in _FINISH_REASONS:
            raise ValueError(f"finish_reason must be one of {_FINISH_REASONS}")
        calls = tuple(ToolCall.from_dict(c) if isinstance(c, Mapping) else c for c in self.tool_calls)
        object.__setattr__(self, "tool_calls", calls)

    @property
    def full_text(self) -> str:
        """The whole answer text."""
        return "".join(self.chunks) if self.chunks is not None else self.text

    @property
    def full_reasoning(self) -> str:
        """The whole reasoning text."""
        return "".join(self.reasoning_chunks) if self.reasoning_chunks is not None else self.reasoning

    def text_pieces(self) -> list[str]:
        """The answer as streamed pieces."""
        return list(self.chunks) if self.chunks is not None else split_text(self.text, self.chunk_chars)

    def reasoning_pieces(self) -> list[str]:
        """The reasoning as streamed pieces."""
        if self.reasoning_chunks is not None:
            return list(self.reasoning_chunks)
        return split_text(self.reasoning, self.chunk_chars)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | str) -> Reply:
        """Build a reply from a script object (the constructor's keywords) or a plain string."""
        if isinstance(data, str):
            return cls(text=data)
        _check_keys("reply", data, tuple(cls.__dataclass_fields__))
        options = dict(data)
        options["tool_calls"] = tuple(ToolCall.from_dict(c) for c in options.get("tool_calls") or ())
        return cls(**options)


def split_text(text: str, size: int) -> list[str]:
    """Cut ``text`` into pieces of ``size`` characters (none for an empty string)."""
    return [text[i : i + size] for i in range(0, len(text), size)]


def _check_keys(what: str, data: Mapping[str, Any], allowed: Sequence[str]) -> None:
    if not isinstance(data, Mapping):
        raise ValueError(f"a {what} must be a JSON object, not {data!r}")
    unknown = set(data) - set(allowed)
    if unknown:
        raise ValueError(f"unknown {what} keys {sorted(unknown)}; allowed: {sorted(allowed)}")


def message_text(message: Mapping[str, Any]) -> str:
    """The text of a message: its string content, or its text parts joined by newlines."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("text") for p in content if isinstance(p, Mapping) and p.get("type") == "text"]
        return "\n".join(t for t in texts if isinstance(t, str))
    return ""


@dataclass(frozen=True)
class Conversation:
    """The facts about a request's messages that rules and faults match on."""

    messages: Messages
    last_user_text: str
    tool_result_name: str | None
    step: int
    tool_result_text: str = ""

    @classmethod
    def of(cls, messages: Messages) -> Conversation:
        """Read ``messages`` once: last user text, trailing tool result, agent step.

        A user message right after tool results (images a tool produced, sent back as a
        user message) belongs to those results: it is not the user's question.
        """

        def attachment(i: int) -> bool:
            return messages[i].get("role") == "user" and i > 0 and messages[i - 1].get("role") == "tool"

        last_user = -1
        for i, message in enumerate(messages):
            if message.get("role") == "user" and not attachment(i):
                last_user = i
        text = message_text(messages[last_user]) if last_user >= 0 else ""
        step = sum(1 for m in messages[last_user + 1 :] if m.get("role") == "assistant")
        tool_name = None
        tool_text = ""
        end = len(messages) - 1
        if end >= 0 and attachment(end):
            end -= 1
        if end >= 0 and messages[end].get("role") == "tool":
            tool_name = _tool_result_name(messages, end) or ""
            tool_text = message_text(messages[end])
        return cls(messages, text, tool_name, step, tool_text)


def _tool_result_name(messages: Messages, index: int) -> str | None:
    """The function name a tool message answers: its ``name``, else found by call id."""
    name = messages[index].get("name")
    if isinstance(name, str) and name:
        return name
    call_id = messages[index].get("tool_call_id")
    for message in reversed(messages[:index]):
        for call in message.get("tool_calls") or ():
            if isinstance(call, Mapping) and call.get("id") == call_id:
                function = call.get("function") or {}
                return function.get("name") if isinstance(function, Mapping) else None
    return None


def compile_match(match: str | re.Pattern[str] | Predicate | None) -> Callable[[Conversation], bool]:
    """Turn a regex (searched in the last user text), a predicate or None into a test."""
    if match is None:
        return lambda conv: True
    if isinstance(match, (str, re.Pattern)):
        pattern = re.compile(match)
        return lambda conv: pattern.search(conv.last_user_text) is not None
    if callable(match):
        return lambda conv: bool(match(conv.messages))
    raise TypeError(f"match must be a regex string, a compiled pattern or a callable, not {match!r}")


ReplyFactory = Callable[[Messages], Reply]
Outcome = Union[Reply, ReplyFactory, Fault]


@dataclass
class Rule:
    """A standing answer: ``outcome`` when ``matches(conversation)``; see the module doc."""

    outcome: Outcome
    match: str | re.Pattern[str] | Predicate | None = None
    after_tool: str | None = None
    step: int | None = None
    times: int | None = None
    after_result: str | None = None
    _test: Callable[[Conversation], bool] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._test = compile_match(self.match)

    def matches(self, conv: Conversation) -> bool:
        """True when this rule answers ``conv`` (does not consume it)."""
        if self.times is not None and self.times <= 0:
            return False
        if self.after_tool is None:
            if conv.tool_result_name is not None:
                return False
        elif conv.tool_result_name is None or self.after_tool not in ("*", conv.tool_result_name):
            return False
        if self.step is not None and conv.step != self.step:
            return False
        if self.after_result is not None and (
            conv.tool_result_name is None or re.search(self.after_result, conv.tool_result_text) is None
        ):
            return False
        return self._test(conv)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Rule:
        """One script entry: ``match``, ``after_tool``, ``after_result``, ``step``, ``times`` and
        ``reply`` or ``fault``.

        With ``"expand": true`` the reply's text is a template filled from the ``match`` regex's
        groups in the last user text (``\\g<name>``, as ``re.Match.expand``), so one rule can
        answer many rows (the rows notebook extracts each ticket's own order number)."""
        _check_keys("rule", data, ("match", "after_tool", "after_result", "step", "times", "reply", "fault",
                                   "comment", "expand"))
        if ("reply" in data) == ("fault" in data):
            raise ValueError(f"a rule needs exactly one of 'reply' or 'fault': {data!r}")
        outcome: Outcome = (
            Fault.from_dict(data["fault"]) if "fault" in data else Reply.from_dict(data["reply"])
        )
        if data.get("expand") and isinstance(outcome, Reply) and isinstance(data.get("match"), str):
            outcome = _expanding(outcome, re.compile(data["match"]))
        return cls(outcome, data.get("match"), data.get("after_tool"), data.get("step"), data.get("times"),
                   data.get("after_result"))


def _expanding(reply: Reply, pattern: re.Pattern[str]) -> ReplyFactory:
    def answer(messages: Messages) -> Reply:
        found = pattern.search(Conversation.of(messages).last_user_text)
        text = found.expand(reply.full_text) if found else reply.full_text
        return dataclasses.replace(reply, text=text, chunks=None)

    return answer


def load_rules(
    source: str | os.PathLike[str] | Sequence[Mapping[str, Any]] | Mapping[str, Any],
) -> list[Rule]:
    """Read rules from a JSON script file (a path) or from already parsed JSON data."""
    if isinstance(source, (str, os.PathLike)):
        with open(source, encoding="utf-8") as handle:
            source = json.load(handle)
    if isinstance(source, Mapping):
        source = source.get("rules", [])
    if not isinstance(source, Sequence) or isinstance(source, (str, bytes)):
        raise ValueError("a script must be a JSON list of rules or an object with a 'rules' list")
    return [Rule.from_dict(entry) for entry in source]
