"""OpenTelemetry spans in the GenAI semantic conventions, when ``Kimi.tracing`` is on.

Only the OpenTelemetry *API* is used (``pip install kimi-jupyter[otel]``): spans go to
whatever tracer provider the user set up (an OTLP exporter, the console, a test's in-memory
exporter); with no provider configured the API's no-op tracer drops them.

What a turn exports:

* a plain turn: one ``chat {model}`` span (``gen_ai.operation.name = "chat"``);
* an agent turn: an ``invoke_agent kimi_jupyter`` span, with one ``chat {model}`` child per
  request and one ``execute_tool {tool}`` child per tool call.

Attributes follow the conventions: ``gen_ai.operation.name``, ``gen_ai.provider.name`` (the
provider preset, e.g. ``moonshot``), ``gen_ai.request.model``, ``gen_ai.response.model``,
``gen_ai.usage.input_tokens`` / ``output_tokens`` (when the server reported usage),
``gen_ai.response.finish_reasons``, ``gen_ai.conversation.id`` (one id per chat: the
notebook's or the sidebar's), ``gen_ai.tool.name`` / ``gen_ai.tool.call.id`` /
``gen_ai.tool.type``, ``server.address``, ``error.type`` and an error status on failure.

No prompt, answer, tool argument or tool result text is put on a span unless
``Kimi.trace_content = True`` (then ``gen_ai.input.messages``, ``gen_ai.output.messages``,
``gen_ai.tool.call.arguments``, ``gen_ai.tool.call.result``, with the API key masked). A
failure inside tracing never fails a turn.
"""

from __future__ import annotations

import json
import uuid
import weakref
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from collections.abc import Iterator

    from .turn import Turn

__all__ = ["AGENT_NAME", "TurnTrace", "conversation_id", "tool_span", "turn_trace"]

AGENT_NAME = "kimi_jupyter"
CONTENT_CHARS = 16_000  # one content attribute at most
MISSING = ("Kimi.tracing is on but opentelemetry-api is not installed: pip install 'kimi-jupyter[otel]' "
           "(no spans are exported).")

_ids: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def conversation_id(chat: Any) -> str:
    """A stable id for a chat's conversation (the notebook's, the sidebar's) in this kernel."""
    try:
        found = _ids.get(chat)
        if found is None:
            found = _ids[chat] = uuid.uuid4().hex
        return found
    except TypeError:  # not weak-referenceable
        return uuid.uuid4().hex


def _tracer() -> Any:
    from opentelemetry import trace

    from ._version import __version__

    return trace.get_tracer("kimi_jupyter", __version__)


def _content(value: Any, secrets: tuple[str, ...]) -> str:
    from .secrets import redact_text

    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = redact_text(text, secrets) if secrets else text
    return text if len(text) <= CONTENT_CHARS else text[:CONTENT_CHARS] + "…"


def _usage(span: Any, usage: Any) -> None:
    if usage is None or not getattr(usage, "reported", False):
        return
    if usage.prompt is not None:
        span.set_attribute("gen_ai.usage.input_tokens", int(usage.prompt))
    if usage.completion is not None:
        span.set_attribute("gen_ai.usage.output_tokens", int(usage.completion))


def _failed(span: Any, kind: str | None, message: str | None) -> None:
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("error.type", kind or "error")
    span.set_status(Status(StatusCode.ERROR, (message or "")[:200]))


class TurnTrace:
    """The spans of one turn; every method swallows its own failures."""

    def __init__(self, turn: Turn) -> None:
        from opentelemetry import trace
        from opentelemetry.trace import SpanKind

        from .secrets import secrets_of

        self._trace = trace
        self.turn = turn
        s = turn.settings
        self.content = bool(s.trace_content)
        self.secrets = secrets_of(s) if self.content else ()
        self.tracer = _tracer()
        try:
            host = urlsplit(s.base_url).hostname
        except ValueError:
            host = None
        self.common: dict[str, Any] = {
            "gen_ai.provider.name": s.provider,
            "gen_ai.request.model": s.model,
            "gen_ai.conversation.id": conversation_id(turn.chat),
            **({"server.address": host} if host else {}),
        }
        self.agent = turn.request.strategy is not None
        self.root: Any = None
        self.chat: Any = None
        if self.agent:
            self.root = self.tracer.start_span(
                f"invoke_agent {AGENT_NAME}", kind=SpanKind.INTERNAL,
                attributes={**self.common, "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": AGENT_NAME})
            if self.content:
                self.root.set_attribute("gen_ai.input.messages",
                                        _content(turn.request.content, self.secrets))

    def _parent(self) -> Any:
        return self._trace.set_span_in_context(self.root) if self.root is not None else None

    def request_started(self) -> None:
        try:
            from opentelemetry.trace import SpanKind

            self._end_chat(None)
            attributes = {**self.common, "gen_ai.operation.name": "chat"}
            max_tokens = self.turn.settings.max_tokens
            if max_tokens:
                attributes["gen_ai.request.max_tokens"] = max_tokens
            self.chat = self.tracer.start_span(f"chat {self.turn.settings.model}", context=self._parent(),
                                               kind=SpanKind.CLIENT, attributes=attributes)
            if self.content:
                self.chat.set_attribute("gen_ai.input.messages", _content(self.turn.messages(), self.secrets))
        except Exception:
            self.chat = None

    def request_ended(self, step: Any) -> None:
        try:
            self._end_chat(step)
        except Exception:
            self.chat = None

    def _end_chat(self, step: Any) -> None:
        span, self.chat = self.chat, None
        if span is None:
            return
        if step is not None:
            span.set_attribute("gen_ai.response.model", step.model or self.turn.settings.model)
            if step.finish_reason:
                span.set_attribute("gen_ai.response.finish_reasons", [step.finish_reason])
            _usage(span, step.usage)
            if self.content:
                span.set_attribute("gen_ai.output.messages", _content(
                    {"text": step.text, "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments}
                                                       for c in step.tool_calls]}, self.secrets))
            if step.error is not None:
                _failed(span, step.error_kind, step.error)
        else:
            _failed(span, "incomplete", "the request ended without an answer")
        span.end()

    @contextmanager
    def tool(self, call_id: str, name: str, arguments: str) -> Iterator[Any]:
        """An ``execute_tool`` span around one call; the body gets a setter for the result."""
        span = None
        try:
            from opentelemetry.trace import SpanKind

            attributes = {**self.common, "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name,
                          "gen_ai.tool.call.id": call_id, "gen_ai.tool.type": "function"}
            span = self.tracer.start_span(f"execute_tool {name}", context=self._parent(), kind=SpanKind.INTERNAL,
                                          attributes=attributes)
            if self.content:
                span.set_attribute("gen_ai.tool.call.arguments", _content(arguments, self.secrets))
        except Exception:
            span = None

        def result(text: str, error: str | None) -> None:
            if span is None:
                return
            try:
                if self.content:
                    span.set_attribute("gen_ai.tool.call.result", _content(text, self.secrets))
                if error:  # error.type stays low in cardinality: "ZeroDivisionError", "denied"
                    _failed(span, error.split(":", 1)[0].strip()[:64] or "error", error)
            except Exception:
                pass

        try:
            yield result
        except BaseException as error:
            if span is not None:
                try:
                    _failed(span, type(error).__name__, str(error))
                except Exception:
                    pass
            raise
        finally:
            if span is not None:
                try:
                    span.end()
                except Exception:
                    pass

    def end(self, response: Any) -> None:
        try:
            # A request still open here was cut (interrupt, failure): a plain turn's response
            # says how; an agent turn's total belongs to the agent span.
            self._end_chat(None if self.agent else response)
            if self.root is not None:
                self.root.set_attribute("gen_ai.response.model", response.model or self.turn.settings.model)
                _usage(self.root, response.usage)
                if self.content:
                    self.root.set_attribute("gen_ai.output.messages", _content(response.text, self.secrets))
                if response.error is not None:
                    _failed(self.root, response.error_kind, response.error)
                self.root.end()
                self.root = None
        except Exception:
            pass


def turn_trace(turn: Turn) -> tuple[TurnTrace | None, str | None]:
    """The turn's spans, or (None, a one-line reason) when OpenTelemetry is missing."""
    try:
        import opentelemetry.trace  # noqa: F401
    except ImportError:
        return None, MISSING
    try:
        return TurnTrace(turn), None
    except Exception as error:  # a broken provider must not break the turn
        return None, f"Tracing is off for this turn: {type(error).__name__}: {error}"


@contextmanager
def tool_span(turn: Any, call_id: str, name: str, arguments: str) -> Iterator[Any]:
    """``turn.trace.tool(...)`` when the turn is traced; otherwise a setter that does nothing."""
    trace = getattr(turn, "trace", None)
    if trace is None:
        yield lambda text, error: None
        return
    with trace.tool(call_id, name, arguments) as result:
        yield result
