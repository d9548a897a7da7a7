"""The fault matrix for the sidebar's kernel side: every fault ends in the documented
message as a Failed event followed by done, keeps the partial text, and the sidebar's next
turn works. (The browser tests show such a failure in the panel; see tests/browser.)"""

from __future__ import annotations

from itertools import pairwise

import pytest

from kimi_jupyter.sidebar.chat import SidebarChat, handle_message
from kimi_jupyter.testing import Fault, Reply

from .test_comm import Outbox

FAST = {"retry_backoff": 0.01, "retry_max_wait": 2.0, "timeout_read": 0.5}

# fault, the phrase the message must contain, whether text arrived first
MATRIX = [
    (Fault.rate_limit(wait=1), None, False),  # retried after the named wait: the turn succeeds
    (Fault.rate_limit(wait=5), "wait 5 s", False),  # longer than retry_max_wait: fails at once
    (Fault.quota(), "quota is exhausted", False),
    (Fault.unauthorized(), "The API key was rejected", False),
    (Fault.model_not_found(model="kimi-k2.5"), "%kimi models", False),
    (Fault.context_too_long(), "too long for the model's context window", False),
    (Fault.content_filter(), "high risk", False),
    (Fault.server_error(status=503), None, False),  # one 503, then the reply
    (Fault.cut(after=3), "partial answer", True),
    (Fault.malformed(after=2), None, True),  # skipped with a notice, the turn completes
    (Fault.stall(seconds=2, after=3), "sent nothing for", True),
]


@pytest.fixture
def sidebar(kimi_sim_env):
    from kimi_jupyter.session import get_session

    get_session().config.update(FAST, max_retries=2)
    return SidebarChat(namespace={})


def _id(value):
    return f"{value.kind}-{value.error_type or value.code}" if hasattr(value, "kind") else None


@pytest.mark.parametrize("fault,phrase,partial", MATRIX, ids=_id)
def test_sidebar_fault_ends_cleanly_and_the_next_turn_works(sidebar, kimi_sim_env, fault, phrase, partial):
    kimi_sim_env.fault(fault)
    kimi_sim_env.queue(Reply(text="Hello from the answer.", chunk_chars=3))
    out = Outbox()
    handle_message({"action": "ask", "request_id": "r1", "prompt": "hi"}, out, sidebar)
    assert [m["type"] for m in out.messages][-1] == "done"  # always closed, never a traceback
    failed = out.events("Failed")
    if phrase is None:
        assert failed == [] and out.of("done")[0]["response"]["text"] == "Hello from the answer."
    else:
        (event,) = failed
        assert phrase in event["error"]
        if partial:
            assert out.text() and out.of("done")[0]["response"]["text"] == out.text()
    if fault.error_type == "rate_limit_reached_error" and phrase is None:
        assert out.events("Retrying")[0]["wait"] == 1.0  # the seconds the server named
    kimi_sim_env.reset()  # drop what the failed turn left queued
    kimi_sim_env.queue(Reply(text="recovered"))
    again = Outbox()
    handle_message({"action": "ask", "request_id": "r2", "prompt": "again"}, again, sidebar)
    assert again.events("Failed") == [] and again.text() == "recovered"
    messages = kimi_sim_env.chat_requests[-1].json["messages"]
    roles = [m["role"] for m in messages]
    assert roles[-1] == "user" and ("user", "user") not in set(pairwise(roles))  # well-formed memory
