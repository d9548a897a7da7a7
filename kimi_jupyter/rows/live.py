"""The live engine: rows through the Turn, concurrently, adaptively, within a budget.

Workers pull rows one at a time from the input (so memory follows the rows in flight, not
the run), fill the template, and hand each row to `turns.run_row` (the Turn). What the
engine adds is only what a single turn cannot know:

* bounded, adaptive concurrency (`limiter`), capped by the requests the server's
  ``x-ratelimit-*`` headers say are left; 429s inside a turn (its retries) or a row that
  failed with a rate-limit/overload error halve the concurrency; such a row goes back into
  the queue (a 429 is never billed, so nothing is paid twice) up to ``ROW_ATTEMPTS`` times;
* a per-run budget: a row starts only while the run's cost plus what the rows in flight are
  expected to cost stays under it; the session budget is the Turn's own guard;
* errors that doom every row (wrong key, quota, unknown model, session budget) stop the run
  at once; any other failure is that row's error and the run goes on;
* Stop: the caller sets ``stop`` (or cancels the task); finished rows are kept, rows in
  flight are cancelled by the Turn (connection closed, nothing kept), the rest are "not run".
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..events import Retrying
from .data import RowSource, RunSummary
from .limiter import AdaptiveLimiter
from .schema import RowSchema
from .template import RowTemplate
from .turns import is_replayed, run_row

__all__ = ["LiveRun", "FATAL_KINDS", "ROW_ATTEMPTS", "row_error"]

FATAL_KINDS = {"AuthenticationError", "QuotaExceededError", "MissingKeyError", "ConfigError", "ModelNotFoundError",
               "PermissionDeniedError", "BudgetExceeded"}
THROTTLE_KINDS = {"RateLimitError", "OverloadedError"}
ROW_ATTEMPTS = 6
RETRY_NAME = "_kimi_schema_retry"  # the follow-up text of a schema retry, in the row's namespace
SHARED_ANSWER_CHARS = 64  # answers this short are kept once per distinct text...
SHARED_ANSWERS = 1024  # ...for the first this many distinct ones


@dataclass
class LiveRun:
    """One live run's inputs and its growing results (read by the progress view)."""

    source: RowSource
    template: RowTemplate
    options: dict[str, Any]
    schema: RowSchema | None = None
    concurrency: int = 8
    budget: float | None = None
    use_cache: bool = True
    price: Any = None
    api_base: str | None = None  # whose announced rate limits cap the concurrency
    stop: threading.Event = field(default_factory=threading.Event)
    summary: RunSummary = field(default_factory=RunSummary)
    answers: list[Any] = field(default_factory=list)
    errors: list[str | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = self.source.count
        self.summary.rows = n
        self.answers = [None] * n
        self.errors = [None] * n
        self._same: dict[str, str] = {}  # short answers, one object each (labels repeat)
        self._reserved = 0.0
        self._retry: deque[tuple[int, Mapping[str, Any], int]] = deque()
        if self.price is not None:
            self.summary.currency = self.price.currency

    # -- driving -----------------------------------------------------------------------
    async def run(self) -> RunSummary:
        start = time.monotonic()
        limiter = AdaptiveLimiter(self.concurrency, self._announced_cap())
        rows: Iterator[tuple[int, Mapping[str, Any]]] = enumerate(self.source.fields(self.template.row_names))

        def next_row() -> tuple[int, Mapping[str, Any], int] | None:
            # No await inside: on one event loop, one worker at a time takes a row.
            if self._retry:
                return self._retry.popleft()
            item = next(rows, None)
            return None if item is None else (item[0], item[1], 1)

        async def worker() -> None:
            while not self._should_stop():
                item = next_row()
                if item is None:
                    if limiter.active == 0 and not self._retry:
                        return
                    await asyncio.sleep(0.05)  # a throttled row may come back into the queue
                    continue
                if not limiter.try_acquire():  # the common case costs no await
                    await limiter.acquire()
                try:
                    if self._should_stop():
                        self._retry.appendleft(item)
                        return
                    await self._one(item, limiter)
                finally:
                    limiter.release_now()
                self.summary.seconds = time.monotonic() - start

        tasks = [asyncio.create_task(worker()) for _ in range(max(1, self.concurrency))]
        try:
            await asyncio.gather(*tasks)
        except asyncio.CancelledError:
            self.summary.stopped = self.summary.stopped or "stopped by the user; finished rows are kept"
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            self.summary.seconds = time.monotonic() - start
            self._mark_not_run()
        return self.summary

    def _announced_cap(self) -> Any:
        """The requests the server's x-ratelimit headers say are left (``kimi_jupyter.ratelimit``)."""
        if not self.api_base:
            return None
        from ..ratelimit import rate_limits

        base, wanted = self.api_base, self.concurrency
        seen = [-1, wanted]  # the version of the limits last asked, and their answer

        def cap() -> int:  # asked before every row: answered again only after new headers
            limits = rate_limits()
            if limits.version != seen[0]:
                seen[0] = limits.version
                seen[1] = limits.concurrency(base, wanted)
            return seen[1]

        return cap

    def _should_stop(self) -> bool:
        if self.stop.is_set() and self.summary.stopped is None:
            self.summary.stopped = "stopped by the user; finished rows are kept"
        return self.summary.stopped is not None

    def _mark_not_run(self) -> None:
        reason = self.summary.stopped or "not run"
        for i in range(self.source.count):
            if self.answers[i] is None and self.errors[i] is None:
                self.errors[i] = f"not run: {reason}"
                self.summary.not_run += 1

    # -- one row -------------------------------------------------------------------------
    def _expected_cost(self) -> float:
        s = self.summary
        finished = s.done - s.cached + s.failed
        return s.cost / finished if finished and s.cost else 0.0

    async def _one(self, item: tuple[int, Mapping[str, Any], int], limiter: AdaptiveLimiter) -> None:
        pos, fields, attempt = item
        s = self.summary
        if self.budget is not None and (s.cost >= self.budget
                                        or s.cost + self._reserved + self._expected_cost() > self.budget):
            s.stopped = s.stopped or (f"the run budget of {self.budget:g} {s.currency or ''} is reached; "
                                      "finished rows are kept").replace("  ", " ")
            self._retry.appendleft(item)
            return
        reserved = self._expected_cost() if self.budget is not None else 0.0
        self._reserved += reserved
        try:
            response = await run_row(self.template.text, self.template.namespace(fields), self.options,
                                     self.use_cache)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # our own bug must not lose the other rows
            self.errors[pos] = f"{type(error).__name__}: {error}"
            s.failed += 1
            return
        finally:
            self._reserved -= reserved
        if response.retries:
            retries = [e for e in response.events if isinstance(e, Retrying) and _is_throttle(e.reason)]
            if retries:
                limiter.throttled(max(e.wait for e in retries))
        usage = response.usage
        cached = is_replayed(response)
        if not cached:
            s.requests += 1 + response.retries
            if usage.reported:
                s.prompt_tokens += usage.prompt or 0
                s.completion_tokens += usage.completion or 0
                s.cost += usage.cost or 0.0
        if response.error is not None:
            kind = response.error_kind or ""
            if kind in THROTTLE_KINDS and attempt < ROW_ATTEMPTS:
                limiter.throttled(_wait_of(response.error))
                self._retry.append((pos, fields, attempt + 1))
                return
            self.errors[pos] = row_error(kind, response.error)
            s.failed += 1
            if kind in FATAL_KINDS:
                s.stopped = s.stopped or response.error
            return
        if cached:
            s.cached += 1
        else:
            await limiter.succeeded()
        if self.schema is not None:
            parsed, problem = self.schema.parse(response.text)
            if problem is not None:  # ask once more, with the validation error
                parsed, problem = await self._schema_retry(fields, response.text, problem)
            if problem is not None:
                self.errors[pos] = f"{problem} (after one retry)"
                s.failed += 1
                return
            self.answers[pos] = parsed
        else:
            self.answers[pos] = self._one_of(response.text)
        s.done += 1

    async def _schema_retry(self, fields: Mapping[str, Any], answer: str,
                            problem: str) -> tuple[dict[str, Any] | None, str | None]:
        """The row asked once more with the validation error (the same Turn, through run_row)."""
        assert self.schema is not None
        s = self.summary
        namespace = dict(self.template.namespace(fields))
        namespace[RETRY_NAME] = self.schema.retry_prompt(problem, answer, prompt="")
        try:
            again = await run_row(self.template.text + "{" + RETRY_NAME + "}", namespace, self.options,
                                  self.use_cache)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            return None, f"{problem}; the retry failed: {type(error).__name__}: {error}"
        if not is_replayed(again):
            s.requests += 1 + again.retries
            if again.usage.reported:
                s.prompt_tokens += again.usage.prompt or 0
                s.completion_tokens += again.usage.completion or 0
                s.cost += again.usage.cost or 0.0
        if again.error is not None:
            return None, f"{problem}; the retry failed: {again.error}"
        return self.schema.parse(again.text)

    def _one_of(self, text: str) -> str:
        """``text``, or the equal answer kept before: a classification run's 10,000 answers
        are a handful of labels, held once each instead of once per row."""
        if len(text) > SHARED_ANSWER_CHARS:
            return text
        if len(self._same) < SHARED_ANSWERS:
            return self._same.setdefault(text, text)
        return self._same.get(text, text)


def row_error(kind: str, message: str) -> str:
    """A turn's error as a row's error (the single-turn advice about conversations does not apply)."""
    if kind == "ContextTooLongError":
        return ("This row's prompt is over the model's context window: shorten this row's text (or the "
                "template) and run map() again; the refused request was not billed.")
    return message


def _is_throttle(reason: str) -> bool:
    text = reason.lower()
    return "429" in text or "rate limit" in text or "overloaded" in text or "try again after" in text


def _wait_of(message: str) -> float:
    import re

    found = re.search(r"after (\d+(?:\.\d+)?) seconds", message)
    return float(found.group(1)) if found else 1.0
