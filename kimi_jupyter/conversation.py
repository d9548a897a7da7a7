"""Conversation memory for one kernel: messages, trimming, and the rules tool turns need.

Kimi with thinking on rejects an assistant message that carries ``tool_calls`` without its
``reasoning_content`` (a 400), so reasoning is kept byte for byte on those messages. Plain
answers drop their reasoning when stored (it is not needed and costs tokens).

Trimming is by an estimated token budget, not a message count: old images and videos are
replaced by a placeholder first (they are the expensive part), then whole old exchanges
(a user message with the assistant and tool messages that answer it) are dropped. The
latest exchange is never trimmed away.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from .response import Response

__all__ = ["Conversation", "estimate_tokens", "estimate_message_tokens"]

_MEDIA = ("image_url", "video_url")


def estimate_tokens(text: str) -> int:
    """A cheap, deterministic estimate: ~4 ASCII chars per token, ~1 token per CJK char."""
    ascii_count = sum(1 for ch in text if ord(ch) < 128) if len(text) < 200_000 else len(text)
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


@dataclass
class Conversation:
    messages: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.messages)

    def clear(self) -> None:
        self.messages.clear()

    def add_user(self, content: str | list[dict[str, Any]]) -> None:
        if isinstance(content, list) and len(content) == 1 and content[0].get("type") == "text":
            content = content[0]["text"]
        self.messages.append({"role": "user", "content": content})

    def add_assistant(self, response: Response, calls: list[Any] | None = None) -> None:
        """Store the assistant's turn; ``calls`` are the tool calls it made (if any)."""
        calls = response.tool_calls if calls is None else calls
        message: dict[str, Any] = {"role": "assistant", "content": response.text or ""}
        if calls:
            message["tool_calls"] = [
                {"id": c.id, "type": c.type or "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in calls
            ]
            # Required by Kimi when thinking is on; harmless otherwise. Byte for byte.
            message["reasoning_content"] = response.reasoning
        self.messages.append(message)

    def add_tool_result(self, call_id: str, name: str, content: str | list[dict[str, Any]]) -> None:
        self.messages.append({"role": "tool", "tool_call_id": call_id, "name": name, "content": content})

    def rollback(self, length: int) -> None:
        """Forget everything after the first ``length`` messages (an abandoned turn)."""
        del self.messages[length:]

    # -- what gets sent ----------------------------------------------------------------
    def for_request(self, budget_tokens: int, system: str | None = None) -> list[dict[str, Any]]:
        """A trimmed copy within ``budget_tokens`` (estimated), system prompt first."""
        messages = copy.deepcopy(self.messages)
        head = [{"role": "system", "content": system}] if system else []
        budget = max(0, budget_tokens - sum(estimate_message_tokens(m) for m in head))
        groups = self._groups(messages)
        cost = sum(estimate_message_tokens(m) for m in messages)
        # 1. Age out media, oldest first, never in the latest exchange.
        for group in groups[:-1]:
            if cost <= budget:
                break
            for message in group:
                content = message.get("content")
                if not isinstance(content, list):
                    continue
                for i, part in enumerate(content):
                    if part.get("type") in _MEDIA and cost > budget:
                        cost -= _media_tokens(part) - estimate_tokens(_placeholder(part)["text"])
                        content[i] = _placeholder(part)
        # 2. Drop whole old exchanges.
        while cost > budget and len(groups) > 1:
            dropped = groups.pop(0)
            cost -= sum(estimate_message_tokens(m) for m in dropped)
        return head + [m for group in groups for m in group]

    @staticmethod
    def _groups(messages: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        """Split into exchanges that start at a user message (tool results stay with their call)."""
        groups: list[list[dict[str, Any]]] = []
        for message in messages:
            if message.get("role") == "user" or not groups:
                groups.append([message])
            else:
                groups[-1].append(message)
        return groups

    def history_text(self, width: int = 400) -> str:
        """A readable transcript; images and videos as placeholders, long texts shortened."""
        if not self.messages:
            return "(the conversation is empty)"
        lines = []
        for number, message in enumerate(self.messages, 1):
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
