"""The one place a row meets the Turn.

Every live row is one ``aask(prompt, namespace=row, display="none", history=False,
use_cache=..., source="rows")`` call, so a row gets what a single turn gets: the same
request building, retry policy, budget guard, cache, interrupt handling and usage ledger.
`run_row` is the only function of the rows package that starts a request; the engines
never touch the HTTP client.

``aask()`` drives the whole Turn (the budget reserved under a lock, so concurrent rows
cannot overshoot it; the cache; a pooled AsyncClient per event loop), so `run_row` is that
one call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..api import aask, build_request
from ..response import Response
from ..session import get_session
from ..turn import REPLAYED, NullRenderer, Turn

__all__ = ["run_row", "is_replayed", "AASK_DRIVES_TURN"]

#: ``aask()`` drives the whole Turn (guard, budget reservation, cache, pooled client).
AASK_DRIVES_TURN = True


def is_replayed(response: Response) -> bool:
    """Whether the Turn answered from the response cache or the recording (nothing sent,
    nothing billed)."""
    origin = getattr(response.provenance, "origin", None)
    return REPLAYED.text in response.notices or origin in ("replayed", "cache")


async def run_row(template: str, namespace: Mapping[str, Any], options: Mapping[str, Any],
                  use_cache: bool) -> Response:
    """One row through the Turn; never raises for a row's failure (see ``response.error``).

    ``options`` are ``aask()``'s: the run passes its one resolved ``settings`` (resolved
    once per run, so every row of a run uses the same model and configuration) and the
    ``response_format`` of a schema."""
    return await aask(template, namespace=namespace, display="none", history=False, use_cache=use_cache,
                      source="rows", **options)


def cache_key_for(template: str, namespace: Mapping[str, Any], options: Mapping[str, Any]) -> tuple[str, Any]:
    """The Turn's cache key and request for a row, built as the Turn builds it (batch engine).

    Returns ``(key, (session, request, messages))``; raises the row's user error (a
    ``KimiError`` or ``ValueError``) when its prompt cannot be built."""
    request = build_request(template, namespace=namespace, display="none", history=False, source="rows",
                            **options)
    session = get_session()
    turn = Turn(session, request, NullRenderer())
    return turn.cache_key(), (session, request, turn.messages())
