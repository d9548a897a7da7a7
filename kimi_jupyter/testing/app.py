"""Request handling: routing, authentication, validation and choosing the reply.

``SimulatorApp`` is the function the HTTP server calls for every request. It selects the
dialect from the URL prefix, checks the key, validates the body like Moonshot, takes a
fault or reply from the shared state (falling back to the demo reply), builds the
dialect-independent :class:`~kimi_jupyter.testing.dialects.Turn` (chunking, tool-call ids,
``max_tokens`` truncation, usage with the prefix-cache model) and hands back either a JSON
body or a stream of SSE events. Every request is recorded with the status it got.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from . import contract, validation
from .demo import demo_continuation, demo_reply, forced_call
from .dialects import Dialect, Turn, WireToolCall, get_dialect
from .errors import ApiError, invalid_request, not_found
from .faults import Fault
from .files import FileLimits, FileStore, check_multipart, file_response_body, parse_upload, resolver
from .models import model_spec
from .ratelimit import RateLimits, RateWindow
from .replies import Conversation, Reply, split_text
from .server import HttpRequest, HttpResponse
from .state import RecordedRequest, SimulatorState, prefix_keys
from .tokens import PromptStats, Usage, count_prompt, text_tokens

_PREFIXED = re.compile(r"^/(?:(moonshot|openrouter|vllm|llamacpp)/)?v1(/.*)?$")
_CLOUDSWAY = re.compile(r"^/cloudsway/v1(?:/ai/[^/]+)?(/.*)?$")
CHAT = "/chat/completions"
MODELS = "/models"
ESTIMATE = "/tokenizers/estimate-token-count"
BALANCE = "/users/me/balance"
FILES = "/files"


@dataclass
class AppConfig:
    """The simulator's fixed settings (see ``KimiSimulator`` for their meaning)."""

    api_key: str | None
    dialect: str
    models: dict[str, tuple[str, ...]] = field(default_factory=dict)
    context_limit: int | None = None  # a cap over every model's own window (models.py)
    balance: float = 50.0
    chunk_delay: float = 0.0
    max_body_bytes: int = 100 * 1024 * 1024
    batch_speed: float = 1.0  # the Batch API's clock: simulated seconds per real second
    file_limits: FileLimits = field(default_factory=FileLimits)
    rate_limits: RateLimits | None = None
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def max_read_bytes(self) -> int:
        """What the server reads of a body: a chat body, or a whole file plus its multipart frame."""
        return max(self.max_body_bytes, self.file_limits.max_file_bytes + 1024 * 1024)

    def models_for(self, dialect: Dialect) -> tuple[str, ...]:
        return self.models.get(dialect.name, dialect.default_models)

    def window(self, model: str) -> int:
        """The prompt-token limit of ``model``: its window, capped by ``context_limit``."""
        window = model_spec(model).window
        return min(window, self.context_limit) if self.context_limit else window


def route(path: str, default: str) -> tuple[Dialect, str] | None:
    """``(dialect, endpoint)`` for a request path, or None when no dialect serves it."""
    path = path.split("?", 1)[0].rstrip("/")
    match = _PREFIXED.match(path)
    if match:
        return get_dialect(match.group(1) or default), match.group(2) or ""
    match = _CLOUDSWAY.match(path)
    if match:
        return get_dialect("cloudsway"), match.group(1) or ""
    return None


def _json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> HttpResponse:
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    return HttpResponse(status, data, {"Content-Type": "application/json", **(headers or {})})


class SimulatorApp:
    """Callable ``HttpRequest -> HttpResponse`` over a :class:`SimulatorState`."""

    def __init__(self, state: SimulatorState, config: AppConfig, files: FileStore | None = None) -> None:
        self.state = state
        self.config = config
        self.files = files if files is not None else FileStore(config.file_limits)
        self._resolve = resolver(self.files)
        self.window = RateWindow(config.rate_limits) if config.rate_limits else None
        self._init_batches()  # the Batch API (batches.py) over the same file store

    def __call__(self, request: HttpRequest) -> HttpResponse:
        routed = route(request.path, self.config.dialect)
        dialect = routed[0] if routed else None
        body: Any = None
        try:
            if request.body and not request.headers.get("content-type", "").startswith("multipart/"):
                try:
                    body = json.loads(request.body)
                except ValueError:
                    body = None
            response = self._handle(request, routed, body)
        except ApiError as error:
            with_code = dialect is not None and dialect.error_code
            response = _json_response(error.status, error.body(with_code=with_code), error.headers)
        self.state.record(
            RecordedRequest(
                request.method,
                request.path,
                request.headers,
                body,
                dialect.name if dialect else None,
                response.status,
            )
        )
        return response

    # -- routing -------------------------------------------------------------------------
    def _handle(self, request: HttpRequest, routed: tuple[Dialect, str] | None, body: Any) -> HttpResponse:
        if routed is None:
            raise not_found(f"Not found: {request.method} {request.path.split('?', 1)[0]}")
        dialect, endpoint = routed
        model_id = endpoint[len(MODELS) + 1 :] if endpoint.startswith(MODELS + "/") else None
        if dialect.moonshot_endpoints and endpoint.startswith("/batches"):  # Batch API (batches.py)
            self._authenticate(request)
            return self._batch_endpoints(request, endpoint, body)
        allowed = {CHAT: "POST", MODELS: "GET"}
        if dialect.moonshot_endpoints:
            allowed.update({ESTIMATE: "POST", BALANCE: "GET"})
            if endpoint == FILES or endpoint.startswith(FILES + "/"):
                self._authenticate(request)
                return self._files(request, endpoint)
        if endpoint not in allowed and model_id is None:
            raise not_found(f"Not found: {request.method} {request.path.split('?', 1)[0]}")
        self._authenticate(request)
        if model_id is None and request.method != allowed[endpoint]:
            raise ApiError(
                405, "invalid_request_error", f"Method {request.method} is not allowed on {endpoint}"
            )
        if request.too_large or request.body_size > self.config.max_body_bytes:
            raise ApiError(
                413,
                "invalid_request_error",
                f"Invalid request: the request body is {request.body_size} bytes, over the limit of "
                f"{self.config.max_body_bytes} bytes (100 MB); upload large videos as files instead",
            )
        if request.body and body is None:
            raise invalid_request("Invalid request: the body is not valid JSON")
        if model_id is not None:
            return self._model(dialect, model_id)
        if endpoint == MODELS:
            return self._models(dialect)
        if endpoint == BALANCE:
            data = {
                "available_balance": self.config.balance,
                "voucher_balance": 0.0,
                "cash_balance": self.config.balance,
            }
            return _json_response(200, {"code": 0, "data": data, "scode": "0x0", "status": True})
        if endpoint == ESTIMATE:
            return self._estimate(dialect, body)
        return self._chat(dialect, body, batch="x-kimi-batch" in request.headers)

    # -- Batch API ---------------------------------------------------------
    def _init_batches(self) -> None:
        from .batches import BatchService

        self.batches = BatchService(self.files, self, "/v1", speed=self.config.batch_speed)

    def _batch_endpoints(self, request: HttpRequest, endpoint: str, body: Any) -> HttpResponse:
        self.batches.prefix = request.path.split("/batches", 1)[0]
        return self.batches.handle(request, endpoint, body, request.headers.get("authorization"))

    def _authenticate(self, request: HttpRequest) -> None:
        expected = self.config.api_key
        if expected is None:
            return
        header = request.headers.get("authorization")
        if not header:
            raise ApiError(
                401,
                "invalid_authentication_error",
                "Invalid Authentication: no API key was sent (expected an 'Authorization: Bearer <key>' header)",
            )
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or token.strip() != expected:
            raise ApiError(401, "invalid_authentication_error", "Invalid Authentication")

    # -- files -----------------------------------------------------------------------------
    def _files(self, request: HttpRequest, endpoint: str) -> HttpResponse:
        """``/files``, ``/files/{id}`` and ``/files/{id}/content`` (see ``files``)."""
        rest = endpoint[len(FILES) :].strip("/")
        file_id, _, tail = rest.partition("/")
        method = request.method
        if not file_id:
            if method == "GET":
                return _json_response(200, {"object": "list", "data": [f.object() for f in self.files.all()]})
            if method != "POST":
                raise ApiError(405, "invalid_request_error", f"Method {method} is not allowed on {FILES}")
            limit = self.config.file_limits.max_file_bytes
            if request.too_large:
                raise invalid_request(
                    f"Invalid request: file size exceeds the limit of {limit} bytes per file "
                    f"(the upload was {request.body_size} bytes)"
                )
            content_type = check_multipart(request.headers)
            data, filename, purpose = parse_upload(content_type, request.body, limit + 1024 * 1024)
            return _json_response(200, self.files.add(data, filename, purpose).object())
        if tail == "content" and method == "GET":
            stored = self.files.require(file_id)
            body, content_type = file_response_body(stored)
            return HttpResponse(200, body, {"Content-Type": content_type})
        if tail:
            raise not_found(f"Not found: {method} {request.path.split('?', 1)[0]}")
        if method == "GET":
            return _json_response(200, self.files.require(file_id).object())
        if method == "DELETE":
            self.files.delete(file_id)
            return _json_response(200, {"id": file_id, "object": "file", "deleted": True})
        raise ApiError(405, "invalid_request_error", f"Method {method} is not allowed on {FILES}/{{id}}")

    # -- small endpoints -------------------------------------------------------------------
    def _models(self, dialect: Dialect) -> HttpResponse:
        data = [
            dialect.model_entry(m, self.config.created, self.config.window(m))
            for m in self.config.models_for(dialect)
        ]
        return _json_response(200, {"object": "list", "data": data})

    def _model(self, dialect: Dialect, model_id: str) -> HttpResponse:
        if model_id not in self.config.models_for(dialect):
            raise not_found(f"Not found the model {model_id} or Permission denied")
        return _json_response(
            200, dialect.model_entry(model_id, self.config.created, self.config.window(model_id))
        )

    def _estimate(self, dialect: Dialect, body: Any) -> HttpResponse:
        validation.check_shape(body)
        validation.check_model(dialect, body.get("model"), self.config.models_for(dialect))
        stats = count_prompt(
            body["messages"], body.get("tools"), self._resolver(dialect), body.get("response_format")
        )
        validation.check_media(dialect, stats)
        return _json_response(
            200, {"code": 0, "data": {"total_tokens": stats.total}, "scode": "0x0", "status": True}
        )

    def _resolver(self, dialect: Dialect) -> Any:
        """Only Moonshot's own dialect has a Files API; elsewhere ``ms://`` stays unresolved."""
        return self._resolve if dialect.moonshot_endpoints else None

    # -- chat ----------------------------------------------------------------------------
    def _chat(self, dialect: Dialect, body: Any, batch: bool = False) -> HttpResponse:
        validation.check_shape(body)
        models = self.config.models_for(dialect)
        validation.check_model(dialect, body.get("model"), models)
        model = body.get("model") if isinstance(body.get("model"), str) and body.get("model") else models[0]
        messages = body["messages"]
        thinking = dialect.thinking_on(body, model)
        validation.check_sampling(dialect, body, model, thinking)
        validation.check_tools(dialect, body.get("tools"))
        contract.check_contract(dialect, body, model, thinking)
        stats = count_prompt(messages, body.get("tools"), self._resolver(dialect), body.get("response_format"))
        validation.check_media(dialect, stats)
        validation.check_web_search(dialect, body.get("tools"), model, thinking)
        validation.check_messages(dialect, messages, thinking)
        validation.check_context(stats, self.config.window(model))
        limit_headers: dict[str, str] = {}
        if self.window is not None and not batch:  # a batch's requests run on the provider's side
            asked = body.get("max_completion_tokens") or body.get("max_tokens")
            asked = asked if isinstance(asked, int) and not isinstance(asked, bool) else 0
            limit_headers = self.window.admit(stats.total + asked)  # or the 429 that agrees with them

        conv = Conversation.of(messages)
        fault = self.state.take_fault(conv)
        if fault is not None and fault.is_status:
            raise fault.error()
        outcome = self.state.take_outcome(conv)
        if isinstance(outcome, Fault):
            if outcome.is_status:
                raise outcome.error()
            fault, outcome = fault or outcome, None
        prefix = validation.partial_prefix(dialect, messages)
        offered = contract.offered_tools(body)
        if outcome is None:
            response_format = body.get("response_format")
            json_mode = isinstance(response_format, Mapping) and response_format.get("type") == "json_object"
            if prefix is not None:
                reply = demo_continuation(prefix, conv, stats.media, thinking=thinking, json_mode=json_mode)
            else:
                reply = demo_reply(
                    conv, stats.media, thinking=thinking, tools=offered, json_mode=json_mode,
                    effort=contract.effort(body, model), schema=contract.json_schema(body),
                )
        elif isinstance(outcome, Reply):
            reply = outcome
        else:
            reply = outcome(messages)
        reply = _obey_tool_choice(contract.tool_choice(body), reply, offered, conv, outcome is None)

        keys = prefix_keys(model, body.get("tools"), messages)
        turn = self._turn(dialect, body, model, reply, thinking, stats, conv, keys)
        self.state.remember_prefix(keys)
        delay = reply.chunk_delay if reply.chunk_delay is not None else self.config.chunk_delay
        if body.get("stream") is True:
            return HttpResponse(200, headers=limit_headers, events=dialect.stream(turn), delay=delay, fault=fault)
        response = _json_response(200, dialect.completion(turn), limit_headers)
        return replace(response, fault=fault)

    def _turn(
        self,
        dialect: Dialect,
        body: Mapping[str, Any],
        model: str,
        reply: Reply,
        thinking: bool,
        stats: PromptStats,
        conv: Conversation,
        keys: Sequence[str],
    ) -> Turn:
        seq = self.state.next_seq()
        response_id = dialect.response_id(seq)
        reasoning = reply.reasoning_pieces() if thinking else []
        text = reply.text_pieces()
        calls = list(reply.tool_calls)
        finish = reply.finish_reason
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if finish is None and isinstance(limit, int) and not isinstance(limit, bool) and limit > 0:
            reasoning, text, calls, truncated = _fit(reasoning, text, calls, limit)
            finish = "length" if truncated else None
        finish = finish or ("tool_calls" if calls else "stop")

        earlier = sum(len(m.get("tool_calls") or ()) for m in conv.messages if m.get("role") == "assistant")
        wire_calls = tuple(
            WireToolCall(
                call.id or dialect.tool_call_id(call.name, earlier + i, response_id),
                call.name,
                call.arguments_json,
                tuple(_fragments(call.arguments_json, reply.chunk_chars)),
            )
            for i, call in enumerate(calls)
        )
        reasoning_text, answer = "".join(reasoning), "".join(text)
        completion = text_tokens(answer) + text_tokens(reasoning_text)
        completion += sum(text_tokens(c.name) + text_tokens(c.arguments) for c in wire_calls)
        cached_count = self.state.cached_prefix(keys)
        cached = stats.base_tokens + sum(stats.message_tokens[:cached_count]) if cached_count else 0
        values = {
            "prompt_tokens": stats.total,
            "completion_tokens": completion,
            "cached_tokens": min(cached, stats.total),
            "reasoning_tokens": text_tokens(reasoning_text),
        }
        values.update(reply.usage or {})
        values.setdefault("total_tokens", values["prompt_tokens"] + values["completion_tokens"])
        stream_options = body.get("stream_options")
        include_usage = isinstance(stream_options, Mapping) and stream_options.get("include_usage") is True
        return Turn(
            response_id=response_id,
            created=int(time.time()),
            model=reply.model or model,
            reasoning_pieces=tuple(reasoning),
            text_pieces=tuple(text),
            tool_calls=wire_calls,
            finish_reason=finish,
            usage=Usage(**values),
            include_usage=include_usage,
        )


def _obey_tool_choice(
    choice: str, reply: Reply, offered: Sequence[Any], conv: Conversation, demo: bool
) -> Reply:
    """``required``: a reply without tool calls gets one (the demo answer's text gives way to
    it); ``none``: tool calls are dropped (a reply left empty says so)."""
    if choice == "required" and offered and not reply.tool_calls:
        call = forced_call(offered, conv.last_user_text)
        if demo:
            return replace(reply, text="", chunks=None, tool_calls=(call,))
        return replace(reply, tool_calls=(call,))
    if choice == "none" and reply.tool_calls:
        text = reply.full_text or "(No tool was called: the request set tool_choice to \"none\".)"
        return replace(reply, tool_calls=(), text=text, chunks=None, finish_reason=None)
    return reply


def _fragments(arguments: str, chunk_chars: int) -> list[str]:
    """Argument fragments: at least two when there are two characters or more."""
    if len(arguments) < 2:
        return [arguments] if arguments else []
    return split_text(arguments, max(1, min(chunk_chars, math.ceil(len(arguments) / 2))))


def _cut(pieces: list[str], tokens: int) -> list[str]:
    """The leading pieces holding at most ``tokens`` tokens of text."""
    whole = "".join(pieces)
    chars = len(whole.encode("utf-8")[: tokens * 4].decode("utf-8", errors="ignore"))
    kept: list[str] = []
    for piece in pieces:
        if chars <= 0:
            break
        kept.append(piece[:chars])
        chars -= len(piece)
    return kept


def _fit(
    reasoning: list[str], text: list[str], calls: list[Any], limit: int
) -> tuple[list[str], list[str], list[Any], bool]:
    """Cut the answer to ``limit`` completion tokens (reasoning counts first), as max_tokens does."""
    reasoning_tokens = text_tokens("".join(reasoning))
    if reasoning_tokens > limit:
        return _cut(reasoning, limit), [], [], True
    remaining = limit - reasoning_tokens
    calls_tokens = sum(text_tokens(c.name) + text_tokens(c.arguments_json) for c in calls)
    if text_tokens("".join(text)) + calls_tokens > remaining:
        return reasoning, _cut(text, remaining), [], True
    return reasoning, text, calls, False
