"""The batch engine: rows through Moonshot's Batch API (the provider's cluster does the work).

``map(..., engine="batch")`` builds each row's request exactly as a live turn would (the
Turn's message building and cache key, the client's request body with ``stream: false``),
answers rows already in the response cache from it, and sends the rest as JSONL: one line
per row, ``custom_id = "row-<position>"``, one model per file, split past 100 MB or
``MAX_REQUESTS`` lines. It uploads each file with ``purpose="batch"``, creates a batch
with the completion window, records the batch ids and row keys in the run's state file,
then polls (``request_counts`` drive the progress view) until every batch is
``completed``, ``failed``, ``expired`` or ``cancelled``.

Collecting: the output file's lines are decoded by the client's own non-streamed answer
decoder into the turn events the cache stores, so each answer is written to the response
cache (a later ``map()``, live or batch, replays it and bills nothing) and added to the
session's usage ledger once. Error-file lines and rows missing from a damaged output file
become that row's error; they are never re-sent automatically (a row in a damaged output
file was already billed). ``resume()`` does the collecting after a kernel restart from the
state file; ``cancel()`` cancels the run's batches on the provider.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterable, Iterator
from typing import IO, Any

from ..errors import KimiError
from ..events import Event, Usage, format_cost
from ..response import Response
from .data import RowResults, RowsError, RunSummary, assemble, row_source
from .progress import choose_progress
from .state import list_runs_on_disk, load_run, new_run_id, runs_dir, save_run
from .turns import cache_key_for

__all__ = ["run_batch", "resume", "cancel", "list_runs", "BATCH_PROVIDERS", "MAX_REQUESTS", "MAX_FILE_BYTES"]

BATCH_PROVIDERS = ("moonshot", "moonshot-intl")
MAX_FILE_BYTES = 100 * 1024 * 1024 - 64 * 1024  # Moonshot's 100 MB a file, with room to spare
MAX_REQUESTS = 50_000  # lines per batch file (split past this)
TERMINAL = ("completed", "failed", "expired", "cancelled")


def _settings_for(**options: Any) -> Any:
    from ..session import get_session

    return get_session().settings(**options)


# -- submit ------------------------------------------------------------------------------
def run_batch(plan: Any, *, into: str | None, use_cache: bool, progress: Any, completion_window: str,
              wait: bool, poll_interval: float | None, budget: float | None = None) -> Any:
    """Submit ``plan`` as batches, then (``wait``) poll and collect them."""
    try:
        with _Spool() as spool:  # closed after the upload; here for every way out before it
            return _run_batch(plan, spool, into=into, use_cache=use_cache, progress=progress,
                              completion_window=completion_window, wait=wait, poll_interval=poll_interval,
                              budget=budget)
    except OSError as error:  # a full or read-only disk under the temporary files, the state file...
        raise RowsError(f"The batch engine could not write or read a local file ({error}). Free some disk "
                        "space or check the folder's permissions; kimi_jupyter.batches() lists the runs "
                        "already submitted.") from None


def _run_batch(plan: Any, spool: _Spool, *, into: str | None, use_cache: bool, progress: Any,
               completion_window: str, wait: bool, poll_interval: float | None, budget: float | None = None) -> Any:
    from ..cache import ResponseCache
    from ..client.request import build_payload
    from ..conversation import estimate_message_tokens
    from ..ledger import worst_answer
    from ..session import get_session

    settings = plan.settings
    if settings.provider not in BATCH_PROVIDERS:
        raise RowsError(f"engine='batch' needs Moonshot's Batch API (provider moonshot or moonshot-intl); "
                        f"provider {settings.provider!r} has none. Use engine='live'. Nothing was sent.")
    settings.require_key()
    _check_window(completion_window)
    from ..client.egress import seal
    from ..secrets import secrets_of

    secrets = secrets_of(settings)
    cache = ResponseCache(settings.cache_dir)
    source = plan.source
    run_id = new_run_id()
    keys: list[str | None] = [None] * source.count
    errors: dict[str, str] = {}  # ``spool``: the JSONL, in files on disk (memory does not grow with the rows)
    cached = 0
    tokens = 0
    answers = 0  # the worst case: every row's answer as long as max_tokens (or the window) allows
    for pos, fields in enumerate(source.fields(plan.template.row_names)):
        try:
            key, (_session, request, messages) = cache_key_for(plan.template.text, plan.template.namespace(fields),
                                                               plan.row_options)
        except (KimiError, ValueError) as error:
            errors[str(pos)] = str(error)
            continue
        keys[pos] = key
        if use_cache and cache.load(key) is not None:
            cached += 1
            continue
        body, _ = build_payload(request.settings, messages, stream=False, response_format=request.response_format)
        row_tokens = sum(estimate_message_tokens(m) for m in messages)
        tokens += row_tokens
        answers += worst_answer(request.settings.max_tokens, request.settings.context_window, row_tokens)
        spool.add(pos, seal(json.dumps({"custom_id": f"row-{pos}", "method": "POST", "url": "/v1/chat/completions",
                                        "body": body}, ensure_ascii=False).encode("utf-8"), secrets))  # one egress
    price = settings.price()
    cost = price.cost(tokens, 0) if price else None
    refusal = _over_budget(settings, get_session().budget, budget, price, tokens, answers, spool.rows)
    if refusal:
        spool.close()
        raise RowsError(refusal)
    priced = f", about {format_cost(cost, price.currency if price else None)} before the answers" if cost else ""
    say = _say if progress not in (False, None, "none") else (lambda text: None)
    say(f"Pre-flight: {source.count:,} rows, {spool.rows:,} to submit ({cached:,} from the cache, "
         f"{len(errors):,} not buildable), about {tokens:,} prompt tokens{priced}.")
    run: dict[str, Any] = {
        "run_id": run_id, "engine": "batch", "created": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "provider": settings.provider, "model": settings.model, "template": plan.template.text,
        "rows": source.count, "schema": plan.schema.json_schema if plan.schema else None, "into": into,
        "keys": keys, "errors": errors, "batches": [], "collected": False, "window": completion_window,
        "prompt_tokens": tokens,  # the pre-flight estimate of the rows submitted (progress shows its share)
    }
    directory = runs_dir(settings.cache_dir)
    save_run(directory, run)
    if spool.rows:
        from .batch_api import BatchApi

        with spool, BatchApi(settings) as api:
            for file, rows in spool.files():
                try:
                    file_id = api.upload(file, f"{run_id}-{len(run['batches']) + 1}.jsonl")
                    created = api.create(file_id, completion_window, {"kimi_jupyter_run": run_id})
                except KimiError as error:
                    made = len(run["batches"])
                    later = (f" The {made} batch(es) created before it keep running: kimi_jupyter.resume({run_id!r}) "
                             "collects them." if made else " Nothing was submitted.")
                    raise RowsError(f"The batch could not be submitted: {error}{later}") from None
                run["batches"].append({"id": created["id"], "input_file_id": file_id, "rows": rows,
                                       "status": created.get("status", "validating"),
                                       "request_counts": created.get("request_counts")})
                save_run(directory, run)  # after each batch: a restart mid-submission loses none
        say(f"Submitted {spool.rows:,} rows in {len(run['batches'])} batch(es) as run {run_id}. After a kernel "
             f"restart, kimi_jupyter.resume({run_id!r}) collects them.")
    else:
        spool.close()
    if not wait:
        return run_id
    return _finish(run, directory, progress, poll_interval, data=None, source=source, plan_fields=plan.fields,
                   into=into, options={k: v for k, v in plan.options.items() if k != "response_format"})


def _over_budget(settings: Any, ledger: Any, budget: float | None, price: Any, tokens: int, answers: int,
                 rows: int) -> str | None:
    """Why the batch's worst case (every prompt, every answer at its longest) would pass the run's
    budget (``budget=``), the session's money budget or its token budget; None when it fits."""
    from ..ledger import no_price_refusal

    if not rows:
        return None
    if (budget is not None or settings.budget is not None) and price is None:
        return no_price_refusal(settings.model, settings.provider)
    currency = price.currency if price else None
    hint = ("" if settings.max_tokens else " Set max_tokens= to bound the answers,") + " raise the budget, or send fewer rows."
    worst = price.cost(tokens, answers) if price else None
    said = (f"Refused: the {rows:,} requests are about {tokens:,} prompt tokens and at most {answers:,} answer tokens"
            f"{f' ({format_cost(worst, currency)})' if worst is not None else ''}, which could pass ")
    if budget is not None and worst is not None and worst > budget:
        return said + f"the run budget of {format_cost(budget, currency)}.{hint} Nothing was sent."
    if settings.budget is not None and worst is not None and ledger.spent + ledger.in_flight + worst > settings.budget:
        return (said + f"the session budget of {format_cost(settings.budget, currency)} "
                f"({format_cost(ledger.spent, currency)} spent).{hint} Nothing was sent.")
    if settings.budget_tokens is not None and (ledger.spent_tokens + ledger.in_flight_tokens + tokens + answers
                                               > settings.budget_tokens):
        return said + f"the token budget of {settings.budget_tokens:,} (Kimi.budget_tokens).{hint} Nothing was sent."
    return None


def _check_window(window: str) -> None:
    import re

    found = re.fullmatch(r"(\d+)([hd])", str(window))
    hours = int(found.group(1)) * (24 if found.group(2) == "d" else 1) if found else 0
    if not 12 <= hours <= 168:
        raise RowsError(f"completion_window={window!r}: use hours or days from '12h' to '7d', e.g. '24h'. "
                        "Nothing was sent.")


class _Spool:
    """The batch input as JSONL files on disk, one per batch: a new file starts past
    `MAX_FILE_BYTES` or `MAX_REQUESTS` lines. Each file remembers the rows it holds."""

    def __init__(self) -> None:
        self._files: list[tuple[IO[bytes], list[int]]] = []
        self._size = 0
        self.rows = 0

    def add(self, pos: int, line: bytes) -> None:
        if not self._files or (self._files[-1][1] and (self._size + len(line) + 1 > MAX_FILE_BYTES
                                                       or len(self._files[-1][1]) >= MAX_REQUESTS)):
            spooled = tempfile.TemporaryFile(prefix="kimi-batch-", suffix=".jsonl")  # noqa: SIM115 (closed by close())
            self._files.append((spooled, []))
            self._size = 0
        file, rows = self._files[-1]
        file.write(line + b"\n")
        rows.append(pos)
        self._size += len(line) + 1
        self.rows += 1

    def files(self) -> Iterable[tuple[IO[bytes], list[int]]]:
        """Each file, rewound, with the rows it holds (in order)."""
        for file, rows in self._files:
            file.flush()
            file.seek(0)
            yield file, rows

    def close(self) -> None:
        for file, _rows in self._files:
            file.close()
        self._files.clear()

    def __enter__(self) -> _Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _say(text: str) -> None:
    print(text)


# -- poll and collect ----------------------------------------------------------------------
def _finish(run: dict[str, Any], directory: Any, progress: Any, poll_interval: float | None, *, data: Any,
            source: Any = None, plan_fields: list[str] | None = None, into: str | None = None,
            options: dict[str, Any] | None = None) -> Any:
    options = dict(options or {})
    settings = _settings_for(**options)
    summary = RunSummary(engine="batch", rows=int(run["rows"]), run_id=run["run_id"])
    price = settings.price()
    summary.currency = price.currency if price else None
    if not run["collected"] and run["batches"]:
        from .batch_api import BatchApi

        view = choose_progress(progress, f"kimi batch {run['run_id']}")
        start = time.monotonic()
        with BatchApi(settings) as api:
            try:
                _poll(api, run, directory, view, summary, start, poll_interval)
            except KeyboardInterrupt:
                summary.stopped = (f"stopped waiting; the batches go on at the provider. "
                                   f"kimi_jupyter.resume({run['run_id']!r}) collects them later")
                view.close(summary)
                return _assemble(run, data, source, plan_fields, into, summary, settings)
            _collect(api, run, directory, settings)
        result = _assemble(run, data, source, plan_fields, into, summary, settings)
        summary.seconds = time.monotonic() - start
        view.close(summary)
        return result
    return _assemble(run, data, source, plan_fields, into, summary, settings)


def _poll(api: Any, run: dict[str, Any], directory: Any, view: Any, summary: RunSummary, start: float,
          poll_interval: float | None) -> None:
    delay, cap = 0.05, poll_interval if poll_interval is not None else 30.0
    failures = 0
    while True:
        done = failed = 0
        for batch in run["batches"]:
            if batch["status"] not in TERMINAL:
                try:
                    info = api.retrieve(batch["id"])
                    failures = 0
                except KimiError:
                    failures += 1
                    if failures > 10:
                        raise
                    continue
                for name in ("status", "request_counts", "output_file_id", "error_file_id", "errors"):
                    batch[name] = info.get(name)
            counts = batch.get("request_counts") or {}
            done += int(counts.get("completed") or 0)
            failed += int(counts.get("failed") or 0)
        save_run(directory, run)
        summary.done, summary.failed = done, failed
        _running_tokens(run, summary)
        summary.seconds = time.monotonic() - start
        view.update(summary)
        if all(b["status"] in TERMINAL for b in run["batches"]):
            return
        time.sleep(delay)
        delay = min(cap, delay * 1.5)


def _running_tokens(run: dict[str, Any], summary: RunSummary) -> None:
    """Tokens while the batches run: a batch object reports finished rows, not their tokens,
    so progress shows the pre-flight estimate's share of the rows done (marked as estimated);
    the exact counts come with the answers when they are collected."""
    submitted = sum(len(batch.get("rows") or ()) for batch in run["batches"])
    estimate = run.get("prompt_tokens")
    if not submitted or not isinstance(estimate, int):
        return
    summary.prompt_tokens = estimate * min(summary.done, submitted) // submitted
    summary.tokens_estimated = True


def _collect(api: Any, run: dict[str, Any], directory: Any, settings: Any) -> None:
    from ..cache import ResponseCache
    from ..client.chunks import TurnState
    from ..session import get_session

    cache = ResponseCache(settings.cache_dir)
    ledger = get_session().ledger
    errors: dict[str, str] = run["errors"]
    keys: list[str | None] = run["keys"]
    for batch in run["batches"]:
        if batch.get("collected"):
            continue
        expected = {f"row-{pos}": pos for pos in batch["rows"]}
        seen: set[int] = set()
        damaged = 0
        if batch.get("output_file_id"):
            for line in _lines(api, batch["output_file_id"]):
                item = _parse(line)
                pos = expected.get(item.get("custom_id")) if item else None
                if pos is None or pos in seen:
                    damaged += item is None
                    continue
                response = (item.get("response") or {}) if isinstance(item.get("response"), dict) else {}
                body = response.get("body")
                if response.get("status_code") != 200 or not isinstance(body, dict):
                    continue  # listed again in the error file
                seen.add(pos)
                state = TurnState(settings.price())
                events: list[Event] = [*state.handle_message(body), *state.finish()]
                reply = Response().feed_all(events)
                if reply.error is None and keys[pos] is not None:
                    cache.store(str(keys[pos]), events, [])
                ledger.add("rows-batch", reply.usage if reply.usage.reported else Usage.not_reported())
                if reply.error is not None:
                    errors[str(pos)] = reply.error
        if batch.get("error_file_id"):
            for line in _lines(api, batch["error_file_id"]):
                item = _parse(line)
                pos = expected.get(item.get("custom_id")) if item else None
                if pos is None or pos in seen:
                    continue
                seen.add(pos)
                errors[str(pos)] = _error_text(item, batch["status"])
        for pos in batch["rows"]:
            if pos not in seen and str(pos) not in errors:
                if damaged:
                    errors[str(pos)] = ("the batch output file was damaged and this row's answer could not be "
                                        "read (it may have been billed); run map() again to send only such rows")
                else:
                    errors[str(pos)] = _status_error(batch)
        cache.flush()  # the entries are on disk before the run state says "collected"
        problem = cache.writer.take_problem()
        if problem:  # not marked collected: a later resume() reads the output file again
            raise OSError(problem)
        batch["collected"] = True
        save_run(directory, run)
    run["collected"] = True
    save_run(directory, run)


def _lines(api: Any, file_id: str) -> Iterator[str]:
    """The non-blank lines of a provider's JSONL file, decoded one at a time: the file is
    downloaded to a temporary file first, so memory holds one line, not the file."""
    with tempfile.TemporaryFile(prefix="kimi-batch-", suffix=".jsonl") as file:
        api.download(file_id, file)
        file.seek(0)
        for raw in file:
            line = raw.decode("utf-8", "replace")
            if line.strip():
                yield line


def _parse(line: str) -> dict[str, Any] | None:
    try:
        item = json.loads(line)
    except ValueError:
        return None
    return item if isinstance(item, dict) else None


def _error_text(item: dict[str, Any], status: str) -> str:
    error = item.get("error") if isinstance(item.get("error"), dict) else {}
    code = str(error.get("code") or "")
    message = str(error.get("message") or "")[:300]
    if code == "batch_expired":
        return "the batch expired before this row ran (not billed); run map() again to send it"
    if code == "batch_cancelled":
        return "the batch was cancelled before this row ran (not billed)"
    response = item.get("response") if isinstance(item.get("response"), dict) else {}
    if response.get("status_code"):
        from ..errors import error_from_response
        from .live import row_error

        error = error_from_response(int(response["status_code"]), json.dumps(response.get("body")), None)
        return row_error(type(error).__name__, str(error))
    return f"batch error {code}: {message}".strip()


def _status_error(batch: dict[str, Any]) -> str:
    status = batch.get("status")
    if status == "failed":
        details = ((batch.get("errors") or {}).get("data") or [{}]) if isinstance(batch.get("errors"), dict) else [{}]
        first = details[0] if details and isinstance(details[0], dict) else {}
        return (f"the batch {batch['id']} failed validation ({str(first.get('message') or 'no details')[:200]}); "
                "nothing in it was billed")
    if status == "expired":
        return "the batch expired before this row ran (not billed); run map() again to send it"
    if status == "cancelled":
        return "the batch was cancelled before this row ran (not billed)"
    return f"no answer for this row in batch {batch['id']} ({status})"


def _assemble(run: dict[str, Any], data: Any, source: Any, fields: list[str] | None, into: str | None,
              summary: RunSummary, settings: Any) -> Any:
    from ..cache import ResponseCache
    from .schema import RowSchema

    cache = ResponseCache(settings.cache_dir)
    schema = RowSchema(run["schema"]) if run.get("schema") else None
    n = int(run["rows"])
    answers: list[Any] = [None] * n
    errors: list[str | None] = [None] * n
    summary.done = summary.failed = summary.not_run = summary.cached = 0
    summary.prompt_tokens = summary.completion_tokens = 0
    summary.tokens_estimated = False
    summary.cost = 0.0
    pending = not run["collected"] and bool(run["batches"])
    for pos, key in enumerate(run["keys"]):
        problem = run["errors"].get(str(pos))
        hit = cache.load(key) if key and problem is None else None
        if hit is not None:
            reply = Response().feed_all(hit.events)
            if schema is not None:
                answers[pos], problem = schema.parse(reply.text)
            else:
                answers[pos] = reply.text
            if reply.usage.reported:
                summary.prompt_tokens += reply.usage.prompt or 0
                summary.completion_tokens += reply.usage.completion or 0
                summary.cost += reply.usage.cost or 0.0
        elif problem is None:
            problem = (f"not collected yet: kimi_jupyter.resume({run['run_id']!r}) collects it" if pending
                       else "no answer")
        errors[pos] = problem
        if problem is None:
            summary.done += 1
        elif problem.startswith("not collected"):
            summary.not_run += 1
        else:
            summary.failed += 1
    if source is None and data is not None:
        source = row_source(data)
        if source.count != n:
            raise RowsError(f"resume(): the data has {source.count:,} rows but run {run['run_id']} had {n:,}; "
                            "pass the same data, or no data for a plain list.")
    if source is None:
        return RowResults(answers, errors, summary)
    fields = fields or (schema.fields if schema else None)
    return assemble(source, answers, errors, summary, fields, into if into is not None else run.get("into"))


# -- public helpers ---------------------------------------------------------------------------
def list_runs(refresh: bool = False, **options: Any) -> list[dict[str, Any]]:
    """The runs in the state directory, newest first: id, engine, rows, status, batches.

    ``refresh`` asks the provider for the status of unfinished batches; ``options`` are
    settings (e.g. ``cache_dir``: the state files live next to the cache)."""
    settings = _settings_for(**options)
    directory = runs_dir(settings.cache_dir)
    out = []
    for run in list_runs_on_disk(directory):
        if refresh and not run["collected"] and run["batches"]:
            from .batch_api import BatchApi

            with BatchApi(settings) as api:
                for batch in run["batches"]:
                    if batch.get("status") not in TERMINAL:
                        try:
                            batch.update({k: v for k, v in api.retrieve(batch["id"]).items()
                                          if k in ("status", "request_counts", "output_file_id", "error_file_id")})
                        except KimiError:
                            pass
            save_run(directory, run)
        statuses = sorted({str(b.get("status")) for b in run["batches"]})
        out.append({"run_id": run["run_id"], "engine": run.get("engine"), "created": run.get("created"),
                    "model": run.get("model"), "rows": run.get("rows"),
                    "status": "collected" if run.get("collected") else ("/".join(statuses) or "nothing to submit"),
                    "batches": [b["id"] for b in run["batches"]]})
    return out


def _load(run_id: str | None, options: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    settings = _settings_for(**options)
    directory = runs_dir(settings.cache_dir)
    if run_id is None:
        runs = list_runs_on_disk(directory)
        if not runs:
            raise RowsError(f"No batch runs are recorded in {directory}. Start one with "
                            "kimi_jupyter.map(..., engine='batch').")
        return runs[0], directory
    run = load_run(directory, run_id)
    if run is None:
        if isinstance(run_id, str) and (directory / f"{run_id}.json").exists():
            raise RowsError(f"The state file of run {run_id!r} in {directory} is damaged or was not written by "
                            "kimi-jupyter; it was not used. kimi_jupyter.batches() lists the readable runs.")
        raise RowsError(f"No run {run_id!r} in {directory}: kimi_jupyter.batches() lists the runs.")
    return run, directory


def resume(run_id: str | None = None, data: Any = None, *, progress: Any = "auto",
           poll_interval: float | None = None, into: str | None = None, **options: Any) -> Any:
    """Wait for and collect a batch run (the newest when ``run_id`` is None).

    Works after a kernel restart: the state file has the batch ids and row keys. With
    ``data`` (the same frame), the result is aligned with it; otherwise a list."""
    run, directory = _load(run_id, options)
    return _finish(run, directory, progress, poll_interval, data=data, into=into, options=options)


def cancel(run_id: str | None = None, **options: Any) -> list[dict[str, Any]]:
    """Cancel the run's unfinished batches; finished rows can still be collected with resume()."""
    from .batch_api import BatchApi

    run, directory = _load(run_id, options)
    settings = _settings_for(**options)
    out = []
    with BatchApi(settings) as api:
        for batch in run["batches"]:
            if batch.get("status") not in TERMINAL:
                info = api.cancel(batch["id"])
                batch["status"] = info.get("status", "cancelling")
            out.append({"id": batch["id"], "status": batch.get("status")})
    save_run(directory, run)
    return out

