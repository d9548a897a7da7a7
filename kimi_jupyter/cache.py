"""A response cache so that re-running a notebook neither re-bills nor changes its story.

A turn is keyed on everything that shapes the answer: provider, model, thinking, limits,
system prompt, the messages (image and video data replaced by their SHA-256, so keys stay
small), tools and response format. The entry keeps the turn's events exactly as they were
shown and the messages the turn added to the conversation, so a replay renders the same
text, reasoning, usage and tool steps and leaves the memory as the original run did.
Entries hold no API key and no base URL (a gateway URL can carry credentials).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .events import Event, event_from_json, event_to_json

__all__ = ["ResponseCache", "CachedTurn", "request_key"]

FORMAT = 1


def _hash_media(value: Any) -> Any:
    """A copy of a message structure with data URLs replaced by their digest."""
    if isinstance(value, dict):
        return {k: _hash_media(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_hash_media(v) for v in value]
    if isinstance(value, str) and value.startswith("data:") and len(value) > 256:
        head, _, data = value.partition(",")
        return f"{head},sha256:{hashlib.sha256(data.encode()).hexdigest()}"
    return value


def request_key(shape: dict[str, Any]) -> str:
    canonical = json.dumps(_hash_media(shape), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(f"kimi-cache-v{FORMAT}\n{canonical}".encode()).hexdigest()


@dataclass
class CachedTurn:
    events: list[Event]
    conversation: list[dict[str, Any]]


class ResponseCache:
    def __init__(self, directory: str | os.PathLike[str]):
        self.directory = Path(directory)

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def load(self, key: str) -> CachedTurn | None:
        try:
            data = json.loads(self._path(key).read_text(encoding="utf-8"))
            if data.get("format") != FORMAT:
                return None
            return CachedTurn([event_from_json(e) for e in data["events"]], list(data["conversation"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None  # a missing or damaged entry is simply a miss

    def store(self, key: str, events: list[Event], conversation: list[dict[str, Any]]) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"format": FORMAT, "events": [event_to_json(e) for e in events], "conversation": conversation}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)  # never leave a half-written entry behind

    def info(self) -> tuple[int, int]:
        """(entries, bytes) on disk."""
        if not self.directory.is_dir():
            return 0, 0
        files = [p for p in self.directory.glob("*/*.json") if p.is_file()]
        return len(files), sum(p.stat().st_size for p in files)

    def clear(self) -> int:
        entries, _ = self.info()
        if self.directory.is_dir():
            shutil.rmtree(self.directory)
        return entries
