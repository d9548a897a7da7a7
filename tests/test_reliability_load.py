"""Issue 9, load: 50 concurrent ``aask`` calls against a rate-limiting simulator.

Each prompt carries a unique token and the scripted model echoes it, so any mixing of
state between concurrent turns (a reply, a message list, usage) shows up as a wrong token.
Some requests get a 429 with a short wait and some a 503 first; every call must still end
with its own answer, and the session's conversation and usage ledger must add up.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import pytest

from kimi_jupyter import aask
from kimi_jupyter.session import get_session
from kimi_jupyter.testing import Fault, Reply

from .test_reliability_faults import check_well_formed

pytestmark = pytest.mark.timeout(60)

N = 50
TOKEN = re.compile(r"TOKEN-\d{3}-[a-z]{4}")
FAST = {"retry_backoff": 0.01, "max_retries": 4, "timeout_read": 10}


def token(i: int) -> str:
    return f"TOKEN-{i:03d}-" + "".join(chr(97 + (i * 7 + k * 3) % 26) for k in range(4))


def echo(messages: list[dict[str, Any]]) -> Reply:
    """The simulated model: repeats the token of the last user message, in small chunks."""
    last = [m for m in messages if m["role"] == "user"][-1]["content"]
    (found,) = TOKEN.findall(last)
    return Reply(text=f"You said {found}. Echo: {found}.", reasoning=f"echoing {found}", chunk_chars=5,
                 chunk_delay=0.002)


def rate_limited(sim: Any, times: int) -> None:
    sim.fault(Fault.status(429, "rate_limit_reached_error",
                           "Your account reached max RPM: 3, please try again after 0.2 seconds",
                           {"Retry-After": "0.2"}), times=times)


async def test_fifty_concurrent_aask_each_get_their_own_answer(kimi_sim_env):
    sim = kimi_sim_env
    sim.on(None, echo)
    rate_limited(sim, times=12)
    sim.fault(Fault.server_error(503), times=5)
    started = time.monotonic()
    responses = await asyncio.wait_for(
        asyncio.gather(*(aask(f"Please repeat {token(i)} back to me.", **FAST) for i in range(N))), timeout=40
    )
    elapsed = time.monotonic() - started
    assert elapsed < 20
    for i, response in enumerate(responses):
        assert response.error is None, (i, response.error)
        assert response.text == f"You said {token(i)}. Echo: {token(i)}.", (i, response.text)
        assert TOKEN.findall(response.reasoning) == [token(i)]
        assert response.usage.reported and response.usage.prompt > 0
    chats = sim.chat_requests
    assert len(chats) == N + 12 + 5
    assert sum(r.status == 429 for r in chats) == 12 and sum(r.status == 503 for r in chats) == 5
    assert sum(r.retries for r in responses) == 12 + 5
    for request in chats:  # every request carried exactly one prompt: nothing was mixed in
        check_well_formed(request.messages)
        assert len(request.messages) == 1 and len(TOKEN.findall(request.messages[0]["content"])) == 1
    assert sorted(TOKEN.findall(r.messages[0]["content"])[0] for r in chats if r.status == 200) == sorted(
        token(i) for i in range(N))

    session = get_session()
    assert session.conversation.messages == []  # independent calls leave the memory alone
    row = session.ledger.rows["ask"]
    assert row.requests == N and row.unreported == 0
    total = responses[0].usage
    for response in responses[1:]:
        total = total + response.usage
    assert (row.usage.prompt, row.usage.completion, row.usage.total) == (total.prompt, total.completion, total.total)
    assert row.usage.cost == pytest.approx(total.cost)


async def test_concurrent_turns_that_share_the_conversation_stay_paired(kimi_sim_env):
    """With history=True the turns interleave, but each question stays next to its own answer."""
    sim = kimi_sim_env
    sim.on(None, echo)
    rate_limited(sim, times=6)
    responses = await asyncio.wait_for(
        asyncio.gather(*(aask(f"Please repeat {token(i)}.", history=True, **FAST) for i in range(20))), timeout=30
    )
    assert all(r.error is None for r in responses)
    for request in sim.chat_requests:  # each snapshot of the shared memory held whole exchanges
        check_well_formed(request.messages)
    memory = get_session().conversation.messages
    assert [m["role"] for m in memory] == ["user", "assistant"] * 20
    for question, answer in zip(memory[::2], memory[1::2], strict=True):
        assert TOKEN.findall(question["content"]) == TOKEN.findall(answer["content"])[:1]
    sim.queue(Reply(text="done"))
    last = await aask("Please repeat TOKEN-999-zzzz.", history=True, **FAST)
    assert last.text == "done"
    check_well_formed(sim.chat_requests[-1].messages)
    assert len(sim.chat_requests[-1].messages) == 41
