"""One ledger: every spend path reserves its worst case; no budget is passed.

Against the real simulator on 127.0.0.1 (kimi-k2.5 on the moonshot preset: CNY 4 input and
21 output per 1M tokens; on the vllm preset no price is known). The clamp notice is checked
in a real kernel.
"""

from __future__ import annotations

import asyncio

import pytest

import kimi_jupyter
from kimi_jupyter.rows.data import RowsError
from kimi_jupyter.session import get_session
from kimi_jupyter.testing import Reply

from ..kernels import run, running_kernel, text_of

pytestmark = pytest.mark.timeout(240)

ANSWER = Reply(text="an answer of a few words", usage={"prompt_tokens": 20, "completion_tokens": 30})


@pytest.fixture
def batch_sim(monkeypatch):
    from kimi_jupyter.testing import KimiSimulator
    from kimi_jupyter.testing.pytest_plugin import SIMULATOR_API_KEY

    with KimiSimulator(api_key=SIMULATOR_API_KEY, batch_speed=20000) as simulator:
        monkeypatch.setenv("KIMI_BASE_URL", simulator.base_url)
        monkeypatch.setenv("MOONSHOT_API_KEY", SIMULATOR_API_KEY)
        monkeypatch.setenv("KIMI_PROVIDER", "moonshot")
        yield simulator


def test_a_batch_honours_its_own_budget(batch_sim):
    kimi_sim_env = batch_sim
    rows = [f"question {i}" for i in range(50)]
    with pytest.raises(RowsError, match="could pass the run budget") as refused:
        kimi_jupyter.map("Answer: {value}", rows, engine="batch", budget=0.01, progress=False)
    assert "Nothing was sent" in str(refused.value) and "max_tokens=" in str(refused.value)
    assert not kimi_sim_env.requests
    # With answers bounded the worst case fits: the run goes.
    out = kimi_jupyter.map("Answer: {value}", rows, engine="batch", budget=0.1, max_tokens=50, thinking=False,
                           progress=False)
    assert len(out) == 50 and kimi_sim_env.batch_requests


def test_a_batch_is_held_to_the_session_budget_with_its_answers(kimi_sim_env):
    get_session().config["budget"] = 0.05
    rows = [f"question {i}" for i in range(50)]
    with pytest.raises(RowsError, match="could pass the session budget"):
        kimi_jupyter.map("Answer: {value}", rows, engine="batch", max_tokens=1000, progress=False)
    assert not kimi_sim_env.requests


@pytest.mark.parametrize("concurrency", [16, 64])
def test_live_rows_never_pass_the_run_budget(kimi_sim_env, concurrency):
    kimi_sim_env.on(r"Answer", Reply(text="word " * 40))
    rows = [f"question {i}" for i in range(200)]
    out = kimi_jupyter.map("Answer: {value}", rows, thinking=False, progress=False, concurrency=concurrency,
                           budget=0.003, use_cache=False)
    assert out.summary.done >= 3 and out.summary.cost <= 0.003, out.summary
    assert "budget" in out.summary.stopped


def test_a_money_budget_without_a_known_price_refuses(kimi_sim_env, monkeypatch):
    monkeypatch.setenv("KIMI_BASE_URL", kimi_sim_env.url_for("vllm"))
    monkeypatch.setenv("KIMI_PROVIDER", "vllm")
    get_session().config["budget"] = 1.0
    r = kimi_jupyter.ask("hello", display="none")
    assert r.error_kind == "BudgetExceeded" and "Kimi.prices" in r.error and "budget_tokens" in r.error
    out = kimi_jupyter.map("Say {value}", ["a", "b"], progress=False)
    assert "Kimi.prices" in out.summary.stopped
    assert not kimi_sim_env.chat_requests


def test_a_token_budget_works_without_prices(kimi_sim_env, monkeypatch):
    monkeypatch.setenv("KIMI_BASE_URL", kimi_sim_env.url_for("vllm"))
    monkeypatch.setenv("KIMI_PROVIDER", "vllm")
    get_session().config["budget_tokens"] = 400
    kimi_sim_env.on(r"count", ANSWER)
    answered = [kimi_jupyter.ask(f"count {i}", display="none") for i in range(12)]
    sent = [r for r in answered if r.error is None]
    assert 2 <= len(sent) < 12
    assert get_session().budget.spent_tokens <= 400
    assert all("Kimi.budget_tokens" in r.error for r in answered if r.error)


def test_concurrent_aask_use_a_small_budget_and_never_pass_it(kimi_sim_env):
    get_session().config["budget"] = 0.005  # about 5 answers of 50 tokens
    kimi_sim_env.on(r"ask", ANSWER)

    async def many():
        return await asyncio.gather(*(kimi_jupyter.aask(f"ask {i}") for i in range(60)))

    answers = asyncio.run(many())
    ok = [a for a in answers if a.error is None]
    assert len(ok) >= 4, [a.error for a in answers][:3]
    assert get_session().budget.spent <= 0.005 and get_session().budget.in_flight == 0


def test_map_under_the_session_budget_goes_past_one_row(kimi_sim_env):
    get_session().config["budget"] = 0.005
    kimi_sim_env.on(r"row", ANSWER)
    out = kimi_jupyter.map("row {value}", [str(i) for i in range(40)], progress=False, use_cache=False)
    assert out.summary.done >= 4 and get_session().budget.spent <= 0.005, out.summary


def test_the_cell_says_when_max_tokens_is_lowered(kimi_sim_env, tmp_path):
    env = {"MOONSHOT_API_KEY": "sk-test-simulator", "KIMI_BASE_URL": kimi_sim_env.base_url, "KIMI_PROVIDER": "moonshot"}
    with running_kernel(env, tmp_path) as (_, client):
        run(client, "%load_ext kimi_jupyter\n%config Kimi.budget = 0.002")
        reply, msgs = run(client, "%%kimi --display text\nHello")
        shown = text_of(msgs)
        assert reply["status"] == "ok" and "max_tokens lowered to" in shown, shown
        sent = kimi_sim_env.chat_requests[-1].json["max_tokens"]
        assert 16 <= sent < 100 and f"{sent:,}" in shown
