"""The turn state: folds chat-completion chunks (or one whole message) into events.

Knows JSON shapes, not bytes or sockets. Accepts every dialect at once, because servers
disagree (docs/kimi-protocol.md): reasoning may be ``reasoning_content``, ``reasoning`` or
``reasoning_details``; usage may sit in ``choices[0]``, at top level, or be repeated in a
trailing chunk with no choices (we keep the last one seen and report it once, at the end);
tool-call arguments arrive as fragments joined by ``index`` and are final only when the
choice finishes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..events import Done, Event, Notice, ReasoningDelta, TextDelta, ToolCallRequested, Usage
from ..providers import Prices

__all__ = ["TurnState", "parse_usage", "join_tool_call_fragments"]


def parse_usage(raw: dict[str, Any], prices: Prices | None, price_note: str | None = None) -> Usage:
    """A `Usage` from any usage object shape; cost from ``prices`` when known, else
    ``price_note`` (what to say instead of a cost)."""

    def as_int(value: Any) -> int | None:
        try:
            return None if value is None else int(value)
        except (TypeError, ValueError):
            return None

    prompt = as_int(raw.get("prompt_tokens", raw.get("input_tokens")))
    completion = as_int(raw.get("completion_tokens", raw.get("output_tokens")))
    total = as_int(raw.get("total_tokens"))
    if total is None and prompt is not None and completion is not None:
        total = prompt + completion
    cached = as_int(raw.get("cached_tokens"))
    if cached is None:
        details = raw.get("prompt_tokens_details") or {}
        cached = as_int(details.get("cached_tokens")) if isinstance(details, dict) else None
    written = _cache_write_tokens(raw, as_int)
    details = raw.get("completion_tokens_details") or {}
    reasoning = as_int(details.get("reasoning_tokens")) if isinstance(details, dict) else None
    if reasoning is None:
        reasoning = as_int(raw.get("reasoning_tokens"))
    cost = currency = None
    if prices is not None and prompt is not None and completion is not None:
        cost = prices.cost(prompt, completion, cached or 0, written or 0)
        currency = prices.currency
    return Usage(prompt=prompt, completion=completion, cached=cached, reasoning=reasoning,
                 total=total, cost=cost, currency=currency, reported=True,
                 note=price_note if cost is None else None, cache_write=written)


# Where servers report prompt tokens written to the prompt cache (Moonshot bills cache writes
# as their own item since its 5m / 1h TTL options; the field name is taken in every form seen).
_CACHE_WRITE_KEYS = ("cache_write_tokens", "cache_creation_input_tokens", "cache_creation_tokens")


def _cache_write_tokens(raw: dict[str, Any], as_int: Any) -> int | None:
    details = raw.get("prompt_tokens_details")
    for source in (raw, details if isinstance(details, dict) else {}):
        for key in _CACHE_WRITE_KEYS:
            if key in source:
                value = as_int(source[key])
                if value is not None and value >= 0:
                    return value
    return None


def _reasoning_text(source: dict[str, Any]) -> str | None:
    """Reasoning from whichever field this dialect uses; never from two at once."""
    for key in ("reasoning_content", "reasoning"):
        value = source.get(key)
        if isinstance(value, str) and value:
            return value
    details = source.get("reasoning_details")
    if isinstance(details, list):
        texts = [d.get("text") or d.get("summary") or "" for d in details if isinstance(d, dict)]
        joined = "".join(t for t in texts if isinstance(t, str))
        return joined or None
    return None


@dataclass
class _PartialCall:
    index: int
    id: str = ""
    name: str = ""
    type: str = "function"
    arguments: list[str] = field(default_factory=list)


def join_tool_call_fragments(calls: dict[int, _PartialCall], deltas: list[dict[str, Any]]) -> None:
    """Fold streamed tool-call deltas into ``calls``, keyed by ``index``."""
    for position, delta in enumerate(deltas):
        index = delta.get("index")
        if not isinstance(index, int):
            index = position
        call = calls.get(index)
        if call is None:
            call = calls[index] = _PartialCall(index)
        if delta.get("id"):
            call.id = delta["id"]
        if delta.get("type"):
            call.type = delta["type"]
        function = delta.get("function") or {}
        if function.get("name"):
            call.name = function["name"]
        arguments = function.get("arguments")
        if arguments:
            call.arguments.append(arguments if isinstance(arguments, str) else json.dumps(arguments))


class TurnState:
    """One request's worth of state. ``handle_chunk``/``handle_message`` return new events."""

    def __init__(self, prices: Prices | None = None, price_note: str | None = None, prefix: str | None = None):
        self.prices = prices
        self.price_note = price_note
        # Partial mode: the prefilled start of the answer, joined to the first text (the
        # server does not repeat it), so every consumer sees the whole answer in order.
        self.prefix = prefix or None
        self.finish_reason: str | None = None
        self.model: str | None = None
        self._usage: dict[str, Any] | None = None
        self._calls: dict[int, _PartialCall] = {}
        self._calls_emitted = False
        self.saw_content = False

    # -- streaming ---------------------------------------------------------------------
    def handle_chunk(self, chunk: dict[str, Any]) -> list[Event]:
        # Fast path: most chunks of a stream carry one piece of text or reasoning and
        # nothing else (this runs once per token).
        if self.model is not None and "usage" not in chunk:
            choices = chunk.get("choices")
            if choices and len(choices) == 1:
                choice = choices[0]
                delta = choice.get("delta")
                if delta and len(delta) <= 2 and choice.get("finish_reason") is None and "usage" not in choice:
                    alone = len(delta) == 1 or "role" in delta
                    content = delta.get("content")
                    if content and alone and isinstance(content, str):
                        self.saw_content = True
                        if self.prefix:
                            content, self.prefix = self.prefix + content, None
                        return [TextDelta(content)]
                    reasoning = delta.get("reasoning_content")
                    if reasoning and alone and isinstance(reasoning, str):
                        self.saw_content = True
                        return [ReasoningDelta(reasoning)]
        return self._slow(chunk)

    def _slow(self, chunk: dict[str, Any]) -> list[Event]:
        events: list[Event] = []
        if self.model is None and chunk.get("model"):
            self.model = chunk["model"]
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        choices = chunk.get("choices")
        if not choices:
            return events
        choice = choices[0]
        if not isinstance(choice, dict):
            return events
        if isinstance(choice.get("usage"), dict):  # Moonshot puts it inside the choice
            self._usage = choice["usage"]
        delta = choice.get("delta") or choice.get("message") or {}
        if delta:
            reasoning = _reasoning_text(delta)
            if reasoning:
                events.append(ReasoningDelta(reasoning))
                self.saw_content = True
            content = delta.get("content")
            if content:
                events.append(self._text(content if isinstance(content, str) else str(content)))
                self.saw_content = True
            tool_calls = delta.get("tool_calls")
            if tool_calls:
                join_tool_call_fragments(self._calls, tool_calls)
                self.saw_content = True
        finish = choice.get("finish_reason")
        if finish:
            self.finish_reason = finish
            events.extend(self._emit_tool_calls())
        return events

    def _text(self, content: str) -> TextDelta:
        if self.prefix:
            content, self.prefix = self.prefix + content, None
        return TextDelta(content)

    # -- non-streaming -----------------------------------------------------------------
    def handle_message(self, body: dict[str, Any]) -> list[Event]:
        events: list[Event] = []
        self.model = body.get("model") or self.model
        if isinstance(body.get("usage"), dict):
            self._usage = body["usage"]
        choices = body.get("choices") or []
        if not choices:
            return events
        choice = choices[0]
        if isinstance(choice.get("usage"), dict) and self._usage is None:
            self._usage = choice["usage"]
        message = choice.get("message") or {}
        reasoning = _reasoning_text(message)
        if reasoning:
            events.append(ReasoningDelta(reasoning))
        content = message.get("content")
        if content:
            events.append(self._text(content if isinstance(content, str) else json.dumps(content)))
        for position, call in enumerate(message.get("tool_calls") or []):
            function = call.get("function") or {}
            arguments = function.get("arguments")
            if not isinstance(arguments, str):
                arguments = json.dumps(arguments or {})
            self._calls[position] = _PartialCall(
                position, call.get("id") or "", function.get("name") or "", call.get("type") or "function",
                [arguments],
            )
        self.finish_reason = choice.get("finish_reason")
        events.extend(self._emit_tool_calls())
        self.saw_content = bool(events)
        return events

    # -- end of turn -------------------------------------------------------------------
    def _emit_tool_calls(self) -> list[Event]:
        if self._calls_emitted or not self._calls:
            return []
        self._calls_emitted = True
        events: list[Event] = []
        for index in sorted(self._calls):
            call = self._calls[index]
            call_id = call.id or f"call_{index}"
            events.append(ToolCallRequested(call_id, call.name, "".join(call.arguments), index, call.type))
        return events

    @property
    def usage(self) -> Usage:
        if self._usage is None:
            return Usage.not_reported()
        return parse_usage(self._usage, self.prices, self.price_note)

    def finish(self, *, cut: bool = False) -> list[Event]:
        """Events that close the turn: pending tool calls, the one Usage, then Done."""
        events: list[Event] = []
        if self.prefix and (self.saw_content or not cut):
            events.append(self._text(""))  # the answer was the prefix alone
        if self._calls and not self._calls_emitted:
            if cut:
                events.append(Notice("The stream was cut while the model was writing a tool call; "
                                     "the incomplete call was dropped.", "warning"))
                self._calls_emitted = True
            else:
                events.extend(self._emit_tool_calls())
        events.append(self.usage)
        if not cut:
            events.append(Done(self.finish_reason, cut=False))
        return events


# -- the per-token template ----------------------------------------------------------------
#
# OpenAI-compatible servers send every token of a stream as the same line with one string
# swapped: ``data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,
# "model":"kimi-k2.5","choices":[{"index":0,"delta":{"content":"<token>"},
# "finish_reason":null}]}``. Decoding that whole object costs more than everything else the
# client does with a token. So the client learns the line's fixed head and tail from one
# fully decoded chunk, checks the learned template exactly (see `learn_template`), and for
# later lines that start with the head and end with the tail decodes only the string
# between them. A line that does not fit goes through ``json.loads`` as before.

_PROBE = "kimi template probe \u2063"
_scan = json.decoder.scanstring  # type: ignore[attr-defined]


def learn_template(line: str, chunk: dict[str, Any], key: str) -> tuple[str, str] | None:
    """``(head, tail)`` such that any line ``head + <JSON string body> + tail`` decodes to
    ``chunk`` with ``choices[0].delta[key]`` replaced by that string; None if there is no
    such split of ``line``.

    ``line`` is the ``data: ...`` line that ``chunk`` was decoded from. Only a chunk that
    means nothing but one fragment can be a template: one choice, a delta holding ``key``
    (and at most ``role``), no finish reason, no usage, no error. ``head`` ends with the
    string's opening quote and ``tail`` starts with its closing quote. The split is
    verified by decoding the template with a probe string in the slot: it must give back
    ``chunk`` with the probe in place of the token, which rules out a wrong occurrence,
    duplicate keys and anything else that would make the shortcut disagree with
    ``json.loads``.
    """
    text = _only_fragment(chunk, key)
    if text is None or not line.startswith("data: "):
        return None
    marker = f'"{key}"'
    start = line.find(marker)
    while start != -1:
        quote = start + len(marker)
        while quote < len(line) and line[quote] in " \t:":
            quote += 1
        if quote < len(line) and line[quote] == '"':
            try:
                value, end = _scan(line, quote + 1)
            except ValueError:
                value, end = None, -1
            if value == text:
                head, tail = line[: quote + 1], line[end - 1 :]
                if _template_holds(head, tail, chunk, key):
                    return head, tail
        start = line.find(marker, start + 1)
    return None


def _only_fragment(chunk: dict[str, Any], key: str) -> str | None:
    """The ``key`` fragment of a chunk that carries nothing else, or None."""
    if "usage" in chunk or "error" in chunk:
        return None
    choices = chunk.get("choices")
    if not isinstance(choices, list) or len(choices) != 1 or not isinstance(choices[0], dict):
        return None
    choice = choices[0]
    delta = choice.get("delta")
    if "usage" in choice or choice.get("finish_reason") is not None or not isinstance(delta, dict):
        return None
    if set(delta) - {"role"} != {key}:
        return None
    text = delta[key]
    return text if isinstance(text, str) and text else None


def _template_holds(head: str, tail: str, chunk: dict[str, Any], key: str) -> bool:
    try:
        probe = json.loads(head[6:] + json.dumps(_PROBE)[1:-1] + tail)
        delta = probe["choices"][0]["delta"]
        if delta.get(key) != _PROBE:
            return False
        delta[key] = chunk["choices"][0]["delta"][key]
    except (ValueError, LookupError, TypeError, AttributeError):
        return False
    return bool(probe == chunk)
