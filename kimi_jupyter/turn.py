"""The one turn engine: every entry point (`%%kimi`, `ask`, `aask`, the sidebar, the agent,
the rows engine) runs a turn through here, so they cannot drift apart.

A `Turn` is the I/O-free core. It builds the message list once (the chat's trimmed history
plus the new user message), looks up the recording named by ``%kimi record`` and the
response cache (a replay sends and bills nothing; see kimi_jupyter/recording.py),
guards what it will send (the request size; the session budget, reserved under a lock so
that concurrent turns cannot overshoot it; the per-turn cost limit; the pre-flight
estimate), decides what to send next, folds the events that come back
(a `Strategy` such as the agent's tool loop decides whether another request follows), and
commits the outcome in one place: the chat's conversation and last response, the usage
ledger, the budget reservation, the cache. `run_turn` and `arun_turn` are the thin sync and
async drivers: they only open streams on the pooled clients, feed the events in, and turn an
interrupt (KeyboardInterrupt, or cancellation) into a kept partial answer.

Interrupts: the connection is closed at once, the partial answer is kept, the memory is
left consistent (a tool call is never stored without its result), and the KeyboardInterrupt
or CancelledError goes on so a "run all" stops.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .cache import ResponseCache, request_key
from .client.size import check_request_size
from .conversation import assistant_message, estimate_message_tokens
from .events import INTERRUPTED_KIND, Done, Event, Failed, Notice, TextDelta, Usage, format_cost
from .kernel_status import busy_while_kimi_runs
from .recording import Tape, provenance, tape_for
from .response import Response
from .secrets import key_notice_once
from .sizes import json_bound
from .transcript import recording

if TYPE_CHECKING:
    from .session import Chat, Session
    from .settings import Settings

__all__ = [
    "INTERRUPTED", "REPLAYED", "NullRenderer", "Renderer", "Strategy", "Turn", "TurnMeta", "TurnRequest",
    "arun_turn", "run_turn",
]

INTERRUPTED = "Interrupted: the request was stopped and the partial answer is kept."
REPLAYED = Notice("Replayed from the response cache: no request was sent and nothing was billed.", "info")
# Output tokens a turn is expected to cost before this session has measured any.
EXPECTED_COMPLETION = 1024


@dataclass(frozen=True)
class TurnMeta:
    """What a renderer shows before any event arrives."""

    model: str
    thinking: bool
    provider: str | None = None
    context_window: int | None = None
    title: str | None = None
    effort: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON form (saved bundles, the sidebar); ``effort`` only when one was sent, so
        saved outputs of turns without it stay as they were."""
        import dataclasses

        data = dataclasses.asdict(self)
        if data["effort"] is None:
            del data["effort"]
        return data

    def headline(self, state: str | None = None) -> str:
        """'kimi-k2.5 · thinking on · answering' (no timings: the saved bundle uses it too)."""
        parts = [self.title] if self.title else []
        parts.append(self.model + (f" ({self.provider})" if self.provider else ""))
        parts.append("thinking on" if self.thinking else "thinking off")
        if self.effort and self.thinking:
            parts.append(f"effort {self.effort}")
        if state:
            parts.append(state)
        return " · ".join(parts)


@runtime_checkable
class Renderer(Protocol):
    """``start(meta)``, then ``handle(event)`` for every event (cheap: thousands a second),
    then ``finish(response)`` exactly once, however the turn ended."""

    def start(self, meta: TurnMeta) -> None: ...

    def handle(self, event: Event) -> None: ...

    def finish(self, response: Response) -> None: ...


class NullRenderer:
    """Shows nothing (``display="none"``)."""

    def start(self, meta: TurnMeta) -> None:
        pass

    def handle(self, event: Event) -> None:
        pass

    def finish(self, response: Response) -> None:
        pass


class Strategy(Protocol):
    """How a turn goes on after one request: the agent's tool loop is one."""

    def tools(self, turn: Turn) -> list[dict[str, Any]] | None:
        """The tool schemas the next request offers."""
        ...

    def after_step(self, turn: Turn, step: Response) -> bool:
        """Act on a finished request (run its tool calls); True: send another."""
        ...

    def close(self) -> None:
        """The turn is over, however it ended."""
        ...


@dataclass
class TurnRequest:
    """What to send: the user's content parts, and how to treat the conversation."""

    content: str | list[dict[str, Any]]
    settings: Settings
    history: bool = True  # send and extend the chat's conversation
    tools: list[dict[str, Any]] | None = None
    response_format: dict[str, Any] | None = None
    source: str = "magic"
    # What else shapes the answer (agent mode, web search): part of the cache key.
    mode: dict[str, Any] = field(default_factory=dict)
    cache: bool | None = None  # None: the `cache` setting decides
    chat: Chat | None = None  # which memory; None: the notebook's (%%kimi, ask)
    strategy: Strategy | None = None  # None: one plain request
    # Documents: system messages sent before the user message (and kept in the memory).
    context: list[dict[str, Any]] = field(default_factory=list)
    # Client options of the first request: prefill (partial mode), notices shown first.
    wire: dict[str, Any] = field(default_factory=dict)
    # A run's own budget (map(budget=)), held in the session's one ledger with the session's.
    run_budget: Any = None
    # The notebook cell this turn answers (the frontend's cell id), and its label ("In [4]"):
    # its exchange replaces that cell's earlier one in place (`Conversation.place`). None: appended.
    cell: str | None = None
    cell_label: str | None = None
    # A follow-up in the same cell (the schema retry): sent the history through the cell's
    # exchange, and added to it instead of replacing it.
    cell_follow_up: bool = False

    @property
    def silent(self) -> bool:
        """A row of a ``map()`` run: not part of the conversation's story. It is neither the
        chat's last response (``_kimi`` stays the last cell's answer) nor in its transcript
        (a 10,000-row run is not a conversation; its answers are in the frame it returns)."""
        return self.source == "rows"

    def meta(self) -> TurnMeta:
        s = self.settings
        info = s.model_info
        effort = s.effort if info is not None and s.effort in info.efforts else None
        return TurnMeta(model=s.model, thinking=bool(s.thinking) or bool(info and info.always_thinks),
                        provider=s.provider, context_window=s.context_window,  # the model registry's window
                        effort=effort)


class Turn:
    """One turn's state and every decision in it; the drivers below do the I/O."""

    def __init__(self, session: Session, request: TurnRequest, renderer: Renderer) -> None:
        self.session, self.request = session, request
        self.settings = request.settings
        self.chat: Chat = request.chat or session.notebook
        # Every finished turn goes into its chat's transcript (%kimi export, the sidebar's
        # Export), except a silent one (`TurnRequest.silent`).
        self.renderer = renderer if request.silent else recording(self.chat, request, renderer)
        self.user = {"role": "user", "content": request.content}
        self.base, self.history_tokens = self._base_messages()
        self.server_count: int | None = None  # the server's token count of ``user``, when counted ahead
        self.balance_body: Any = None  # the account balance reply, when fetched ahead
        self.total: Response | None = None  # plain turns: the stream's own snapshot
        self.steps = 0
        self.added: list[dict[str, Any]] = []  # tool-step messages this turn adds
        self.consistent = 0  # length of `added` at the last point the history was complete
        self.final: Response | None = None  # the request whose answer closes the turn
        self.requests = 0
        self.started = time.monotonic()
        self._before: list[Event] = []  # notices to show before the first request
        self._recorded: list[Event] | None = None  # events kept for the cache
        self._notices: set[Notice] = set()
        self._ticket: int | None = None
        self._max_tokens: int | None = None  # lowered so the budget is not passed (ledger.py)
        self._cache: ResponseCache | None = None
        self._key = ""
        self._tape: Tape | None = None  # the recording (kimi_jupyter.recording), when one is named
        self._tape_key = ""
        self._committed = False
        self.trace: Any = None  # tracing.TurnTrace while spans are exported (Kimi.tracing)

    # -- building -----------------------------------------------------------------------
    def _system(self) -> str | None:
        """The system prompt: the ``system`` setting, then the project rules (`kimi_jupyter.rules`)."""
        s = self.settings
        if not s.rules or self.request.silent:
            return s.system
        from .rules import rules_text
        from .secrets import secrets_of

        rules = rules_text(secrets=secrets_of(s))
        if not rules:
            return s.system
        return f"{s.system}\n\n{rules}" if s.system else rules

    def _base_messages(self) -> tuple[list[dict[str, Any]], int]:
        s = self.settings
        system = self._system()
        if self.request.history:
            cell, follow_up = self.request.cell, self.request.cell_follow_up
            history, tokens, size = self.chat.conversation.sized_request(
                s.history_budget, system, before=None if follow_up else cell, through=cell if follow_up else None)
        else:
            history = [{"role": "system", "content": system}] if system else []
            tokens = sum(estimate_message_tokens(m) for m in history)
            size = json_bound(history)
        # The size bound of the history part of the list (the first `len(history)` messages):
        # the request size checks walk only what comes after it.
        self.known_size = (len(history), size)
        context = self.request.context
        if context:
            tokens += sum(estimate_message_tokens(m) for m in context)
        return [*history, *context, self.user], tokens

    def messages(self) -> list[dict[str, Any]]:
        """What the next request sends."""
        return self.base + self.added if self.added else self.base

    def wire(self) -> dict[str, Any]:
        """Client options: the request's own for the first request, none for later tool
        rounds; an agent turn is never prefilled (its first step may be a tool call)."""
        wire = self.request.wire if self.requests == 0 else {}
        if self.request.strategy is not None and "prefill" in wire:
            wire = {k: v for k, v in wire.items() if k != "prefill"}
        if self._max_tokens is not None:  # what the budget affords (every request of the turn)
            wire = {**wire, "extra": {**(wire.get("extra") or {}), "max_tokens": self._max_tokens}}
        return {**wire, "known_size": self.known_size}

    def tools(self) -> list[dict[str, Any]] | None:
        strategy = self.request.strategy
        return strategy.tools(self) if strategy is not None else self.request.tools

    # -- before anything is sent --------------------------------------------------------
    def open(self) -> Response | None:
        """Start the renderer, look up the cache, then check the size and guard.

        Returns the finished response when no request is needed (replayed or refused);
        None when the drivers should send `messages()`. A replay sends nothing and bills
        nothing, so it is neither size-checked nor held to the budget.
        """
        if not isinstance(self.renderer, NullRenderer):  # a silent turn needs no headline
            self.renderer.start(self.request.meta())
        self._tape = tape_for(self.session, self.settings, self.request.source)
        if self._tape is not None:  # %kimi record / Kimi.replay: the recording first
            self._tape_key = self.cache_key(own_tools=True)
            found = self._tape.lookup(self, self._tape_key)
            if isinstance(found, str):  # replay only, and this turn is not recorded
                return self._end_now(Failed(found, "NotRecordedError"))
            if found is not None:
                return self._replay(found.turn, notice=None, origin="replayed")
            self._recorded = []
        use_cache = self.settings.cache if self.request.cache is None else self.request.cache
        if use_cache:
            self._cache = ResponseCache(self.settings.cache_dir)
            self._key = self.cache_key()
            hit = self._cache.load(self._key)
            if self._cache.problem:  # a damaged entry is a miss, said in one line
                self._before.append(Notice(self._cache.problem, "warning"))
            if hit is not None:
                return self._replay(hit)
            self._recorded = []
        too_big = check_request_size(self.base, self.settings, known=self.known_size)  # before any upload
        if too_big:
            return self._end_now(Failed(too_big, "RequestTooLargeError"))
        return self.admit()

    def admit(self, give_up: bool = False) -> Any:
        """The budget's answer: None (send), a finished refusal, or `ledger.WAIT` (the drivers
        wait a moment and ask again: the requests in flight hold what this one needs; with
        ``give_up`` that wait ends in a refusal)."""
        from .ledger import WAIT

        untrusted = self.settings.untrusted_endpoint()  # fresh settings: their sources decide
        if untrusted:
            return self._end_now(Failed(untrusted, "UntrustedEndpointError"))
        refusal = self._guard()
        if refusal is WAIT and give_up:
            refusal = ("Refused: requests still in flight hold the rest of the budget after waiting "
                       f"{self.settings.timeout_read:g} s for them. Nothing was sent.")
        if refusal is WAIT:
            return WAIT
        if refusal is not None:
            return self._end_now(Failed(refusal, "BudgetExceeded"))
        where = key_notice_once(self.settings)  # said once, right before the key first goes there
        if where:
            self._before.insert(0, Notice(where, "warning"))
        if self.request.strategy is not None:
            self.total = Response(model=self.settings.model)
        if self.settings.tracing:  # OpenTelemetry spans (kimi_jupyter.tracing)
            from .tracing import turn_trace

            self.trace, problem = turn_trace(self)
            if problem:
                self._before.append(Notice(problem, "warning"))
        return None

    def _guard(self) -> Any:
        """A refusal (nothing is sent), `ledger.WAIT` (it fits once the requests in flight
        settle), else None with the worst case reserved in the one ledger (`kimi_jupyter.ledger`)
        and notices queued."""
        from .ledger import WAIT, plan_spend, worst_answer

        s = self.settings
        run = self.request.run_budget
        new_tokens = estimate_message_tokens(self.user)
        tokens = self.history_tokens + new_tokens
        guarded = s.budget is not None or s.max_turn_cost is not None or s.budget_tokens is not None or run is not None
        if not guarded and tokens < s.preflight_tokens:
            return None  # nothing to guard and nothing to say (the common case, and every unbudgeted row)
        price = s.price()
        currency = price.currency if price else None
        estimated_by = "estimated locally"
        if self.wants_server_count():
            try:  # the server's own count of what is new, where the provider offers it
                counted = self.server_count  # the async driver counts before open(), off the loop's back
                if counted is None:
                    counted = self.session.client(s).estimate_tokens([self.user])
                tokens = self.history_tokens + counted
                estimated_by = "counted by the server"
            except Exception:  # any failure: keep the local estimate
                pass
        prompt_cost = price.cost(tokens, 0) if price else None
        if guarded:
            worst = worst_answer(s.max_tokens, s.context_window, tokens)
            held = int(tokens * 1.1) + 16  # a margin over the local estimate (the server counts a little more)

            def decide(ledger: Any) -> Any:
                return plan_spend(prompt_tokens=held, worst=worst, price=price, currency=currency, model=s.model,
                                  provider=s.provider, budget=s.budget, spent=ledger.spent, in_flight=ledger.in_flight,
                                  budget_tokens=s.budget_tokens, spent_tokens=ledger.spent_tokens,
                                  in_flight_tokens=ledger.in_flight_tokens, run=run, max_turn_cost=s.max_turn_cost)

            self._ticket, decision = self.session.budget.reserve_spend(decide, run)
            if decision is WAIT or isinstance(decision, str):
                return decision
            if decision.max_tokens is not None:
                self._max_tokens = decision.max_tokens
                self._before.append(Notice(decision.notice or "", "warning"))
            spent = self.session.budget.spent
            if s.budget is not None and spent >= 0.8 * s.budget:
                balance = self._balance()
                self._before.append(Notice(f"{spent / s.budget:.0%} of the session budget "
                                           f"({format_cost(s.budget, currency)}) is spent."
                                           + (f" {balance}." if balance else ""), "warning"))
        if tokens >= s.preflight_tokens:
            priced = f", about {format_cost(prompt_cost, currency)} before the answer" if prompt_cost is not None else ""
            self._before.append(Notice(f"Pre-flight: this prompt is about {tokens:,} tokens ({estimated_by}){priced}.",
                                       "info"))
        return None

    def wants_balance(self) -> bool:
        """Whether `_guard` will show the account balance (a budget 80% spent, a provider
        that has one)."""
        from .account import BALANCE_PROVIDERS

        s = self.settings
        return (s.budget is not None and self.session.budget.spent >= 0.8 * s.budget
                and s.provider in BALANCE_PROVIDERS)

    def wants_server_count(self) -> bool:
        """Whether `_guard` asks the server to count the new message's tokens."""
        tokens = self.history_tokens + estimate_message_tokens(self.user)
        return self._near_a_limit(tokens) and _has_media(self.request.content)

    def _balance(self) -> str | None:
        """The account balance, where the provider has ``/users/me/balance`` (account.py)."""
        from .account import BALANCE_PROVIDERS, balance_values, describe

        currency = BALANCE_PROVIDERS.get(self.settings.provider)
        if currency is None:
            return None
        try:
            body = self.balance_body  # the async driver fetches it before open(), off the loop's back
            values = balance_values(body if body is not None else self.session.client(self.settings).balance())
        except Exception:  # the notice goes out without it
            return None
        return describe(values, currency) if values else None

    def _near_a_limit(self, tokens: int) -> bool:
        """Whether the local estimate is close enough to a limit to ask the server."""
        s = self.settings
        if tokens < s.preflight_tokens:
            return False
        window = s.context_window
        if window and tokens >= 0.8 * window:
            return True
        price = s.price()
        if price is None:
            return False
        cost = price.cost(tokens, 0)
        limits = [s.max_turn_cost] if s.max_turn_cost is not None else []
        if s.budget is not None:
            limits.append(s.budget - self.session.budget.spent)
        return any(cost >= 0.8 * limit for limit in limits)

    def _expected_completion(self) -> int:
        total = self.session.ledger.total
        measured = total.usage.completion if total.usage.reported and total.requests else None
        guess = int(measured / max(1, total.requests - total.unreported)) if measured else EXPECTED_COMPLETION
        return min(guess, self.settings.max_tokens) if self.settings.max_tokens else guess

    def cache_key(self, own_tools: bool = False) -> str:
        """The response-cache key of this turn's request (everything that shapes the answer).

        ``own_tools``: the request's own tools instead of the strategy's (the recording's
        key: an agent offers notebook tools only where a notebook frontend answers, and
        the mode says it is an agent turn, so a turn recorded in JupyterLab replays under
        nbclient; asking the strategy would also open the frontend link for a replay)."""
        s = self.settings
        tools = self.request.tools if own_tools else self.tools()
        return request_key({
            "provider": s.provider, "model": s.model, "thinking": s.thinking, "max_tokens": s.max_tokens,
            **({"effort": s.effort} if s.effort else {}),
            "messages": self.base, "tools": tools, "response_format": self.request.response_format,
            "mode": self.request.mode, **({"prefill": self.request.wire["prefill"]} if self.request.wire.get("prefill") else {}),
        })

    # -- while it runs --------------------------------------------------------------------
    def begin(self, step: Response) -> Callable[[Event], None]:
        """A new request's stream is open; returns what to call with each of its events."""
        self.requests += 1
        if self.trace is not None:
            self.trace.request_started()
        if self.total is None:  # a plain turn: the stream's snapshot is the turn's
            self.total = step
            for event in self._before:
                step.feed(event)
                self.renderer.handle(event)
            self._before.clear()
            if self._recorded is None:
                return self.renderer.handle
            recorded, handle = self._recorded, self.renderer.handle

            def record(event: Event) -> None:
                recorded.append(event)
                handle(event)

            return record
        for event in self._before:
            self.emit(event)
        self._before.clear()
        separate = [bool(self.total.text)]

        def step_event(event: Event) -> None:
            if separate[0] and isinstance(event, TextDelta):
                self.emit(TextDelta("\n\n"))
                separate[0] = False
            if isinstance(event, Done) and step.tool_calls:
                return  # an intermediate step: the turn is not done
            self.emit(event)

        return step_event

    def say_first(self, event: Event) -> None:
        """A notice of the turn's own set-up: shown before the first request's events when
        no request has begun yet (the agent's tools are gathered before it), else now."""
        if self.requests == 0 or self.total is None:
            self._before.append(event)
        else:
            self.emit(event)

    def emit(self, event: Event) -> None:
        """An event of the turn's own (tool steps, limits, notices) or of a later request."""
        if isinstance(event, Notice):
            if event in self._notices:
                return  # one request after another says the same thing; say it once
            self._notices.add(event)
        assert self.total is not None
        if self._recorded is not None:
            self._recorded.append(event)
        self.total.feed(event)
        self.renderer.handle(event)

    def step_done(self, step: Response) -> bool:
        """The request ended; True when another one follows."""
        self.final = step
        if self.trace is not None:
            self.trace.request_ended(step)
        strategy = self.request.strategy
        if strategy is None or step.error is not None or not step.tool_calls:
            return False
        return strategy.after_step(self, step)

    def interrupted(self) -> None:
        """Stopped by the user: end with the partial answer kept."""
        if self.total is None:
            self.total = Response(model=self.settings.model)
        event = Failed(INTERRUPTED, INTERRUPTED_KIND, partial=bool(self.total.text or self.total.reasoning))
        if self.request.strategy is not None:
            self.final = None
            self.emit(event)
        else:
            self.total.feed(event)
            self.renderer.handle(event)

    def failed(self, error: BaseException) -> None:
        """An exception from our own code in the middle of a turn: end it as a failure."""
        from .errors import KimiError

        message = str(error) if isinstance(error, (KimiError, ValueError)) else (
            f"Unexpected error in kimi_jupyter ({type(error).__name__}: {error}). Please report it.")
        if self.total is None:
            self.total = Response(model=self.settings.model)
        if self.total.error is None:
            event = Failed(message, type(error).__name__, partial=bool(self.total.text))
            self.total.feed(event)
            self.renderer.handle(event)

    # -- the end ----------------------------------------------------------------------------
    def close(self) -> Response:
        """Finish the renderer and commit, exactly once."""
        response = self.total or Response(model=self.settings.model)
        self.total = response
        if not self._committed:
            self._committed = True
            try:
                if self.trace is not None:
                    self.trace.end(response)
                if self.request.strategy is not None:
                    self.request.strategy.close()
            finally:
                try:
                    response.provenance = provenance(self._tape, self.settings.model, "live", response,
                                                     self._tape_key)
                    self.renderer.finish(response)
                finally:
                    self._commit(response)
        return response

    def _commit(self, response: Response) -> None:
        usage = response.usage if isinstance(response.usage, Usage) else Usage.not_reported()
        self.session.ledger.add(self.request.source, usage, self.requests)
        cost = usage.cost if usage.reported else (None if response.text else 0.0)
        self.session.budget.settle(self._ticket, cost)
        if not self.request.silent:
            self.chat.last = response
        conversation = self.chat.conversation
        before = len(conversation)
        added: list[dict[str, Any]] = []
        if self.request.history:
            self._remember(response)
            added = conversation.place(before, self.request.cell, self.request.cell_label,
                                       join=self.request.cell_follow_up)
            conversation.compact(self.settings.history_budget)
        if self._recorded is not None and response.error is None and response.done:
            if self._cache is not None:
                self._cache.store(self._key, self._recorded, added)
            if self._tape is not None:
                self._tape.record(self, self._tape_key, response, self._recorded, added)

    def _remember(self, response: Response) -> None:
        conversation = self.chat.conversation
        steps = self.added[: self.consistent]
        if any(m.get("tool_calls") and not m.get("reasoning_content") for m in steps):
            # Tool steps without reasoning (thinking was off, e.g. for --web) would make every
            # later thinking-on request a 400 (Kimi requires reasoning_content on tool-call
            # messages): keep only the exchange's text.
            steps = []
        if self.request.strategy is None:
            if response.error is not None and not response.text and not response.tool_calls:
                return  # nothing happened: the user can simply run the cell again
            conversation.extend(self.request.context)  # documents stay in memory
            conversation.add_user(self.request.content)
            # A cut turn keeps its partial text; tool calls that never ran are not stored.
            conversation.add_assistant(response, calls=[] if response.error else None,
                                       keep_reasoning=self._keep_reasoning)
            return
        if not response.text and not steps:
            return
        conversation.extend(self.request.context)
        conversation.add_user(self.request.content)
        conversation.extend(steps)
        if self.final is not None and self.final.text and self.final.error is None:
            conversation.append(assistant_message(self.final, calls=[], keep_reasoning=self._keep_reasoning))
        else:
            # Stopped at a limit, failed or interrupted: close the exchange plainly.
            tail = response.text[-2000:]
            conversation.append({"role": "assistant", "content": tail or "(stopped before answering)"})

    @property
    def _keep_reasoning(self) -> bool:
        """Whether answers keep their reasoning in the history (``thinking.keep = "all"``)."""
        info = self.settings.model_info
        return bool(info and info.keep_reasoning)

    def _end_now(self, event: Event) -> Response:
        self.total = Response(model=self.settings.model)
        self.total.feed(event)
        self.renderer.handle(event)
        self.requests = 0
        self._committed = True
        try:
            self.renderer.finish(self.total)
        finally:
            self.session.budget.settle(self._ticket)
            if not self.request.silent:
                self.chat.last = self.total
        return self.total

    def _replay(self, hit: Any, notice: Notice | None = REPLAYED, origin: str = "cache") -> Response:
        """Show a cached entry (with the `REPLAYED` notice) or a recorded one (exactly as it
        was shown when recorded, so the output is the same); nothing is sent or billed."""
        self.session.budget.settle(self._ticket)
        self._ticket = None
        response = Response(model=self.settings.model)
        feed = response.feed
        shown = None if type(self.renderer) is NullRenderer else self.renderer.handle
        for event in ((notice, *hit.events) if notice is not None else hit.events):
            feed(event)
            if shown is not None:
                shown(event)
        self._committed = True
        try:
            response.provenance = provenance(self._tape, self.settings.model, origin, response, self._tape_key)
            self.renderer.finish(response)
        finally:
            if self.request.history:
                # Only the answer to this exact request enters the memory: never messages the
                # entry carries (a planted entry could hold a system message).
                conversation = self.chat.conversation
                before = len(conversation)
                conversation.extend(self.request.context)
                conversation.add_user(self.request.content)
                conversation.add_assistant(response, calls=[])
                conversation.place(before, self.request.cell, self.request.cell_label,
                                   join=self.request.cell_follow_up)
            self.session.ledger.add("replayed", Usage.not_reported())
            if not self.request.silent:
                self.chat.last = response
            if origin == "cache" and self._tape is not None:  # the recording misses no turn; it
                # keeps what was shown (the cache's notice too), so a replay shows the same
                self._tape.record(self, self._tape_key, response, list(response.events), hit.conversation)
        return response


def _has_media(content: Any) -> bool:
    return isinstance(content, list) and any(p.get("type") in ("image_url", "video_url") for p in content)


# -- the drivers ------------------------------------------------------------------------------

def run_turn(session: Session, request: TurnRequest, renderer: Renderer) -> Response:
    """Run a turn synchronously, streaming its events into ``renderer``."""
    from .ledger import WAIT

    turn = Turn(session, request, renderer)
    done = turn.open()
    waited = time.monotonic() + request.settings.timeout_read
    while done is WAIT:  # the turns in flight hold the budget this one needs: wait for them
        time.sleep(0.02)
        done = turn.admit(give_up=time.monotonic() > waited)
    if done is not None:
        return done
    client = session.client(request.settings)
    interrupted = False
    try:
        with busy_while_kimi_runs():  # the status bar says busy while the turn runs
            more = True
            while more:
                stream = client.stream_chat(turn.messages(), tools=turn.tools(),
                                            response_format=request.response_format, **turn.wire())
                handle = turn.begin(stream.response)
                try:
                    for event in stream:
                        handle(event)
                finally:
                    stream.close()  # closes the HTTP response now, not at garbage collection
                more = turn.step_done(stream.response)
    except KeyboardInterrupt:
        interrupted = True
        turn.interrupted()
    except Exception as error:  # a bug of ours mid-turn: the turn fails, the kernel lives
        turn.failed(error)
    finally:
        response = turn.close()
        if turn._cache is not None:  # a cell ends with its entry on disk (async rows do not wait)
            turn._cache.flush()
    if interrupted:
        raise KeyboardInterrupt
    return response


async def arun_turn(session: Session, request: TurnRequest, renderer: Renderer) -> Response:
    """The async driver of the same `Turn` (a pooled AsyncKimiClient; cancellation-safe)."""
    import asyncio

    from .ledger import WAIT

    turn = Turn(session, request, renderer)
    client = session.aclient(request.settings)
    if turn.wants_server_count():  # the guard's server count, awaited here: no blocking call on the loop
        with contextlib.suppress(Exception):
            turn.server_count = await client.estimate_tokens([turn.user])
    if turn.wants_balance():
        with contextlib.suppress(Exception):
            turn.balance_body = await client.balance()
    done = turn.open()
    waited = time.monotonic() + request.settings.timeout_read
    while done is WAIT:  # the turns in flight hold the budget this one needs: wait for them
        await asyncio.sleep(0.02)
        done = turn.admit(give_up=time.monotonic() > waited)
    if done is not None:
        return done
    try:
        more = True
        while more:
            stream = client.stream_chat(turn.messages(), tools=turn.tools(),
                                        response_format=request.response_format, **turn.wire())
            handle = turn.begin(stream.response)
            try:
                async for event in stream:
                    handle(event)
            finally:
                await stream.aclose()
            more = turn.step_done(stream.response)
    except (asyncio.CancelledError, KeyboardInterrupt):
        turn.interrupted()
        raise
    except Exception as error:
        turn.failed(error)
    finally:
        response = turn.close()
    return response
