"""One turn, end to end: messages out, events to a renderer, memory and ledger updated.

The magic, `ask()` and the sidebar all come through here, so they behave the same: the
same conversation rules, the same interrupt handling (close the connection at once, keep
the partial answer, leave the memory consistent, then let KeyboardInterrupt go on so a
"run all" stops), and the same usage accounting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from .events import Event, Failed, Usage
from .response import Response
from .session import Session
from .settings import Settings

if TYPE_CHECKING:
    from .display.base import TurnMeta

__all__ = ["Renderer", "TurnRequest", "run_turn", "arun_turn", "flatten", "INTERRUPTED"]

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
