"""`ask()` and `aask()`: the Python face of the same engine the magics use.

``ask("What is wrong with this chart?", fig)`` sends the text and the figure as one
multimodal message and returns a `Response`. Attachments are converted exactly as ``{name}``
references in a ``%%kimi`` cell are (DataFrames summarised, figures/images as image parts,
video paths as video parts). By default each call is independent; ``history=True`` continues
the kernel's ``%%kimi`` conversation instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import KimiError
from .events import Failed
from .response import Response
from .session import get_session
from .turn import TurnRequest, arun_turn, execute_turn, flatten

__all__ = ["ask", "aask", "build_user_content"]

# Options that belong to the call rather than to Settings.
_CALL_OPTIONS = ("history", "namespace", "display", "tools", "response_format", "source", "agent", "yes", "web",
                 "use_cache", "prefill")  # prefill: platform hook (partial mode)


def build_user_content(prompt: str, attachments: tuple[Any, ...], namespace: Mapping[str, Any] | None,
                       frame_budget: int, image_max_size: tuple[int, int], media: Any = None) -> list[dict[str, Any]]:
    """Content parts for ``prompt`` (``{name}`` interpolated when a namespace is given)."""
    from .context import build_content

    names: dict[str, Any] = dict(namespace or {})
    template = prompt if namespace is not None else prompt.replace("{", "{{").replace("}", "}}")
    for number, obj in enumerate(attachments, 1):
        key = f"attachment_{number}"
        names[key] = obj
        template += f"\n{{{key}}}"
    return build_content(template, names, frame_budget=frame_budget, image_max_size=image_max_size,
                         media=media)  # platform hook: Files API media and documents


def _prepare(prompt: str, attachments: tuple[Any, ...], options: dict[str, Any]) -> tuple[Any, TurnRequest | None, Response | None]:
    session = get_session()
    call = {k: options.pop(k) for k in _CALL_OPTIONS if k in options}
    try:
        settings = session.settings(**options)
        web_notices: list[Any] = []
        if call.get("agent") and call.get("web"):  # platform hook: thinking off while $web_search is offered
            from .web import web_settings

            settings, web_notices = web_settings(settings)
        _check_display(call.get("display"))
        from .context.media import request_extras, session_sink  # platform hook
        from .partial import prefill_options

        sink = session_sink(session, settings)
        content = build_user_content(prompt, attachments, call.get("namespace"), settings.frame_budget,
                                     settings.image_max_size, media=sink)
    except (KimiError, ValueError) as error:  # ContextError is a ValueError with a user message
        response = Response()
        response.feed(Failed(str(error), type(error).__name__))
        return session, None, response
    agent = bool(call.get("agent"))
    request = TurnRequest(content=flatten(content), settings=settings, history=bool(call.get("history", False)),
                          tools=call.get("tools"), response_format=call.get("response_format"),
                          source=call.get("source", "ask"),
                          mode={"agent": True, "web": bool(call.get("web"))} if agent else {},
                          cache=call.get("use_cache"),
                          **request_extras(sink, web_notices, prefill_options(None, call.get("prefill"), settings)))
    # platform hook above: documents, notices, partial mode
    if agent:
        request.mode["yes"] = bool(call.get("yes"))
    return session, request, None


def _agent_runner(request: TurnRequest) -> Any:
    """Agent mode from Python: the tools act on the running IPython shell."""
    from IPython import get_ipython

    from .agent.approval import choose_approver
    from .agent.loop import run_agent_turn

    shell = get_ipython()
    if shell is None:
        raise KimiError("agent=True needs IPython or Jupyter: the tools run in the notebook's kernel.")
    approver = choose_approver(shell, auto=bool(request.mode.get("yes") or request.settings.auto_approve))

    def runner(session: Any, req: TurnRequest, renderer: Any) -> Response:
        return run_agent_turn(session, req, renderer, shell=shell, approver=approver, web=bool(req.mode.get("web")))

    return runner


def _check_display(display: Any) -> None:
    from .display.base import MODES

    if display is not None and display not in MODES:
        raise KimiError(f"Unknown display {display!r}: use one of {', '.join(MODES)}. Nothing was sent.")


def _renderer(display: str | None, settings_display: str) -> Any:
    from .display import choose_renderer
    from .display.base import MODES

    return choose_renderer((display if display in MODES else None) or settings_display)


def ask(prompt: str, *attachments: Any, **options: Any) -> Response:
    """Send ``prompt`` (plus attachments) to Kimi, stream it into the output, return a Response.

    Options: any setting (``model``, ``thinking``, ``max_tokens``, ``system``, ``base_url``,
    ``api_key``, ``provider``, ...), plus ``history`` (continue the ``%%kimi`` conversation),
    ``namespace`` (interpolate ``{name}`` from this mapping), ``display`` ("auto", "widget",
    "markdown", "text", "none"), ``agent`` (tool calls in this kernel; ``yes`` to approve
    without asking, ``web`` for web search), ``use_cache`` (replay unchanged requests),
    ``tools`` and ``response_format``. Errors do not raise: the
    returned Response has ``.error`` (use ``.raise_for_error()`` to raise instead).
    """
    display = options.get("display")
    session, request, failed = _prepare(prompt, attachments, options)
    renderer = _renderer(display, request.settings.display if request else "auto")
    if request is None:
        assert failed is not None
        _show_failure(renderer, failed)
        return failed
    try:
        runner = _agent_runner(request) if request.mode.get("agent") else None
    except KimiError as error:
        failed = Response()
        failed.feed(Failed(str(error), type(error).__name__))
        _show_failure(renderer, failed)
        return failed
    return execute_turn(session, request, renderer, runner)


async def aask(prompt: str, *attachments: Any, **options: Any) -> Response:
    """The async twin of `ask` (defaults to no display; pass display="text" to stream)."""
    display = options.setdefault("display", "none")
    session, request, failed = _prepare(prompt, attachments, options)
    if request is None:
        assert failed is not None
        return failed
    return await arun_turn(session, request, _renderer(display, request.settings.display))


def _show_failure(renderer: Any, response: Response) -> None:
    from .display.base import TurnMeta

    renderer.start(TurnMeta(model="", thinking=False))
    for event in response.events:
        renderer.handle(event)
    renderer.finish(response)
