"""One turn, end to end: messages out, events to a renderer, memory and ledger updated.

The magic, `ask()` and the sidebar all come through here, so they behave the same: the
same conversation rules, the same interrupt handling (close the connection at once, keep
the partial answer, leave the memory consistent, then let KeyboardInterrupt go on so a
"run all" stops), and the same usage accounting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .events import Event, Failed, Notice, Usage, format_cost
from .response import Response
from .session import Session
from .settings import Settings

if TYPE_CHECKING:
    from .display.base import TurnMeta

__all__ = ["Renderer", "TurnRequest", "execute_turn", "run_turn", "arun_turn", "flatten", "merge_text", "INTERRUPTED"]

INTERRUPTED = "Interrupted: the request was stopped and the partial answer is kept."


class Renderer(Protocol):
    def start(self, meta: TurnMeta) -> None: ...
    def handle(self, event: Event) -> None: ...
    def finish(self, response: Response) -> None: ...


@dataclass
class TurnRequest:
    """What to send: the user's content parts, and how to treat the conversation."""

    content: str | list[dict[str, Any]]
    settings: Settings
    history: bool = True  # send and extend the session's conversation
    tools: list[dict[str, Any]] | None = None
    response_format: dict[str, Any] | None = None
    source: str = "magic"
    # What else shapes the answer (agent mode, web search): part of the cache key.
    mode: dict[str, Any] = field(default_factory=dict)
    cache: bool | None = None  # None: the `cache` setting decides

    def messages(self, session: Session) -> list[dict[str, Any]]:
        user = {"role": "user", "content": self.content}
        if self.history:
            return [*session.conversation.for_request(self.settings.history_budget, self.settings.system), user]
        head = [{"role": "system", "content": self.settings.system}] if self.settings.system else []
        return [*head, user]

    def meta(self) -> TurnMeta:
        from .display.base import TurnMeta

        s = self.settings
        return TurnMeta(model=s.model, thinking=bool(s.thinking), provider=s.provider,
                        context_window=s.preset.context_window)


def merge_text(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Adjacent text parts joined into one (never an empty message)."""
    merged: list[dict[str, Any]] = []
    for part in parts:
        if part.get("type") == "text" and merged and merged[-1].get("type") == "text":
            merged[-1] = {"type": "text", "text": merged[-1]["text"] + part["text"]}
        else:
            merged.append(part)
    return merged or [{"type": "text", "text": ""}]


def flatten(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """A message of one text part is sent as a plain string (the common, cheapest form)."""
    if len(parts) == 1 and parts[0].get("type") == "text":
        return str(parts[0]["text"])
    return parts


def _finish(session: Session, request: TurnRequest, response: Response, requests: int = 1) -> None:
    usage = response.usage
    session.ledger.add(request.source, usage if isinstance(usage, Usage) else Usage.not_reported(), requests)
    session.last = response
    if not request.history:
        return
    failed_before_anything = response.error is not None and not response.text and not response.tool_calls
    if failed_before_anything:
        return  # nothing happened: the user can simply run the cell again
    session.conversation.add_user(request.content)
    # A cut turn keeps its partial text; tool calls that never ran are not stored.
    session.conversation.add_assistant(response, calls=[] if response.error else None)


def run_turn(session: Session, request: TurnRequest, renderer: Renderer) -> Response:
    """Run one request synchronously, streaming its events into ``renderer``."""
    client = session.client(request.settings)
    stream = client.stream_chat(request.messages(session), tools=request.tools,
                                response_format=request.response_format)
    response = stream.response
    renderer.start(request.meta())
    interrupted = False
    try:
        for event in stream:
            renderer.handle(event)
    except KeyboardInterrupt:
        interrupted = True
        stream.close()  # closes the HTTP response now, not at garbage collection
        event = Failed(INTERRUPTED, "Interrupted", partial=bool(response.text or response.reasoning))
        response.feed(event)
        renderer.handle(event)
    finally:
        renderer.finish(response)
        _finish(session, request, response)
    if interrupted:
        raise KeyboardInterrupt
    return response


async def arun_turn(session: Session, request: TurnRequest, renderer: Renderer) -> Response:
    """The async twin of `run_turn` (one AsyncKimiClient per call; cancellation-safe)."""
    import asyncio

    from .client import AsyncKimiClient

    async with AsyncKimiClient(request.settings) as client:
        stream = client.stream_chat(request.messages(session), tools=request.tools,
                                    response_format=request.response_format)
        response = stream.response
        renderer.start(request.meta())
        try:
            async for event in stream:
                renderer.handle(event)
        except asyncio.CancelledError:
            await stream.aclose()
            event = Failed(INTERRUPTED, "Interrupted", partial=bool(response.text))
            response.feed(event)
            renderer.handle(event)
            raise
        finally:
            renderer.finish(response)
            _finish(session, request, response)
    return response


# -- budget, pre-flight and cache: the same for plain and agent turns ------------------------

Runner = Callable[[Session, TurnRequest, Renderer], Response]


class _Recorder:
    """Passes events through to the real renderer and keeps them for the cache."""

    def __init__(self, inner: Renderer, before: list[Event]):
        self.inner = inner
        self.before = before
        self.events: list[Event] = []

    def start(self, meta: TurnMeta) -> None:
        self.inner.start(meta)
        for event in self.before:
            self.inner.handle(event)

    def handle(self, event: Event) -> None:
        self.events.append(event)
        self.inner.handle(event)

    def finish(self, response: Response) -> None:
        self.inner.finish(response)


def _refuse(renderer: Renderer, request: TurnRequest, session: Session, message: str) -> Response:
    response = Response(model=request.settings.model)
    event = Failed(message, "BudgetExceeded")
    renderer.start(request.meta())
    response.feed(event)
    renderer.handle(event)
    renderer.finish(response)
    session.last = response
    return response


def _guard(session: Session, request: TurnRequest, messages: list[dict[str, Any]]) -> tuple[str | None, list[Event]]:
    """A refusal message (nothing is sent) or notices to show before sending."""
    from .conversation import estimate_message_tokens

    s = request.settings
    notices: list[Event] = []
    price = s.price()
    currency = price.currency if price else None
    spent = session.ledger.total.usage.cost or 0.0
    if s.budget is not None:
        if spent >= s.budget:
            return (f"Refused: this session has spent {format_cost(spent, currency)} of its "
                    f"{format_cost(s.budget, currency)} budget. Raise %config Kimi.budget to go on."), []
        if spent >= 0.8 * s.budget:
            notices.append(Notice(f"{spent / s.budget:.0%} of the session budget "
                                  f"({format_cost(s.budget, currency)}) is spent.", "warning"))
    tokens = sum(estimate_message_tokens(m) for m in messages)
    content = messages[-1].get("content") if messages else None
    has_media = isinstance(content, list) and any(p.get("type") in ("image_url", "video_url") for p in content)
    estimated_by = "estimated locally"
    if tokens >= s.preflight_tokens and has_media:
        try:  # the server's own count, where the provider offers it
            tokens = session.client(s).estimate_tokens(messages)
            estimated_by = "counted by the server"
        except Exception:  # any failure: keep the local estimate
            pass
    cost = price.cost(tokens, 0) if price else None
    if s.max_turn_cost is not None and cost is not None and cost > s.max_turn_cost:
        return (f"Refused: the prompt alone is about {tokens:,} tokens ({format_cost(cost, currency)}), over the "
                f"per-turn limit of {format_cost(s.max_turn_cost, currency)} (%config Kimi.max_turn_cost)."), []
    if s.budget is not None and cost is not None and spent + cost > s.budget:
        return (f"Refused: the prompt alone is about {tokens:,} tokens ({format_cost(cost, currency)}), which would "
                f"pass the session budget of {format_cost(s.budget, currency)} ({format_cost(spent, currency)} "
                "spent). Raise %config Kimi.budget or send less."), []
    if tokens >= s.preflight_tokens:
        priced = f", about {format_cost(cost, currency)} before the answer" if cost is not None else ""
        notices.append(Notice(f"Pre-flight: this prompt is about {tokens:,} tokens ({estimated_by}){priced}.", "info"))
    return None, notices


def _cache_key(request: TurnRequest, messages: list[dict[str, Any]]) -> str:
    from .cache import request_key

    s = request.settings
    return request_key({
        "provider": s.provider, "model": s.model, "thinking": s.thinking, "max_tokens": s.max_tokens,
        "messages": messages, "tools": request.tools, "response_format": request.response_format,
        "mode": request.mode,
    })


def execute_turn(session: Session, request: TurnRequest, renderer: Renderer, runner: Runner | None = None) -> Response:
    """Budget check, pre-flight, cache replay or a real run (``runner``, default `run_turn`)."""
    from .cache import ResponseCache

    runner = runner or run_turn
    from .transcript import recording  # [export hook] every finished turn goes into its transcript

    renderer = recording(session, request, renderer)
    messages = request.messages(session)
    refusal, notices = _guard(session, request, messages)
    if refusal is not None:
        return _refuse(renderer, request, session, refusal)
    use_cache = request.settings.cache if request.cache is None else request.cache
    cache = ResponseCache(request.settings.cache_dir) if use_cache else None
    key = _cache_key(request, messages) if cache else ""
    hit = cache.load(key) if cache else None
    if hit is not None:
        return _replay(session, request, renderer, hit)
    recorder = _Recorder(renderer, notices)
    before = len(session.conversation)
    response = runner(session, request, recorder)
    if cache is not None and response.error is None and response.done:
        cache.store(key, recorder.events, session.conversation.messages[before:])
    return response


REPLAYED = Notice("Replayed from the response cache: no request was sent and nothing was billed.", "info")


def _replay(session: Session, request: TurnRequest, renderer: Renderer, hit: Any) -> Response:
    response = Response(model=request.settings.model)
    renderer.start(request.meta())
    for event in (REPLAYED, *hit.events):
        response.feed(event)
        renderer.handle(event)
    renderer.finish(response)
    if request.history:
        session.conversation.messages.extend(hit.conversation)
    session.ledger.add("replayed", Usage.not_reported())
    session.last = response
    return response
