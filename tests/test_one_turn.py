"""Every entry point drives the one Turn: budget, cache, pre-flight, interrupts, accounting
and settings behave the same from `%%kimi`, `ask()`, `aask()` and the sidebar."""

from __future__ import annotations

import _thread
import asyncio
import threading
import time

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.testing.globalipapp import start_ipython

from kimi_jupyter.api import aask, ask
from kimi_jupyter.session import get_session
from kimi_jupyter.sidebar.chat import SidebarChat, handle_message
from kimi_jupyter.testing import Reply

ENTRY_POINTS = ("magic", "ask", "aask", "sidebar")


@pytest.fixture
def ip(kimi_sim_env):
    start_ipython()  # once per process; later calls are no-ops
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "kimi_jupyter")
    shell.config.pop("Kimi", None)
    yield shell
    shell.config.pop("Kimi", None)


def turn(entry: str, ip, prompt: str):
    """One turn from ``entry``; returns the Response it ended with."""
    if entry == "magic":
        ip.run_cell(f"%%kimi --display none --keep-going\n{prompt}")
        return get_session().notebook.last
    if entry == "ask":
        return ask(prompt, display="none")
    if entry == "aask":
        return asyncio.run(aask(prompt))
    sidebar = SidebarChat(namespace={})
    sent: list[dict] = []
    handle_message({"action": "ask", "request_id": "r", "prompt": prompt}, sent.append, sidebar)
    assert sent[-1]["type"] == "done"
    return sidebar.last


def source_of(entry: str) -> str:
    return {"magic": "magic", "ask": "ask", "aask": "ask", "sidebar": "sidebar"}[entry]


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_a_spent_budget_refuses_from_every_entry_point(ip, kimi_sim_env, entry):
    # The first turn fits a short answer (16 tokens at ¥21/M plus the prompt): it is sent, with
    # max_tokens lowered to what the budget affords; it spends nearly all of it.
    ip.run_line_magic("config", "Kimi.budget = 0.0005")
    kimi_sim_env.queue(Reply(text="spent", usage={"prompt_tokens": 8, "completion_tokens": 20}))
    first = turn(entry, ip, "spend something")
    assert first.error is None and len(kimi_sim_env.chat_requests) == 1
    assert kimi_sim_env.chat_requests[0].json["max_tokens"] <= 22
    refused = turn(entry, ip, "and again")  # not even a short answer fits what is left
    assert refused.error.startswith("Refused: the session budget has") and refused.error_kind == "BudgetExceeded"
    assert len(kimi_sim_env.chat_requests) == 1  # nothing was sent


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_the_cache_replays_for_every_entry_point(ip, kimi_sim_env, entry, tmp_path):
    ip.run_line_magic("config", "Kimi.cache = True")
    kimi_sim_env.queue(Reply(text="Once.", reasoning="Thought."))
    first = turn(entry, ip, "cache me")
    second = turn(entry, ip, "cache me") if entry != "magic" else None
    if entry == "magic":  # a cell continues the conversation: replay it in a fresh one
        get_session().reset()
        second = turn(entry, ip, "cache me")
    assert len(kimi_sim_env.chat_requests) == 1
    assert (second.text, second.reasoning) == (first.text, first.reasoning) == ("Once.", "Thought.")
    assert any("Replayed from the response cache" in n for n in second.notices)
    assert get_session().ledger.rows["replayed"].requests == 1


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_preflight_and_accounting_are_the_same_everywhere(ip, kimi_sim_env, entry):
    ip.run_line_magic("config", "Kimi.preflight_tokens = 5")
    response = turn(entry, ip, "a prompt that is certainly over five tokens long")
    assert any(n.startswith("Pre-flight: this prompt is about") for n in response.notices)
    row = get_session().ledger.rows[source_of(entry)]
    assert row.requests == 1 and row.usage.reported and row.usage.cost == response.usage.cost


def test_config_is_live_from_load_ext_for_ask_aask_and_the_sidebar(ip, kimi_sim_env):
    ip.run_line_magic("config", "Kimi.model = 'kimi-k2-turbo-preview'")
    ask("hi", display="none")
    asyncio.run(aask("hi"))
    hello: list[dict] = []
    handle_message({"action": "hello"}, hello.append, SidebarChat(namespace={}))
    handle_message({"action": "ask", "request_id": "r", "prompt": "hi"}, lambda m: None, SidebarChat(namespace={}))
    assert [r.json["model"] for r in kimi_sim_env.chat_requests] == ["kimi-k2-turbo-preview"] * 3
    assert hello[0]["model"] == "kimi-k2-turbo-preview"


def _one_turn_cost(kimi_sim_env) -> float:
    response = ask("measure one turn", display="none")
    assert response.usage.cost
    return response.usage.cost


def test_concurrent_aask_cannot_overshoot_the_budget(ip, kimi_sim_env):
    cost = _one_turn_cost(kimi_sim_env)
    spent = get_session().budget.spent
    ip.run_line_magic("config", f"Kimi.budget = {spent + 2.2 * cost!r}")
    kimi_sim_env.queue(*[Reply(text="slow answer " * 4, chunk_delay=0.02) for _ in range(20)])

    async def twenty():
        return await asyncio.gather(*(aask("measure one turn") for _ in range(20)))

    responses = asyncio.run(twenty())
    sent = len(kimi_sim_env.chat_requests) - 1
    refused = [r for r in responses if r.error_kind == "BudgetExceeded"]
    # The ledger reserves each turn's worst case; turns that do not fit wait for those in
    # flight, so the budget is used (more than one answer) and never passed.
    assert sent >= 2 and len(refused) == 20 - sent, sent
    assert all("Refused" in r.error for r in refused)
    assert get_session().budget.spent <= spent + 2.2 * cost and get_session().budget.in_flight == 0


def test_threads_cannot_overshoot_the_budget(ip, kimi_sim_env):
    cost = _one_turn_cost(kimi_sim_env)
    spent = get_session().budget.spent
    ip.run_line_magic("config", f"Kimi.budget = {spent + 2.2 * cost!r}")
    kimi_sim_env.queue(*[Reply(text="slow answer " * 4, chunk_delay=0.02) for _ in range(20)])
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(ask("measure one turn", display="none")))
               for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    sent = len(kimi_sim_env.chat_requests) - 1
    assert len(results) == 20 and sent >= 2, sent
    assert get_session().budget.spent <= spent + 2.2 * cost  # used, never passed
    assert get_session().budget.in_flight == 0  # every reservation was settled


def test_aask_cancelled_keeps_the_partial_answer_like_ask_interrupted(ip, kimi_sim_env):
    slow = Reply(text="one two three four five six seven eight nine ten", chunk_chars=4, chunk_delay=0.1)
    kimi_sim_env.queue(slow, slow)

    async def cancel_midway():
        task = asyncio.ensure_future(aask("tell me slowly", history=True))
        await asyncio.sleep(0.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_midway())
    cancelled = get_session().notebook.last
    assert cancelled.error_kind == "Interrupted" and cancelled.text and cancelled.cut

    timer = threading.Timer(0.5, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            ask("tell me slowly", display="none", history=True)
            time.sleep(5)  # the interrupt must land inside ask()
    finally:
        timer.cancel()
    interrupted = get_session().notebook.last
    assert interrupted.error_kind == "Interrupted" and interrupted.text and interrupted.cut
    # Both kept their partial answers in the memory, each exchange closed.
    roles = [m["role"] for m in get_session().conversation.messages]
    assert roles == ["user", "assistant", "user", "assistant"]
    assert get_session().ledger.rows["ask"].requests == 2


def test_aask_reuses_one_pooled_client(ip, kimi_sim_env):
    async def three():
        await asyncio.gather(aask("a"), aask("b"), aask("c"))
        return len(get_session()._aclients)

    assert asyncio.run(three()) == 1


def test_aask_takes_a_resolved_settings_but_not_settings_and_options_at_once(kimi_sim_env):
    import asyncio

    kimi_sim_env.on(r"hello", Reply(text="hi"))
    settings = get_session().settings(thinking=False, max_tokens=77)
    answer = asyncio.run(aask("hello", settings=settings))
    assert answer.text == "hi" and kimi_sim_env.chat_requests[-1].json["max_tokens"] == 77
    both = asyncio.run(aask("hello", settings=settings, model="kimi-k2.5"))
    assert both.error and "either settings= or setting options (model)" in both.error
    wrong = ask("hello", settings={"model": "kimi-k2.5"}, display="none")
    assert wrong.error and wrong.error.startswith("settings= takes a Settings")
    assert len(kimi_sim_env.chat_requests) == 1


def test_the_context_package_exports_the_compose_function():
    import kimi_jupyter.api  # imports the submodule that builds messages
    import kimi_jupyter.context
    from kimi_jupyter.context import compose

    assert callable(compose) and kimi_jupyter.context.compose is compose
