"""A loopback Kimi-compatible server for tests, example notebooks, demos and benchmarks.

Public API (imported lazily, so ``import kimi_jupyter.testing`` stays cheap)::

    from kimi_jupyter.testing import KimiSimulator, Reply, ToolCall, Fault, RecordedRequest

    with KimiSimulator(api_key="sk-test-simulator", dialect="moonshot") as sim:
        sim.base_url                      # "http://127.0.0.1:PORT/v1" (the default dialect)
        sim.url_for("openrouter")         # "http://127.0.0.1:PORT/openrouter/v1"
        sim.queue(Reply(text="Hello", reasoning="thinking..."))    # FIFO, one per chat request
        sim.on(r"weather", Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"})]))
        sim.fault(Fault.rate_limit(wait=1), times=1)               # checked before replies
        sim.requests, sim.chat_requests   # RecordedRequest snapshots
        sim.reset()

Modules: ``simulator`` (the class), ``server`` (HTTP plumbing), ``app`` (routing and
reply selection), ``dialects`` (wire shapes), ``validation`` (Moonshot's request rules),
``faults``, ``replies`` (replies, rules, scripts), ``demo`` (the default reply), ``tokens``
(deterministic token counts), ``state`` (queues and records), ``files`` (the Files API:
``/v1/files`` and ``ms://`` references), ``samples`` (small PDF/docx documents made in
memory), ``batches`` (the Batch API: ``/v1/batches`` on an accelerated clock), ``ratelimit``
(requests per window, 429 past it). ``python -m
kimi_jupyter.testing`` runs a standalone server; the pytest plugin provides the
``kimi_sim`` and ``kimi_sim_env`` fixtures.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .faults import Fault
    from .replies import Reply, ToolCall
    from .simulator import KimiSimulator
    from .state import RecordedRequest

__all__ = ["Fault", "KimiSimulator", "RecordedRequest", "Reply", "ToolCall"]

_HOMES = {
    "Fault": "faults",
    "KimiSimulator": "simulator",
    "RecordedRequest": "state",
    "Reply": "replies",
    "ToolCall": "replies",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
