"""Partial mode: prefill the start of the answer so the model continues it.

Moonshot (and Cloudsway) accept a last message ``{"role": "assistant", "content": PREFIX,
"partial": true}``: the model continues from ``PREFIX`` and its reply does not repeat it, so
the client joins prefix and continuation (``client/transport.py`` shows the prefix as the
first text of the answer, which makes ``Response.text``, the display and the conversation
memory hold the joined text).

``%%kimi -f code`` prefills an opening python fence, so the model answers with code only;
``-f json`` prefills ``{``; ``--prefill TEXT`` (and ``ask(prefill=...)``) prefill anything.
Presets whose servers do not support the field (``Provider.partial_mode`` False:
OpenRouter-style gateways, CometAPI, self-hosted servers) fall back to what ``-f`` did
before: an instruction in the prompt, no prefill.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FORMAT_PREFILLS", "partial_message", "prefill_options"]

FORMAT_PREFILLS = {"code": "```python\n", "json": "{"}


def prefill_options(fmt: str | None, prefill: str | None, settings: Any) -> dict[str, Any]:
    """The client options (``{"prefill": ...}`` or nothing) for a format and an explicit prefill."""
    if prefill:  # explicit: the client says so if the provider cannot take it
        return {"prefill": prefill}
    text = FORMAT_PREFILLS.get(fmt or "")
    if not text or not settings.preset.partial_mode:
        return {}  # -f code / -f json without partial mode: the prompt's instruction alone
    return {"prefill": text}


def partial_message(prefill: str) -> dict[str, Any]:
    """The last message of a partial-mode request."""
    return {"role": "assistant", "content": prefill, "partial": True}
