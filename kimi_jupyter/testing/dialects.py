"""Wire shapes of each provider dialect.

The simulator decides *what* the model says (a :class:`Turn`); a :class:`Dialect` decides
*how* it goes on the wire: where reasoning sits, where usage sits (and whether it is sent at
all), what tool-call ids look like, which extra or null fields appear, how thinking is
switched, which model ids exist and which of Moonshot's request rules apply.

=============  ==================================  =========================================
dialect        URL prefix                          notes
=============  ==================================  =========================================
``moonshot``   ``/v1`` (default), ``/moonshot/v1``  ``reasoning_content``; usage in
                                                   ``choices[0].usage`` of the last chunk
``openrouter`` ``/openrouter/v1``                  ``: OPENROUTER PROCESSING`` comments;
                                                   ``reasoning`` + ``reasoning_details``;
                                                   usage top level, repeated in a trailing
                                                   ``choices: []`` chunk
``vllm``       ``/vllm/v1``                        ``reasoning``; usage only with
                                                   ``stream_options.include_usage``
``llamacpp``   ``/llamacpp/v1``                    no reasoning; never usage in a stream
``cloudsway``  ``/cloudsway/v1/ai/<endpoint>``     ``reasoning_content``; null extras;
                                                   ``get_distance:0`` ids
=============  ==================================  =========================================
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from .models import model_can_think
from .tokens import Usage

DONE = "data: [DONE]\n\n"


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def sse(data: Any) -> str:
    """One SSE ``data:`` event carrying ``data`` as compact JSON."""
    return f"data: {_dumps(data)}\n\n"


@dataclass(frozen=True)
class WireToolCall:
    """A tool call ready to send: its id, name, arguments and their streamed fragments."""

    id: str
    name: str
    arguments: str
    fragments: tuple[str, ...]


@dataclass(frozen=True)
class Turn:
    """Everything one response says, independent of the dialect's wire shape."""

    response_id: str
    created: int
    model: str
    reasoning_pieces: tuple[str, ...]
    text_pieces: tuple[str, ...]
    tool_calls: tuple[WireToolCall, ...]
    finish_reason: str
    usage: Usage
    include_usage: bool = False

    @property
    def reasoning(self) -> str:
        return "".join(self.reasoning_pieces)

    @property
    def text(self) -> str:
        return "".join(self.text_pieces)


class Dialect:
    """Moonshot's own wire format; the other dialects override what differs."""

    name: ClassVar[str] = "moonshot"
    reasoning_field: ClassVar[str | None] = "reasoning_content"
    # fields an assistant tool-call message may carry its reasoning back in
    reasoning_request_fields: ClassVar[tuple[str, ...]] = ("reasoning_content",)
    moonshot_rules: ClassVar[bool] = True  # data-URL images, reasoning_content, tool ids, tool names
    sampling_rules: ClassVar[bool] = True  # fixed temperature/top_p/n/penalties (models.py)
    # Moonshot's published request contract (validation.check_contract): the thinking object,
    # tool_choice, response_format, dynamic tools in system messages
    contract_rules: ClassVar[bool] = True
    checks_model: ClassVar[bool] = True
    moonshot_endpoints: ClassVar[bool] = True  # /tokenizers/estimate-token-count, /users/me/balance
    partial_mode: ClassVar[bool] = True  # a last assistant message with "partial": true is continued
    error_code: ClassVar[bool] = False  # add "code" to error bodies
    # kimi-k2.6 to kimi-k3.1-pro serve beside kimi-k2.5; kimi-k2-0905-preview and
    # kimi-k2-0711-preview are retired: not listed, and a request naming them gets Moonshot's 404.
    default_models: ClassVar[tuple[str, ...]] = (
        "kimi-k2.5",
        "kimi-k2.6",
        "kimi-k2.7-code",
        "kimi-k2.7-code-highspeed",
        "kimi-k3",
        "kimi-k3.1-pro",
        "kimi-k3.1-pro-highspeed",
        "kimi-k2-thinking",
        "kimi-k2-thinking-turbo",
        "kimi-k2-turbo-preview",
        "moonshot-v1-8k",
        "moonshot-v1-32k",
        "moonshot-v1-128k",
        "kimi-latest",
    )
    owned_by: ClassVar[str] = "moonshot"

    # -- requests --------------------------------------------------------------------
    def thinking_switch(self, body: Mapping[str, Any]) -> bool:
        """Whether the request asks for thinking (the model may still not think)."""
        thinking = body.get("thinking")
        return not (isinstance(thinking, Mapping) and thinking.get("type") == "disabled")

    def thinking_on(self, body: Mapping[str, Any], model: str) -> bool:
        """Whether the model thinks for this request."""
        if self.reasoning_field is None:
            return False
        ability = model_can_think(model)
        return ability == "always" or (ability == "switch" and self.thinking_switch(body))

    def tool_call_id(self, name: str, number: int, response_id: str) -> str:
        """Id of the ``number``-th tool call of the conversation."""
        return f"functions.{name}:{number}"

    def response_id(self, seq: int) -> str:
        return "chatcmpl-" + _hex(f"response-{seq}", 24)

    # -- streaming ---------------------------------------------------------------------
    def chunk(self, turn: Turn, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        chunk = {
            "id": turn.response_id,
            "object": "chat.completion.chunk",
            "created": turn.created,
            "model": turn.model,
            "choices": choices,
        }
        chunk.update(extra)
        return chunk

    def choice(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {"index": 0, "delta": delta, "finish_reason": finish_reason}

    def reasoning_delta(self, piece: str) -> dict[str, Any]:
        return {str(self.reasoning_field): piece}

    def content_delta(self, piece: str) -> dict[str, Any]:
        return {"content": piece}

    def tool_delta(self, call: dict[str, Any]) -> dict[str, Any]:
        return {"tool_calls": [call]}

    def opening(self, turn: Turn) -> Iterator[str]:
        """Events before any content (role chunk, comments, empty-choices chunk)."""
        yield sse(self.chunk(turn, [self.choice({"role": "assistant", "content": ""})]))

    def closing(self, turn: Turn) -> Iterator[str]:
        """The finishing chunk(s); Moonshot puts usage inside ``choices[0]``."""
        choice = self.choice({}, turn.finish_reason)
        choice["usage"] = self.usage_body(turn.usage)
        yield sse(self.chunk(turn, [choice]))

    def stream(self, turn: Turn) -> Iterator[str]:
        """All SSE events of a streamed response, ``data: [DONE]`` included."""
        yield from self.opening(turn)
        for piece in turn.reasoning_pieces:
            yield sse(self.chunk(turn, [self.choice(self.reasoning_delta(piece))]))
        for piece in turn.text_pieces:
            yield sse(self.chunk(turn, [self.choice(self.content_delta(piece))]))
        for index, call in enumerate(turn.tool_calls):
            first = {
                "index": index,
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            yield sse(self.chunk(turn, [self.choice(self.tool_delta(first))]))
            for fragment in call.fragments:
                more = {"index": index, "function": {"arguments": fragment}}
                yield sse(self.chunk(turn, [self.choice(self.tool_delta(more))]))
        yield from self.closing(turn)
        yield DONE

    # -- non-streaming -----------------------------------------------------------------
    def message(self, turn: Turn) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": turn.text}
        if turn.reasoning and self.reasoning_field:
            message[self.reasoning_field] = turn.reasoning
        if turn.tool_calls:
            message["tool_calls"] = self.tool_calls_body(turn)
        return message

    def tool_calls_body(self, turn: Turn) -> list[dict[str, Any]]:
        return [
            {
                "index": i,
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments},
            }
            for i, c in enumerate(turn.tool_calls)
        ]

    def completion(self, turn: Turn) -> dict[str, Any]:
        """The body of a non-streamed response."""
        return {
            "id": turn.response_id,
            "object": "chat.completion",
            "created": turn.created,
            "model": turn.model,
            "choices": [{"index": 0, "message": self.message(turn), "finish_reason": turn.finish_reason}],
            "usage": self.usage_body(turn.usage),
        }

    def usage_body(self, usage: Usage) -> dict[str, Any]:
        return {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
            "cached_tokens": usage.cached_tokens,
        }

    # -- /models -----------------------------------------------------------------------
    def model_entry(self, model_id: str, created: int, context_length: int) -> dict[str, Any]:
        return {
            "id": model_id,
            "object": "model",
            "created": created,
            "owned_by": self.owned_by,
            "context_length": context_length,
        }


class OpenRouterDialect(Dialect):
    """OpenRouter-style gateways (the wcode seed): ``reasoning`` + ``reasoning_details``."""

    name = "openrouter"
    reasoning_field = "reasoning"
    reasoning_request_fields = ("reasoning_content", "reasoning", "reasoning_details")
    sampling_rules = False
    contract_rules = False
    moonshot_endpoints = False
    partial_mode = False
    error_code = True
    default_models = (
        "moonshotai/kimi-k2.5",
        "moonshotai/kimi-k2-thinking",
        "moonshotai/kimi-k2-0905",
        "moonshotai/kimi-k2",
    )
    owned_by = "moonshotai"

    def thinking_switch(self, body: Mapping[str, Any]) -> bool:
        if body.get("include_reasoning") is False:
            return False
        reasoning = body.get("reasoning")
        return not (
            isinstance(reasoning, Mapping)
            and (reasoning.get("enabled") is False or reasoning.get("effort") == "none")
        )

    def tool_call_id(self, name: str, number: int, response_id: str) -> str:
        return "call_" + _hex(f"{response_id}-{number}", 24)

    def response_id(self, seq: int) -> str:
        return f"gen-{1769700000 + seq}-" + _hex(f"gen-{seq}", 20)

    def chunk(self, turn: Turn, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        chunk = {
            "id": turn.response_id,
            "provider": "Moonshot AI",
            "model": turn.model,
            "object": "chat.completion.chunk",
            "created": turn.created,
            "choices": choices,
        }
        chunk.update(extra)
        return chunk

    def choice(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "index": 0,
            "delta": delta,
            "finish_reason": finish_reason,
            "native_finish_reason": finish_reason,
            "logprobs": None,
        }

    def reasoning_delta(self, piece: str) -> dict[str, Any]:
        details = [{"type": "reasoning.text", "text": piece, "format": "unknown", "index": 0}]
        return {"role": "assistant", "content": "", "reasoning": piece, "reasoning_details": details}

    def content_delta(self, piece: str) -> dict[str, Any]:
        return {"role": "assistant", "content": piece}

    def tool_delta(self, call: dict[str, Any]) -> dict[str, Any]:
        return {"role": "assistant", "content": None, "tool_calls": [call]}

    def opening(self, turn: Turn) -> Iterator[str]:
        yield ": OPENROUTER PROCESSING\n\n"
        yield ": OPENROUTER PROCESSING\n\n"

    def closing(self, turn: Turn) -> Iterator[str]:
        usage = self.usage_body(turn.usage)
        final = self.choice({"role": "assistant", "content": ""}, turn.finish_reason)
        yield sse(self.chunk(turn, [final], usage=usage))
        yield sse(self.chunk(turn, [], usage=usage))

    def message(self, turn: Turn) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": turn.text, "refusal": None}
        if turn.reasoning:
            message["reasoning"] = turn.reasoning
            message["reasoning_details"] = [
                {"type": "reasoning.text", "text": turn.reasoning, "format": "unknown", "index": 0}
            ]
        else:
            message["reasoning"] = None
        if turn.tool_calls:
            message["tool_calls"] = self.tool_calls_body(turn)
        return message

    def completion(self, turn: Turn) -> dict[str, Any]:
        choice = {
            "logprobs": None,
            "finish_reason": turn.finish_reason,
            "native_finish_reason": turn.finish_reason,
            "index": 0,
            "message": self.message(turn),
        }
        return {
            "id": turn.response_id,
            "provider": "Moonshot AI",
            "model": turn.model,
            "object": "chat.completion",
            "created": turn.created,
            "choices": [choice],
            "usage": self.usage_body(turn.usage),
        }

    def usage_body(self, usage: Usage) -> dict[str, Any]:
        return {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
            "prompt_tokens_details": {"cached_tokens": usage.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens, "audio_tokens": 0},
        }


class VllmDialect(Dialect):
    """A self-hosted vLLM server: ``reasoning`` deltas, usage only when asked for."""

    name = "vllm"
    reasoning_field = "reasoning"
    reasoning_request_fields = ("reasoning_content", "reasoning")
    moonshot_rules = False
    sampling_rules = False
    contract_rules = False
    moonshot_endpoints = False
    partial_mode = False
    error_code = True
    default_models = ("kimi-k2.5", "moonshotai/Kimi-K2.5", "moonshotai/Kimi-K2-Thinking")
    owned_by = "vllm"

    def thinking_switch(self, body: Mapping[str, Any]) -> bool:
        kwargs = body.get("chat_template_kwargs")
        return not (isinstance(kwargs, Mapping) and kwargs.get("thinking") is False)

    def choice(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}

    def closing(self, turn: Turn) -> Iterator[str]:
        yield sse(self.chunk(turn, [self.choice({}, turn.finish_reason)]))
        if turn.include_usage:
            yield sse(self.chunk(turn, [], usage=self.usage_body(turn.usage)))

    def message(self, turn: Turn) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": turn.text,
            "reasoning": turn.reasoning or None,
            "tool_calls": self.tool_calls_body(turn),
        }
        return message

    def usage_body(self, usage: Usage) -> dict[str, Any]:
        return {
            "prompt_tokens": usage.prompt_tokens,
            "total_tokens": usage.total_tokens,
            "completion_tokens": usage.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        }


class LlamaCppDialect(Dialect):
    """llama.cpp's OpenAI-compatible server: no reasoning field, no usage in streams."""

    name = "llamacpp"
    reasoning_field = None
    reasoning_request_fields = ()
    moonshot_rules = False
    sampling_rules = False
    contract_rules = False
    checks_model = False
    moonshot_endpoints = False
    partial_mode = False
    default_models = ("kimi-k2.5",)
    owned_by = "llamacpp"

    def tool_call_id(self, name: str, number: int, response_id: str) -> str:
        return "call_" + _hex(f"{response_id}-{number}", 24)

    def opening(self, turn: Turn) -> Iterator[str]:
        yield sse(self.chunk(turn, [self.choice({"role": "assistant"})]))

    def closing(self, turn: Turn) -> Iterator[str]:
        yield sse(self.chunk(turn, [self.choice({}, turn.finish_reason)]))

    def usage_body(self, usage: Usage) -> dict[str, Any]:
        return {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
        }


class CloudswayDialect(Dialect):
    """Cloudsway MaaS: Moonshot-like, endpoint path in the URL, null extra fields."""

    name = "cloudsway"
    moonshot_endpoints = False
    owned_by = "cloudsway"

    def tool_call_id(self, name: str, number: int, response_id: str) -> str:
        return f"{name}:{number}"

    def response_id(self, seq: int) -> str:
        return _hex(f"cloudsway-{seq}", 32)

    def choice(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "index": 0,
            "delta": delta,
            "logprobs": None,
            "finish_reason": finish_reason,
            "native_finish_reason": None,
        }

    def reasoning_delta(self, piece: str) -> dict[str, Any]:
        return {"content": None, "reasoning_content": piece}

    def content_delta(self, piece: str) -> dict[str, Any]:
        return {"content": piece, "reasoning_content": None}

    def opening(self, turn: Turn) -> Iterator[str]:
        yield sse(self.chunk(turn, []))
        yield sse(self.chunk(turn, [self.choice({"role": "assistant", "content": ""})]))

    def closing(self, turn: Turn) -> Iterator[str]:
        choice = self.choice({}, turn.finish_reason)
        yield sse(self.chunk(turn, [choice], usage=self.usage_body(turn.usage)))

    def tool_calls_body(self, turn: Turn) -> list[dict[str, Any]]:
        return [{k: v for k, v in call.items() if k != "index"} for call in super().tool_calls_body(turn)]

    def message(self, turn: Turn) -> dict[str, Any]:
        return {
            "role": "assistant",
            "content": turn.text,
            "refusal": None,
            "annotations": None,
            "images": None,
            "reasoning_content": turn.reasoning or None,
            "function_call": None,
            "tool_calls": self.tool_calls_body(turn) or None,
            "reasoning_details": None,
        }

    def completion(self, turn: Turn) -> dict[str, Any]:
        choice = {
            "index": 0,
            "logprobs": None,
            "message": self.message(turn),
            "finish_reason": turn.finish_reason,
            "native_finish_reason": None,
        }
        return {
            "id": turn.response_id,
            "choices": [choice],
            "logprobs": None,
            "created": turn.created,
            "model": turn.model,
            "object": "chat.completion",
            "system_fingerprint": None,
            "service_tier": None,
            "usage": self.usage_body(turn.usage),
        }

    def usage_body(self, usage: Usage) -> dict[str, Any]:
        return {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
            "completion_tokens_details": None,
            "prompt_tokens_details": {"audio_tokens": 0, "cached_tokens": usage.cached_tokens},
            "cache_creation_input_tokens": None,
            "cache_creation": None,
            "gemini_cache_tokens_details": None,
        }


DIALECTS: dict[str, Dialect] = {
    d.name: d for d in (Dialect(), OpenRouterDialect(), VllmDialect(), LlamaCppDialect(), CloudswayDialect())
}


def get_dialect(name: str) -> Dialect:
    """The dialect called ``name``; ``ValueError`` lists the known ones."""
    try:
        return DIALECTS[name]
    except KeyError:
        raise ValueError(f"unknown dialect {name!r}; expected one of {sorted(DIALECTS)}") from None


def _hex(seed: str, length: int) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:length]
