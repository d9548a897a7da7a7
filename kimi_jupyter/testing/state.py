"""What a simulator remembers between requests, behind one lock.

Server threads and the test thread touch the same queues at once, so everything mutable
lives here: queued replies and faults, rules, the request log and the prefix-cache model.
``KimiSimulator`` exposes it; the request handler (``app.py``) reads and consumes it.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .faults import Fault
from .replies import Conversation, Outcome, Rule, compile_match


class Headers(dict[str, str]):
    """A dict of request headers whose keys are lower-cased and looked up case-insensitively."""

    def __init__(self, items: Mapping[str, str] | Sequence[tuple[str, str]] = ()) -> None:
        pairs = items.items() if isinstance(items, Mapping) else items
        super().__init__((k.lower(), v) for k, v in pairs)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key.lower() if isinstance(key, str) else key)

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)


@dataclass(frozen=True)
class RecordedRequest:
    """One request the simulator received, for assertions.

    ``headers`` keeps every header as sent (``Authorization`` included) with
    case-insensitive lookup; ``json`` is the parsed body or None; ``status`` is the HTTP
    status the simulator answered with; ``dialect`` the dialect the URL selected (None
    for an unknown path).
    """

    method: str
    path: str
    headers: Headers
    json: Any
    dialect: str | None
    status: int

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The ``messages`` of a chat request (empty for other requests)."""
        body = self.json if isinstance(self.json, Mapping) else {}
        messages = body.get("messages")
        return messages if isinstance(messages, list) else []

    @property
    def is_chat(self) -> bool:
        """True for ``.../chat/completions`` requests."""
        return self.path.split("?", 1)[0].rstrip("/").endswith("/chat/completions")


@dataclass
class _QueuedFault:
    fault: Fault
    times: int | None
    test: Any


class SimulatorState:
    """Queues, rules, faults, records and the prefix cache of one simulator (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._replies: deque[Outcome] = deque()
        self._rules: list[Rule] = []
        self._faults: list[_QueuedFault] = []
        self._records: list[RecordedRequest] = []
        self._prefixes: set[str] = set()
        self._seq = 0

    # -- configuration (test thread) ---------------------------------------------------
    def queue(self, outcome: Outcome) -> None:
        with self._lock:
            self._replies.append(outcome)

    def add_rule(self, rule: Rule) -> None:
        with self._lock:
            self._rules.append(rule)

    def add_fault(self, fault: Fault, times: int | None, match: Any) -> None:
        with self._lock:
            self._faults.append(_QueuedFault(fault, times, compile_match(match)))

    def reset(self) -> None:
        with self._lock:
            self._replies.clear()
            self._rules.clear()
            self._faults.clear()
            self._records.clear()
            self._prefixes.clear()

    # -- per request (server threads) --------------------------------------------------
    def next_seq(self) -> int:
        with self._lock:
            self._seq += 1
            return self._seq

    def take_fault(self, conv: Conversation) -> Fault | None:
        """Consume the first queued fault whose ``match`` accepts ``conv``."""
        with self._lock:
            for queued in self._faults:
                if queued.test(conv):
                    if queued.times is not None:
                        queued.times -= 1
                        if queued.times <= 0:
                            self._faults.remove(queued)
                    return queued.fault
        return None

    def take_outcome(self, conv: Conversation) -> Outcome | None:
        """The next queued reply, else the first matching rule's outcome, else None."""
        with self._lock:
            if self._replies:
                return self._replies.popleft()
            for rule in self._rules:
                if rule.matches(conv):
                    if rule.times is not None:
                        rule.times -= 1
                    return rule.outcome
        return None

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._records.append(request)

    def records(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._records)

    def cached_prefix(self, keys: Sequence[str]) -> int:
        """How many leading prefix ``keys`` an earlier request already sent."""
        with self._lock:
            count = 0
            for key in keys:
                if key not in self._prefixes:
                    break
                count += 1
            return count

    def remember_prefix(self, keys: Sequence[str]) -> None:
        with self._lock:
            self._prefixes.update(keys)


def prefix_keys(model: str, tools: Any, messages: Sequence[Any]) -> list[str]:
    """One digest per message prefix (chained), so shared prefixes share keys."""
    digest = hashlib.sha256(json.dumps([model, tools], sort_keys=True, default=str).encode())
    keys = []
    for message in messages:
        digest.update(json.dumps(message, sort_keys=True, ensure_ascii=False, default=str).encode())
        keys.append(digest.copy().hexdigest())
    return keys
