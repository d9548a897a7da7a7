"""``--web``: Kimi's builtin ``$web_search``, used the way Moonshot requires.

Facts (Moonshot's docs): the tool is declared as ``{"type": "builtin_function", "function":
{"name": "$web_search"}}``; when the model calls it, the client sends the call's
``arguments`` back unchanged as the tool message and Moonshot runs the search itself. The
search is billed: the call's arguments report ``usage.total_tokens``, the tokens of search
results that enter the next request's prompt (so they are also in that request's
``prompt_tokens``). On kimi-k2.5/k2.6 a request that offers ``$web_search`` must have thinking
switched off. A model that always thinks (kimi-k2.7-code, kimi-k3, kimi-k3.1-pro) therefore
cannot use it, and Moonshot's docs (checked December 2026, see ``docs/models.md``) name no
other web-search tool for K3 in chat completions: ``--web`` on those models is refused with
a line that says so, before anything is sent.

So: :func:`web_settings` switches thinking off for a turn that offers the search (and the
notebook says so, and that searches are billed); :func:`search_notice` reads the reported
cost of each search and keeps a per-session count that ``%kimi usage`` shows.
"""

from __future__ import annotations

import json
import threading
import weakref
from dataclasses import dataclass
from typing import Any

from .events import Notice

__all__ = ["WebSearches", "search_notice", "searches_for", "web_settings"]

THINKING_OFF = Notice(
    "Web search: thinking is switched off for this turn (Kimi requires it with $web_search); each search "
    "is billed, its result tokens count as prompt tokens of the next request.",
    "info",
)


def web_settings(settings: Any) -> tuple[Any, list[Notice]]:
    """The settings for a turn that offers ``$web_search`` (thinking off), and what to tell the user."""
    import dataclasses

    info = settings.model_info
    if info is not None and info.always_thinks and not info.web_search:
        from .errors import ConfigError

        raise ConfigError(f"--web: {settings.model} always thinks, and Moonshot's builtin $web_search needs thinking "
                          "off; Moonshot documents no other web-search tool for it. Use -m kimi-k2.6 (or kimi-k2.5) "
                          "for web search. Nothing was sent.")
    return dataclasses.replace(settings, thinking=False), [THINKING_OFF]


@dataclass
class WebSearches:
    """This session's searches and the result tokens the provider reported for them."""

    count: int = 0
    tokens: int = 0
    unreported: int = 0

    def describe(self) -> str:
        if not self.count:
            return ""
        unknown = f", {self.unreported} without a reported cost" if self.unreported else ""
        return (f"Web searches: {self.count} ({self.tokens:,} result tokens reported, billed as prompt "
                f"tokens{unknown})")


_SEARCHES: weakref.WeakKeyDictionary[Any, WebSearches] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def searches_for(session: Any) -> WebSearches:
    with _LOCK:
        searches = _SEARCHES.get(session)
        if searches is None:
            searches = _SEARCHES[session] = WebSearches()
        return searches


def reported_tokens(arguments: str) -> int | None:
    """``usage.total_tokens`` of a ``$web_search`` call's arguments, when reported."""
    try:
        data = json.loads(arguments)
    except (TypeError, ValueError):
        return None
    usage = data.get("usage") if isinstance(data, dict) else None
    tokens = usage.get("total_tokens") if isinstance(usage, dict) else None
    return tokens if isinstance(tokens, int) and not isinstance(tokens, bool) and tokens >= 0 else None


def search_notice(session: Any, arguments: str) -> Notice:
    """Count one search for ``session`` and say what it cost."""
    tokens = reported_tokens(arguments)
    searches = searches_for(session)
    with _LOCK:
        searches.count += 1
        if tokens is None:
            searches.unreported += 1
        else:
            searches.tokens += tokens
    if tokens is None:
        return Notice("Web search ran on the provider (it reported no cost).", "info")
    return Notice(f"Web search ran on the provider: {tokens:,} result tokens, billed as prompt tokens.", "info")
