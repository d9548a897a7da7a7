"""The one place a row meets the Turn.

Every live row is one ``aask(prompt, namespace=row, display="none", history=False,
use_cache=..., source="rows")`` call, so a row gets what a single turn gets: the same
request building, retry policy, budget guard, cache, interrupt handling and usage ledger.
`run_row` is the only function of the rows package that starts a request; the engines
never touch the HTTP client.

Bridge (temporary): the current ``aask()`` runs the request without the Turn's guard and
cache (only ``execute_turn``, the sync driver, applies them). Until ``aask()`` drives the
whole Turn, `run_row` applies them in the Turn's own order with the Turn's own pieces
(``_guard``, ``_cache_key``, ``ResponseCache``, ``_replay``, ``arun_turn``): nothing of the
Turn is copied here. Once ``aask()`` honours ``use_cache`` and the budget, the body of
`run_row` becomes the single ``aask`` call in `_through_aask`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..events import Failed
from ..response import Response

__all__ = ["run_row", "is_replayed", "AASK_DRIVES_TURN"]

#: Set to True when ``aask()`` applies the Turn's guard and cache itself (issue 14).
AASK_DRIVES_TURN = False


def is_replayed(response: Response) -> bool:
    """Whether the Turn answered from the response cache (nothing sent, nothing billed)."""
    from ..turn import REPLAYED

    return REPLAYED.text in response.notices


async def run_row(template: str, namespace: Mapping[str, Any], options: Mapping[str, Any],
                  use_cache: bool) -> Response:
    """One row through the Turn; never raises for a row's failure (see ``response.error``)."""
    if AASK_DRIVES_TURN:
        return await _through_aask(template, namespace, options, use_cache)
    return await _bridge(template, namespace, options, use_cache)


async def _through_aask(template: str, namespace: Mapping[str, Any], options: Mapping[str, Any],
                        use_cache: bool) -> Response:
    from ..api import aask

    return await aask(template, namespace=namespace, display="none", history=False, use_cache=use_cache,
                      source="rows", **options)


async def _bridge(template: str, namespace: Mapping[str, Any], options: Mapping[str, Any],
                  use_cache: bool) -> Response:
    from ..api import _prepare
    from ..cache import ResponseCache
    from ..display.base import NullRenderer
    from ..turn import _cache_key, _guard, _Recorder, _replay, arun_turn

    call = {**options, "namespace": namespace, "display": "none", "history": False, "use_cache": use_cache,
            "source": "rows"}
    session, request, failed = _prepare(template, (), call)
    if request is None:
        assert failed is not None
        return failed
    messages = request.messages(session)
    refusal, _notices = _guard(session, request, messages)
    if refusal is not None:
        response = Response(model=request.settings.model)
        response.feed(Failed(refusal, "BudgetExceeded"))
        return response
    cache = ResponseCache(request.settings.cache_dir) if use_cache else None
    key = _cache_key(request, messages) if cache else ""
    hit = cache.load(key) if cache else None
    if hit is not None:
        return _replay(session, request, NullRenderer(), hit)
    recorder = _Recorder(NullRenderer(), [])
    response = await arun_turn(session, request, recorder)
    if cache is not None and response.error is None and response.done:
        cache.store(key, recorder.events, [])
    return response


def cache_key_for(template: str, namespace: Mapping[str, Any], options: Mapping[str, Any]) -> tuple[str, Any]:
    """The Turn's cache key and request for a row, built as the Turn builds it (batch engine).

    Returns ``(key, (session, request, messages))``; raises the row's user error (a
    ``KimiError`` or ``ValueError``) when its prompt cannot be built."""
    from ..api import _prepare
    from ..turn import _cache_key

    call = {**options, "namespace": namespace, "display": "none", "history": False, "source": "rows"}
    session, request, failed = _prepare(template, (), call)
    if request is None:
        assert failed is not None
        raise ValueError(failed.error)
    messages = request.messages(session)
    return _cache_key(request, messages), (session, request, messages)
