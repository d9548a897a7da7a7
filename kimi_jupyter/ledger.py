"""One ledger: what a request may spend, decided the same way for every path that spends.

Every spend path (a turn, each agent step, each live row of ``map()``, ``%kimi fix``, a web
search turn) goes through the `Turn`, and the Turn asks `plan_spend` before it sends. The
answer reserves the request's worst case, the prompt plus ``max_tokens`` of answer at the
model's price, against every limit that applies at once:

* the session's money budget (``Kimi.budget``), minus what is spent and what turns in flight
  hold;
* the session's token budget (``Kimi.budget_tokens``; needs no price);
* a run's own budget (``map(..., budget=)``, a `RunBudget`), minus what the run spent and
  what its rows in flight hold;
* the per-turn limit (``Kimi.max_turn_cost``).

When the worst case does not fit, the request's ``max_tokens`` is lowered to what the
unreserved budget affords and the cell says so; the request is refused only when not even a
short answer (`SHORT_ANSWER` tokens) fits. When it would fit once the turns in flight settle,
the answer is `WAIT` (the drivers wait, then ask again), so a small budget shared by
concurrent turns is used, never passed. A money budget with no known price refuses, naming
``Kimi.prices``. The reservation is settled with the reported usage when the request ends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .events import format_cost

__all__ = ["RunBudget", "Spend", "SHORT_ANSWER", "WAIT", "plan_spend", "no_price_refusal"]

#: The shortest answer worth sending a request for: below this the request is refused.
SHORT_ANSWER = 16
#: Worst-case answer length when neither ``max_tokens`` nor the model's window is known.
DEFAULT_WORST_ANSWER = 32_768


class _Wait:
    def __repr__(self) -> str:
        return "WAIT"


WAIT: Any = _Wait()


@dataclass
class RunBudget:
    """A run's own money limit (``map(budget=)``), held in the session's one ledger.

    ``spent`` is what the run's settled requests cost; ``reserved`` what its requests in
    flight hold. Both change only under the session ledger's lock."""

    limit: float
    spent: float = 0.0
    reserved: float = 0.0


@dataclass(frozen=True)
class Spend:
    """A decision: reserve ``money`` and ``tokens``; send with ``max_tokens`` when not None."""

    money: float = 0.0
    tokens: int = 0
    max_tokens: int | None = None
    notice: str | None = None


def no_price_refusal(model: str, provider: str) -> str:
    return (f"Refused: no price is known for {model} on {provider}, so a money budget cannot be kept. Set "
            "%config Kimi.prices = {'input': .., 'output': .., 'currency': '..'} (per 1M tokens), or use a token "
            "budget (%config Kimi.budget_tokens), which needs no price. Nothing was sent.")


def worst_answer(max_tokens: int | None, context_window: int | None, prompt_tokens: int) -> int:
    """The most tokens the answer can take: ``max_tokens``, else what the window leaves."""
    if max_tokens:
        return int(max_tokens)
    if context_window:
        return max(SHORT_ANSWER, int(context_window) - prompt_tokens)
    return DEFAULT_WORST_ANSWER


def plan_spend(*, prompt_tokens: int, worst: int, price: Any, currency: str | None, model: str, provider: str,
               budget: float | None, spent: float, in_flight: float,
               budget_tokens: int | None, spent_tokens: int, in_flight_tokens: int,
               run: RunBudget | None, max_turn_cost: float | None) -> Spend | str | Any:
    """A `Spend`, a refusal (str), or `WAIT` when it fits once the requests in flight settle.

    Called under the ledger's lock with its current figures."""
    money = budget is not None or run is not None or max_turn_cost is not None
    if money and price is None:
        if budget is None and run is None:
            money = False  # a per-turn limit without a price cannot be checked: as before, not enforced
        else:
            return no_price_refusal(model, provider)
    if budget is not None and money and spent >= budget:
        return (f"Refused: this session has spent {format_cost(spent, currency)} of its "
                f"{format_cost(budget, currency)} budget. Raise %config Kimi.budget to go on.")
    if run is not None and money and run.spent >= run.limit:
        return (f"Refused: this run has spent {format_cost(run.spent, currency)} of its budget of "
                f"{format_cost(run.limit, currency)}.")
    if max_turn_cost is not None and price is not None and price.cost(prompt_tokens, 0) > max_turn_cost:
        return (f"Refused: the prompt alone is about {prompt_tokens:,} tokens "
                f"({format_cost(price.cost(prompt_tokens, 0), currency)}), over the per-turn limit of "
                f"{format_cost(max_turn_cost, currency)} (%config Kimi.max_turn_cost).")
    if budget_tokens is not None and spent_tokens >= budget_tokens:
        return (f"Refused: this session has used {spent_tokens:,} of its {budget_tokens:,} tokens. Raise "
                "%config Kimi.budget_tokens to go on.")
    limits: list[tuple[int, int, str, str]] = []  # (answer tokens affordable now, once settled, what, left)
    if money:
        per_out = price.output / 1_000_000
        prompt_cost = price.cost(prompt_tokens, 0)

        def afford(left: float) -> int:
            if per_out <= 0:
                return worst if left >= prompt_cost else -1
            return math.floor((left - prompt_cost) / per_out) if left >= prompt_cost else -1

        if budget is not None:
            limits.append((afford(budget - spent - in_flight), afford(budget - spent), "the session budget",
                           f"{format_cost(max(0.0, budget - spent), currency)} of "
                           f"{format_cost(budget, currency)} left"))
        if run is not None:
            limits.append((afford(run.limit - run.spent - run.reserved), afford(run.limit - run.spent),
                           "the run budget", f"{format_cost(max(0.0, run.limit - run.spent), currency)} of "
                                             f"{format_cost(run.limit, currency)} left"))
        if max_turn_cost is not None and price is not None:
            limits.append((afford(max_turn_cost), afford(max_turn_cost), "the per-turn limit (Kimi.max_turn_cost)",
                           format_cost(max_turn_cost, currency)))
    if budget_tokens is not None:
        now = budget_tokens - spent_tokens - in_flight_tokens - prompt_tokens
        later = budget_tokens - spent_tokens - prompt_tokens
        limits.append((now, later, "the token budget (Kimi.budget_tokens)",
                       f"{max(0, budget_tokens - spent_tokens):,} of {budget_tokens:,} tokens left"))
    if not limits:
        return Spend()
    allowed, what, left = min((a, w, lf) for a, _, w, lf in limits)
    if allowed < SHORT_ANSWER:
        if all(later >= SHORT_ANSWER for _, later, _, _ in limits):
            return WAIT  # the requests in flight hold it: it fits once they settle
        return (f"Refused: {what} has {left}; this prompt (about {prompt_tokens:,} tokens) and even a short answer "
                f"({SHORT_ANSWER} tokens) would pass it. Raise the budget to go on. Nothing was sent.")
    answer = min(worst, allowed)
    notice = None
    if answer < worst:
        notice = (f"max_tokens lowered to {answer:,} for this request so that {what} ({left}) is not passed; "
                  "the answer may be cut.")
    cost = price.cost(prompt_tokens, answer) if money else 0.0
    return Spend(money=cost, tokens=prompt_tokens + answer, max_tokens=answer if answer < worst else None,
                 notice=notice)
