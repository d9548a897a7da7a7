"""The one vocabulary every layer speaks.

A turn with Kimi is an iterator of small immutable events. The client produces them from
the wire, the agent adds tool-execution steps, and every renderer (plain text, the live
widget, the saved bundle, the JupyterLab sidebar) consumes nothing else. Events are plain
frozen dataclasses with a JSON form (``to_json``/``event_from_json``) so the sidebar can
receive exactly the same stream over a comm.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Union, get_args

__all__ = [
    "ReasoningDelta",
    "TextDelta",
    "ToolCallRequested",
    "ToolCallStarted",
    "ToolCallFinished",
    "ApprovalRequested",
    "ApprovalResolved",
    "Usage",
    "Retrying",
    "Notice",
    "Done",
    "Failed",
    "Event",
    "INTERRUPTED_KIND",
    "event_to_json",
    "event_from_json",
]


# The two delta types are built once per token, so they use slots (smaller, and the
# client's hot loop can fill the slot directly; see ``text_slot_setter``).
@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """A fragment of the model's reasoning trace (``reasoning_content`` and its kin)."""

    text: str


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A fragment of the answer itself."""

    text: str


def text_slot_setter(cls: type[TextDelta] | type[ReasoningDelta]) -> Callable[[Any, str], None]:
    """The setter of a delta type's ``text`` slot, for the client's per-token loop:
    ``e = object.__new__(TextDelta); setter(e, text)`` builds the same event as
    ``TextDelta(text)`` at about half the cost (the frozen ``__init__`` goes through
    ``object.__setattr__``)."""
    return cls.__dict__["text"].__set__  # type: ignore[no-any-return]


@dataclass(frozen=True)
class ToolCallRequested:
    """The model asked for a tool call; emitted once its arguments are complete.

    ``arguments`` is the raw JSON string exactly as the model produced it (it must be sent
    back byte for byte, and ``$web_search`` echoes it unchanged).
    """

    id: str
    name: str
    arguments: str
    index: int = 0
    type: str = "function"


@dataclass(frozen=True)
class ToolCallStarted:
    """A tool began running (in the kernel, or on the provider's side)."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ToolCallFinished:
    """A tool finished: ``result`` is what goes back to the model, ``error`` a short text."""

    id: str
    result: str
    error: str | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class ApprovalRequested:
    """Code proposed by the model waits for the user's yes or no."""

    id: str
    name: str
    code: str


@dataclass(frozen=True)
class ApprovalResolved:
    """The user's decision on an :class:`ApprovalRequested` (``approved`` or denied)."""

    id: str
    approved: bool
    how: str = "user"


@dataclass(frozen=True)
class Usage:
    """Token usage of one request and what it cost.

    ``reported`` is False when the server sent no usage at all (some self-hosted servers
    never do while streaming): every count is then None, and renderers say "not reported"
    rather than showing zeros as if they were measured. ``prompt`` includes ``cached``;
    ``completion`` includes ``reasoning`` (reasoning is billed as output).
    """

    prompt: int | None = None
    completion: int | None = None
    cached: int | None = None
    reasoning: int | None = None
    total: int | None = None
    cost: float | None = None
    currency: str | None = None
    reported: bool = True
    # Said instead of a cost when the price is unknown ("price unknown: set Kimi.prices").
    note: str | None = None
    # Prompt tokens written to the provider's prompt cache (billed at the cache-write price);
    # None when the server did not say.
    cache_write: int | None = None

    @classmethod
    def not_reported(cls) -> Usage:
        if cls is Usage:  # frozen, so one instance serves every caller
            return _NOT_REPORTED
        return cls(reported=False)

    def __add__(self, other: Usage) -> Usage:
        """Sum two usages (session totals); an unreported side contributes nothing."""
        if not other.reported:
            return self
        if not self.reported:
            return other

        def add(a: float | None, b: float | None) -> Any:
            if a is None and b is None:
                return None
            return (a or 0) + (b or 0)

        currency = self.currency if self.currency == other.currency else (self.currency or other.currency)
        cost = add(self.cost, other.cost)
        if self.currency and other.currency and self.currency != other.currency:
            cost = None  # costs in two currencies cannot be summed honestly
        return Usage(
            prompt=add(self.prompt, other.prompt),
            completion=add(self.completion, other.completion),
            cached=add(self.cached, other.cached),
            reasoning=add(self.reasoning, other.reasoning),
            total=add(self.total, other.total),
            cost=cost,
            currency=currency,
            reported=True,
            note=self.note or other.note,
            cache_write=add(self.cache_write, other.cache_write),
        )

    def describe(self) -> str:
        """One deterministic line: the usage line of every renderer."""
        if not self.reported:
            return "usage: not reported by the server"
        parts = []
        if self.prompt is not None:
            cache = [f"{self.cached} cached"] if self.cached else []
            if self.cache_write:
                cache.append(f"{self.cache_write} written to cache")
            cached = f" ({', '.join(cache)})" if cache else ""
            parts.append(f"prompt {self.prompt}{cached}")
        if self.completion is not None:
            reasoning = f" ({self.reasoning} reasoning)" if self.reasoning else ""
            parts.append(f"completion {self.completion}{reasoning}")
        if self.total is not None:
            parts.append(f"total {self.total} tokens")
        if self.cost is not None:
            parts.append(f"cost {format_cost(self.cost, self.currency)}")
        elif self.note and parts:
            parts.append(self.note)
        return "usage: " + ", ".join(parts) if parts else "usage: (empty)"


_NOT_REPORTED = Usage(reported=False)


def format_cost(cost: float, currency: str | None) -> str:
    symbol = {"CNY": "¥", "USD": "$"}.get(currency or "", "")
    if symbol:
        return f"{symbol}{cost:.6f}".rstrip("0").rstrip(".") if cost else f"{symbol}0"
    return f"{cost:.6f} {currency or ''}".strip()


@dataclass(frozen=True)
class Retrying:
    """The request failed in a retryable way and will be tried again after ``wait`` s."""

    attempt: int
    wait: float
    reason: str


@dataclass(frozen=True)
class Notice:
    """Something the user should know that is not an error (e.g. a replayed response)."""

    text: str
    level: str = "info"


@dataclass(frozen=True)
class Done:
    """The turn ended. ``cut`` is True when the stream stopped before ``[DONE]``."""

    finish_reason: str | None
    cut: bool = False


#: ``Failed.kind`` of a turn the user stopped: how every view tells an interrupt from a failure.
INTERRUPTED_KIND = "Interrupted"


@dataclass(frozen=True)
class Failed:
    """The turn failed; ``error`` is the user-facing message, ``kind`` the error class
    (:data:`INTERRUPTED_KIND` when the user stopped it)."""

    error: str
    kind: str = "KimiError"
    partial: bool = False
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


Event = Union[
    ReasoningDelta,
    TextDelta,
    ToolCallRequested,
    ToolCallStarted,
    ToolCallFinished,
    ApprovalRequested,
    ApprovalResolved,
    Usage,
    Retrying,
    Notice,
    Done,
    Failed,
]

_EVENT_TYPES: dict[str, type] = {cls.__name__: cls for cls in get_args(Event)}


def event_to_json(event: Event) -> dict[str, Any]:
    """A JSON-ready dict: ``{"type": "TextDelta", "text": ...}``."""
    if type(event) in (TextDelta, ReasoningDelta):  # the common case, without asdict's recursion
        return {"text": event.text, "type": type(event).__name__}  # type: ignore[union-attr]
    data = dataclasses.asdict(event)
    data["type"] = type(event).__name__
    if isinstance(event, Usage):  # only when set: saved outputs stay as they were
        for optional in ("note", "cache_write"):
            if data[optional] is None:
                del data[optional]
    return data


def event_from_json(data: dict[str, Any]) -> Event:
    """Inverse of :func:`event_to_json`; unknown keys are ignored.

    ``type`` is the class name: it never fills a field (``ToolCallRequested.type``, which
    ``event_to_json`` overwrites, gets its default ``"function"`` back).
    """
    cls = _EVENT_TYPES[data["type"]]
    names = {f.name for f in dataclasses.fields(cls)} - {"type"}
    return cls(**{k: v for k, v in data.items() if k in names})  # type: ignore[no-any-return]
