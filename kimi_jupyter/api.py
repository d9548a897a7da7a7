"""`ask()` and `aask()`: the Python face of the same engine the magics use.

``ask("What is wrong with this chart?", fig)`` sends the text and the figure as one
multimodal message and returns a `Response`. Attachments are converted exactly as ``{name}``
references in a ``%%kimi`` cell are (DataFrames summarised, figures/images as image parts,
video paths as video parts). By default each call is independent; ``history=True`` continues
the kernel's ``%%kimi`` conversation instead. Both drive the one `Turn` (budget reserved
under a lock, pre-flight, cache, interrupts, accounting), ``ask`` synchronously and ``aask``
on the running event loop with a pooled async client.
"""

from __future__ import annotations

from typing import Any

from .context.composer import compose
from .context.media import request_extras, session_sink
from .errors import KimiError
from .events import Failed
from .partial import prefill_options
from .response import Response
from .secrets import secrets_of
from .session import Session, get_session
from .settings import Settings
from .turn import NullRenderer, TurnMeta, TurnRequest, arun_turn, run_turn

__all__ = ["ask", "aask", "build_request", "schema_result", "schema_retry"]

# Options that belong to the call rather than to Settings.
_CALL_OPTIONS = frozenset(("history", "namespace", "display", "tools", "response_format", "source", "agent", "yes", "web",
                 "use_cache", "prefill", "settings", "schema"))  # prefill: partial mode; schema: structured.py


def _prepare(prompt: str, attachments: tuple[Any, ...],
             options: dict[str, Any]) -> tuple[Session, TurnRequest | None, Response | None, Any]:
    session = get_session()
    call = {k: options.pop(k) for k in [k for k in options if k in _CALL_OPTIONS]}
    try:
        settings = call.get("settings")
        if settings is None:
            settings = session.settings(**options)
        elif not isinstance(settings, Settings):
            raise KimiError(f"settings= takes a Settings (from get_session().settings(...)), not "
                            f"{type(settings).__name__}; pass setting options such as model='...' instead.")
        elif options:  # a resolved Settings is the whole configuration of the call
            raise KimiError(f"Pass either settings= or setting options ({', '.join(sorted(options))}), not both.")
        web_notices: list[Any] = []
        if call.get("agent") and call.get("web"):  # thinking off while $web_search is offered
            from .web import web_settings

            settings, web_notices = web_settings(settings)
        _check_display(call.get("display"))
        schema = _schema(call)
        if schema is not None:  # json_schema where the model has it, else JSON mode; validated after
            call["response_format"] = schema.response_format(settings.model_info)
        sink = session_sink(session, settings)  # Files API media and documents
        content = compose(prompt, call.get("namespace"), attachments=attachments,
                          frame_budget=settings.frame_budget, image_max_size=settings.image_max_size,
                          secrets=secrets_of(settings), media=sink,
                          after=[{"type": "text", "text": "\n\n" + schema.instruction()}] if schema else ())
        strategy = None
        if call.get("agent"):
            from IPython import get_ipython

            from .agent.loop import agent_strategy

            strategy = agent_strategy(get_ipython(), auto=bool(call.get("yes") or settings.auto_approve),
                                      web=bool(call.get("web")))
    except (KimiError, ValueError) as error:  # ContextError is a ValueError with a user message
        response = Response()
        response.feed(Failed(str(error), type(error).__name__))
        return session, None, response, None
    mode = {"agent": True, "web": bool(call.get("web")), "yes": bool(call.get("yes"))} if strategy else {}
    request = TurnRequest(content=content, settings=settings, history=bool(call.get("history", False)),
                          tools=call.get("tools"), response_format=call.get("response_format"),
                          source=call.get("source", "ask"), mode=mode, cache=call.get("use_cache"),
                          strategy=strategy,
                          # documents (system messages), notices and partial mode's prefill
                          **request_extras(sink, web_notices, prefill_options(None, call.get("prefill"), settings)))
    if schema is not None:
        request.mode = {**request.mode, "schema": schema.json_schema}  # part of the cache key via mode
    return session, request, None, schema


def _schema(call: dict[str, Any]) -> Any:
    if call.get("schema") is None:
        return None
    from .structured import Schema

    return Schema(call["schema"])


def build_request(prompt: str, *attachments: Any, **options: Any) -> TurnRequest:
    """The `TurnRequest` that ``ask(prompt, *attachments, **options)`` would run, without
    running it (the rows engine builds batch lines from it); raises the user's error."""
    _session, request, failed, _schema_of = _prepare(prompt, attachments, dict(options))
    if request is None:
        assert failed is not None and failed.error is not None
        raise KimiError(failed.error)
    return request


def _check_display(display: Any) -> None:
    if display is None or display == "none":
        return
    from .display import MODES

    if display is not None and display not in MODES:
        raise KimiError(f"Unknown display {display!r}: use one of {', '.join(MODES)}. Nothing was sent.")


def _renderer(display: str | None, settings_display: str) -> Any:
    if display == "none":  # aask's default, and every row of map()
        return NullRenderer()
    from .display import MODES, choose_renderer

    return choose_renderer((display if display in MODES else None) or settings_display)


def ask(prompt: str, *attachments: Any, **options: Any) -> Response:
    """Send ``prompt`` (plus attachments) to Kimi, stream it into the output, return a Response.

    Options: any setting (``model``, ``thinking``, ``max_tokens``, ``system``, ``base_url``,
    ``api_key``, ``provider``, ...) or ``settings`` (a resolved `Settings`, e.g. from
    ``get_session().settings(...)``, used as it is), plus ``history`` (continue the ``%%kimi`` conversation),
    ``namespace`` (interpolate ``{name}`` from this mapping), ``display`` ("auto", "widget",
    "markdown", "text", "none"), ``agent`` (tool calls in this kernel; ``yes`` to approve
    without asking, ``web`` for web search), ``use_cache`` (replay unchanged requests),
    ``tools`` and ``response_format``, ``schema`` (a JSON schema or ``{field: type}``: the answer
    is asked as JSON matching it, checked, and asked for once more with the validation error
    when it does not match; a notice marks what still fails). Errors do not raise: the
    returned Response has ``.error`` (use ``.raise_for_error()`` to raise instead).
    """
    display = options.get("display")
    session, request, failed, schema = _prepare(prompt, attachments, options)
    renderer = _renderer(display, request.settings.display if request else "auto")
    if request is None:
        assert failed is not None
        _show_failure(renderer, failed)
        return failed
    response = run_turn(session, request, renderer)
    if schema is None:
        return response
    retry = schema_retry(schema, request, response)
    if retry is None:
        return response
    return schema_result(schema, run_turn(session, retry, _renderer(display, request.settings.display)))


async def aask(prompt: str, *attachments: Any, **options: Any) -> Response:
    """The async twin of `ask` (defaults to no display; pass display="text" to stream)."""
    display = options.setdefault("display", "none")
    session, request, failed, schema = _prepare(prompt, attachments, options)
    if request is None:
        assert failed is not None
        return failed
    response = await arun_turn(session, request, _renderer(display, request.settings.display))
    if schema is None:
        return response
    retry = schema_retry(schema, request, response)
    if retry is None:
        return response
    return schema_result(schema, await arun_turn(session, retry, _renderer(display, request.settings.display)))


def schema_retry(schema: Any, request: TurnRequest, response: Response) -> TurnRequest | None:
    """The one follow-up request when ``response`` does not match ``schema`` (None: it does,
    or the turn failed). With history the follow-up continues the conversation; without, it
    repeats the prompt and the failed answer."""
    import dataclasses

    if response.error is not None:
        return None
    _value, problem = schema.check(response.text)
    if problem is None:
        return None
    content = schema.retry_prompt(problem, response.text, None if request.history else request.content)
    # A plain follow-up: no tools run again, nothing replayed from the cache.
    return dataclasses.replace(request, content=content, context=[], wire={}, cache=False, strategy=None)


def schema_result(schema: Any, response: Response) -> Response:
    """``response`` of the retry, with a notice when it still does not match the schema."""
    from .events import Notice

    if response.error is None:
        _value, problem = schema.check(response.text)
        if problem is not None:
            response.feed(Notice(f"The answer does not match the schema after one retry: {problem}", "warning"))
    return response


def _show_failure(renderer: Any, response: Response) -> None:
    renderer.start(TurnMeta(model="", thinking=False))
    for event in response.events:
        renderer.handle(event)
    renderer.finish(response)
