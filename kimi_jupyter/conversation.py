"""Conversation memory for one chat: messages, trimming, and the rules tool turns need.

Kimi with thinking on rejects an assistant message that carries ``tool_calls`` without its
``reasoning_content`` (a 400), so reasoning is kept byte for byte on those messages. Plain
answers drop their reasoning when stored (it is not needed and costs tokens), except for
models that take ``thinking.keep = "all"`` (K3: earlier reasoning is required in multi-turn
conversations), whose answers keep it (``keep_reasoning``).

Trimming is by an estimated token budget, not a message count: old images and videos are
replaced by a placeholder first (they are the expensive part), then whole old exchanges
(a user message with the assistant and tool messages that answer it) are dropped. The
latest exchange is never trimmed away.

Per-turn cost stays flat however long the session: each message's token estimate is
computed once, when it is added, and trimming works on those numbers; building a request
shares the stored message dicts instead of deep-copying them (only a message whose media
is aged out is copied, shallowly); and after each turn the stored history itself is
compacted to the budget (`compact`), so images that requests no longer carry are not kept
in memory as full data URLs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from .response import Response
from .sizes import json_bound

__all__ = ["Conversation", "estimate_tokens", "estimate_message_tokens"]

_MEDIA = ("image_url", "video_url")


def estimate_tokens(text: str) -> int:
    """A cheap, deterministic estimate: ~4 ASCII chars per token, ~1 token per other char."""
    if text.isascii():  # the common case: one C-level scan
        return (len(text) + 3) // 4
    ascii_count = len(text.encode("ascii", "ignore"))
    return (ascii_count + 3) // 4 + (len(text) - ascii_count)


def _media_tokens(part: dict[str, Any]) -> int:
    kind = part.get("type")
    url = (part.get(kind) or {}).get("url", "") if kind in _MEDIA else ""
    raw_bytes = len(url) * 3 // 4
    if kind == "video_url":
        return 2000 + raw_bytes // 2000
    return min(16_000, 300 + raw_bytes // 400)


def estimate_message_tokens(message: dict[str, Any]) -> int:
    tokens = 4
    content = message.get("content")
    if isinstance(content, str):
        tokens += estimate_tokens(content)
    elif isinstance(content, list):
        for part in content:
            if part.get("type") == "text":
                tokens += estimate_tokens(part.get("text", ""))
            elif part.get("type") in _MEDIA:
                tokens += _media_tokens(part)
    if message.get("reasoning_content"):
        tokens += estimate_tokens(message["reasoning_content"])
    for call in message.get("tool_calls") or []:
        tokens += estimate_tokens(json.dumps(call.get("function", {})))
    return tokens


def _placeholder(part: dict[str, Any]) -> dict[str, Any]:
    label = "image" if part.get("type") == "image_url" else "video"
    return {"type": "text", "text": f"[{label} removed from history to save context]"}


def _without_media(message: dict[str, Any]) -> dict[str, Any] | None:
    """A shallow copy with every media part replaced by its placeholder (None: no media)."""
    content = message.get("content")
    if not isinstance(content, list) or not any(p.get("type") in _MEDIA for p in content):
        return None
    return {**message, "content": [_placeholder(p) if p.get("type") in _MEDIA else p for p in content]}


def _user_content(content: str | list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    if isinstance(content, list) and len(content) == 1 and content[0].get("type") == "text":
        return str(content[0]["text"])
    return content


class Conversation:
    """One chat's memory. ``messages`` is for reading; change it only through the methods."""

    def __init__(self) -> None:
        self._messages: list[dict[str, Any]] = []
        self._tokens: list[int] = []  # estimate per message, computed once when added
        self._bytes: list[int] = []  # JSON size bound per message (sizes.json_bound), likewise

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self._messages

    @property
    def tokens(self) -> int:
        """Estimated tokens of the whole stored history."""
        return sum(self._tokens)

    def __len__(self) -> int:
        return len(self._messages)

    def clear(self) -> None:
        self._messages.clear()
        self._tokens.clear()
        self._bytes.clear()

    def append(self, message: dict[str, Any]) -> None:
        self._messages.append(message)
        self._tokens.append(estimate_message_tokens(message))
        self._bytes.append(json_bound(message))

    def extend(self, messages: Iterable[dict[str, Any]]) -> None:
        for message in messages:
            self.append(message)

    def add_user(self, content: str | list[dict[str, Any]]) -> None:
        self.append({"role": "user", "content": _user_content(content)})

    def add_assistant(self, response: Response, calls: list[Any] | None = None,
                      keep_reasoning: bool = False) -> None:
        """Store the assistant's turn; ``calls`` are the tool calls it made (if any)."""
        self.append(assistant_message(response, calls, keep_reasoning))

    def add_tool_result(self, call_id: str, name: str, content: str | list[dict[str, Any]]) -> None:
        self.append({"role": "tool", "tool_call_id": call_id, "name": name, "content": content})

    # -- what gets sent ----------------------------------------------------------------
    def for_request(self, budget_tokens: int, system: str | None = None) -> list[dict[str, Any]]:
        """The messages to send within ``budget_tokens`` (estimated), system prompt first.

        The stored history is not changed; the returned dicts are shared with it (treat
        them as read-only), except those whose media was aged out, which are copies.
        """
        return self.request(budget_tokens, system)[0]

    def request(self, budget_tokens: int, system: str | None = None) -> tuple[list[dict[str, Any]], int]:
        """`for_request` and the estimated tokens of what it returns (from the cached numbers)."""
        messages, tokens, _size = self.sized_request(budget_tokens, system)
        return messages, tokens

    def sized_request(self, budget_tokens: int,
                      system: str | None = None) -> tuple[list[dict[str, Any]], int, int]:
        """`request` plus a bound of the messages' JSON size (`sizes.json_bound`), from the
        numbers kept per message: sizing a long history costs nothing per turn."""
        head = [{"role": "system", "content": system}] if system else []
        head_tokens = sum(estimate_message_tokens(m) for m in head)
        messages, tokens, sizes = self._trimmed(max(0, budget_tokens - head_tokens))
        return head + messages, head_tokens + sum(tokens), json_bound(head) + sum(sizes) + len(sizes)

    def compact(self, budget_tokens: int) -> None:
        """Trim the stored history itself to ``budget_tokens`` (after a turn is committed)."""
        if self.tokens > budget_tokens:
            self._messages, self._tokens, self._bytes = self._trimmed(budget_tokens)

    def _trimmed(self, budget: int) -> tuple[list[dict[str, Any]], list[int], list[int]]:
        messages, tokens, sizes = list(self._messages), list(self._tokens), list(self._bytes)
        cost = sum(tokens)
        if cost <= budget:
            return messages, tokens, sizes
        starts = [i for i, m in enumerate(messages) if m.get("role") == "user"] or [0]
        if starts[0] != 0:
            starts.insert(0, 0)
        latest = starts[-1]
        # 1. Age out media, oldest first, never in the latest exchange.
        for i in range(latest):
            if cost <= budget:
                break
            lighter = _without_media(messages[i])
            if lighter is not None:
                new = estimate_message_tokens(lighter)
                cost -= tokens[i] - new
                messages[i], tokens[i], sizes[i] = lighter, new, json_bound(lighter)
        # 2. Drop whole old exchanges.
        cut = 0
        for start in starts[1:]:
            if cost <= budget:
                break
            cost -= sum(tokens[cut:start])
            cut = start
        return messages[cut:], tokens[cut:], sizes[cut:]

    def history_text(self, width: int = 400) -> str:
        """A readable transcript; images and videos as placeholders, long texts shortened."""
        if not self._messages:
            return "(the conversation is empty)"
        lines = []
        for number, message in enumerate(self._messages, 1):
            role = message.get("role", "?")
            content = message.get("content")
            if isinstance(content, list):
                pieces = []
                for part in content:
                    if part.get("type") == "text":
                        pieces.append(part.get("text", ""))
                    elif part.get("type") == "image_url":
                        pieces.append("[image]")
                    elif part.get("type") == "video_url":
                        pieces.append("[video]")
                text = " ".join(pieces)
            else:
                text = str(content or "")
            text = " ".join(text.split())
            if len(text) > width:
                text = text[: width - 1] + "…"
            if message.get("tool_calls"):
                calls = ", ".join(c["function"]["name"] for c in message["tool_calls"])
                text = (text + " " if text else "") + f"[calls: {calls}]"
            if role == "tool":
                role = f"tool:{message.get('name', '')}"
            lines.append(f"{number:>3}. {role}: {text}")
        return "\n".join(lines)


def assistant_message(response: Response, calls: list[Any] | None = None,
                      keep_reasoning: bool = False) -> dict[str, Any]:
    """The assistant message of ``response``; ``calls`` default to the tool calls it made.
    ``keep_reasoning``: a plain answer keeps its reasoning too (``thinking.keep = "all"``)."""
    calls = response.tool_calls if calls is None else calls
    message: dict[str, Any] = {"role": "assistant", "content": response.text or ""}
    if calls:
        message["tool_calls"] = [
            {"id": c.id, "type": c.type or "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in calls
        ]
        # Required by Kimi when thinking is on; harmless otherwise. Byte for byte.
        message["reasoning_content"] = response.reasoning
    elif keep_reasoning and response.reasoning:
        message["reasoning_content"] = response.reasoning
    return message
