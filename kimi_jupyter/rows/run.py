"""``map()``, ``amap()``, ``batches()``, ``resume()`` and ``cancel()``: the public face of rows.

``map()`` is synchronous, as a notebook cell is: the engine runs on its own event loop in a
worker thread (a Jupyter kernel already runs a loop in the main thread), while the calling
thread shows progress every 0.1 s and turns Stop / Ctrl-C into a clean stop that keeps the
finished rows. ``amap()`` is the same run awaited on the caller's loop.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Mapping
from typing import Any

from .data import RowsError, RowSource, RunSummary, assemble, row_source
from .live import LiveRun
from .progress import ProgressView, choose_progress
from .schema import RowSchema
from .template import RowTemplate

__all__ = ["map", "amap", "batches", "resume", "cancel"]

ENGINES = ("live", "batch")
# Options that belong to the run, not to Settings.
_RUN_OPTIONS = ("schema", "engine", "into", "concurrency", "budget", "use_cache", "progress", "namespace",
                "completion_window", "wait", "poll_interval")


def _rename(name: str) -> Any:
    def rename(function: Any) -> Any:
        function.__name__ = function.__qualname__ = name
        return function

    return rename


def _user_namespace() -> dict[str, Any]:
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return dict(getattr(shell, "user_ns", None) or {})


@_rename("map")
def map_rows(template: str, data: Any, *, schema: Mapping[str, Any] | None = None, engine: str = "live",
             into: str | None = None, concurrency: int | None = None, budget: float | None = None,
             use_cache: bool = True, progress: Any = "auto", namespace: Mapping[str, Any] | None = None,
             completion_window: str = "24h", wait: bool = True, poll_interval: float | None = None,
             **options: Any) -> Any:
    """Run ``template`` once per row of ``data``; results aligned with the input.

    ``template`` uses ``%%kimi``'s ``{name}`` interpolation; names are row fields (columns)
    first, then notebook variables. ``data``: a pandas/polars DataFrame or Series (the result
    is a frame with the same index: an answer column, or one column per ``schema`` field,
    plus an ``error`` column) or any iterable (the result is a list with ``.errors``).
    ``schema``: a JSON schema or ``{field: type}``; answers are parsed into columns.
    ``engine``: ``"live"`` (concurrent requests, ``concurrency`` at most, default the
    ``rows_concurrency`` setting) or ``"batch"`` (Moonshot's Batch API). ``budget``: most
    this run may cost. ``use_cache``: rows answered before are replayed, not re-sent.
    Other options are settings (``model``, ``thinking``, ``max_tokens``, ``system``...).
    Every result has ``.summary`` (pandas: ``.attrs["kimi"]``).
    """
    plan = _plan(template, data, schema, engine, namespace, options)
    if engine == "batch":
        from .batch import run_batch

        return run_batch(plan, into=into, use_cache=use_cache, progress=progress,
                         completion_window=completion_window, wait=wait, poll_interval=poll_interval)
    run = _live_run(plan, concurrency, budget, use_cache)
    view = choose_progress(progress, "kimi rows")
    _drive_in_thread(run, view)
    return assemble(plan.source, run.answers, run.errors, run.summary, plan.fields, into)


async def amap(template: str, data: Any, *, schema: Mapping[str, Any] | None = None, into: str | None = None,
               concurrency: int | None = None, budget: float | None = None, use_cache: bool = True,
               progress: Any = False, namespace: Mapping[str, Any] | None = None, **options: Any) -> Any:
    """The live engine awaited on the caller's event loop (``await kimi_jupyter.rows.amap(...)``)."""
    plan = _plan(template, data, schema, "live", namespace, options)
    run = _live_run(plan, concurrency, budget, use_cache)
    view = choose_progress(progress, "kimi rows")
    task = asyncio.ensure_future(run.run())
    while not task.done():
        await asyncio.wait({task}, timeout=0.1)
        view.update(run.summary)
    task.result()
    view.close(run.summary)
    return assemble(plan.source, run.answers, run.errors, run.summary, plan.fields, into)


class Plan:
    """A checked call: source, template, schema, settings; nothing sent yet."""

    def __init__(self, source: RowSource, template: RowTemplate, schema: RowSchema | None,
                 options: dict[str, Any], settings: Any):
        self.source = source
        self.template = template
        self.schema = schema
        self.options = options
        self.settings = settings

    @property
    def fields(self) -> list[str] | None:
        return self.schema.fields if self.schema else None

    @property
    def row_options(self) -> dict[str, Any]:
        """What each row's turn gets: the run's one resolved `Settings` (resolved once, so
        every row uses the same model and configuration, and a row costs no resolution),
        and the schema's response format."""
        extra = {"response_format": self.options["response_format"]} if "response_format" in self.options else {}
        return {"settings": self.settings, **extra}


def _plan(template: str, data: Any, schema: Mapping[str, Any] | None, engine: str,
          namespace: Mapping[str, Any] | None, options: dict[str, Any]) -> Plan:
    from ..session import get_session

    if engine not in ENGINES:
        raise RowsError(f"Unknown engine {engine!r}: use 'live' or 'batch'.")
    for name in ("history", "display", "agent", "tools", "stream_to"):
        if name in options:
            raise RowsError(f"map() does not take {name}=: each row is an independent, silent turn.")
    source = row_source(data)
    if source.count == 0:
        raise RowsError("The data has no rows: nothing was sent and nothing was billed.")
    row_template = RowTemplate(template, source, _user_namespace() if namespace is None else namespace)
    row_schema = RowSchema(schema) if schema is not None else None
    options = dict(options)
    if row_schema is not None:
        system = options.get("system")
        options["system"] = f"{system}\n\n{row_schema.instruction()}" if system else row_schema.instruction()
    settings = get_session().settings(**{k: v for k, v in options.items() if k != "response_format"})
    if row_schema is not None:  # json_schema where the model supports it, else JSON mode
        options["response_format"] = row_schema.response_format(settings.model_info)
    return Plan(source, row_template, row_schema, options, settings)


def _live_run(plan: Plan, concurrency: int | None, budget: float | None, use_cache: bool) -> LiveRun:
    limit = plan.settings.rows_concurrency if concurrency is None else concurrency
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise RowsError(f"concurrency must be a whole number from 1 up, not {limit!r}.")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, float)) or budget < 0):
        raise RowsError(f"budget must be a number from 0 up (in the provider's currency), not {budget!r}.")
    return LiveRun(plan.source, plan.template, plan.row_options, plan.schema, concurrency=limit, budget=budget,
                   use_cache=use_cache, price=plan.settings.price(), api_base=_api_base(plan.settings))


def _api_base(settings: Any) -> str | None:
    try:
        return str(settings.api_base)
    except Exception:  # an incomplete URL (the Turn says what is missing, per row)
        return None


def _drive_in_thread(run: LiveRun, view: ProgressView) -> None:
    """Run ``run`` on a private loop in a thread; Ctrl-C / Stop stops it and keeps done rows."""
    failure: list[BaseException] = []
    holder: dict[str, Any] = {}

    def target() -> None:
        loop = asyncio.new_event_loop()
        holder["loop"] = loop
        try:
            task = loop.create_task(run.run())
            holder["task"] = task
            loop.run_until_complete(task)
        except BaseException as error:  # reported in the calling thread
            if not isinstance(error, asyncio.CancelledError):
                failure.append(error)
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    thread = threading.Thread(target=target, name="kimi-rows", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            # Without a timeout the join still ends on Ctrl-C (SIGINT) on POSIX; on Windows a
            # blocking join cannot be interrupted, so it wakes once a second there.
            thread.join(view.interval or (1.0 if sys.platform == "win32" else None))
            view.update(run.summary)
    except KeyboardInterrupt:
        run.stop.set()
        loop, task = holder.get("loop"), holder.get("task")
        if loop is not None and task is not None:
            loop.call_soon_threadsafe(task.cancel)
        thread.join(30)
        run.summary.stopped = run.summary.stopped or "stopped by the user; finished rows are kept"
    view.close(run.summary)
    if failure:
        raise failure[0]


def batches(*args: Any, **kwargs: Any) -> Any:
    """The batch runs recorded in the state files, newest first (``refresh=True`` asks the provider)."""
    from .batch import list_runs

    return list_runs(*args, **kwargs)


def resume(*args: Any, **kwargs: Any) -> Any:
    """Collect a batch run's results (after a kernel restart too); see ``rows.batch.resume``."""
    from .batch import resume as resume_run

    return resume_run(*args, **kwargs)


def cancel(*args: Any, **kwargs: Any) -> Any:
    """Cancel a batch run's batches on the provider; see ``rows.batch.cancel``."""
    from .batch import cancel as cancel_run

    return cancel_run(*args, **kwargs)


map = map_rows  # ``kimi_jupyter.map`` is the public name
_ = RunSummary  # the type of every result's ``.summary``
