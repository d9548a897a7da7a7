"""Kimi K3 in a real kernel against the simulator: a cell with --effort, an agent loop, -f json
--schema, map(schema=), a K3 turn's cost, %kimi models with the windows, %kimi balance."""

from __future__ import annotations

import json

import pytest

from kimi_jupyter.testing import KimiSimulator, Reply, ToolCall

from .kernels import run, running_kernel, text_of

KEY = "sk-test-simulator"
MODELS = ["kimi-k2.5", "kimi-k2.6", "kimi-k3", "kimi-k3.1-pro"]


@pytest.fixture(scope="module")
def sim():
    with KimiSimulator(api_key=KEY, models=MODELS) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def kernel(sim, tmp_path_factory):
    # moonshot-intl: the platform where K3's prices are published (USD).
    env = {"KIMI_BASE_URL": sim.base_url, "MOONSHOT_API_KEY": KEY, "KIMI_PROVIDER": "moonshot-intl"}
    with running_kernel(env, tmp_path_factory.mktemp("kernel")) as (manager, client):
        reply, _ = run(client, "%load_ext kimi_jupyter\nimport kimi_jupyter")
        assert reply["status"] == "ok"
        yield manager, client


@pytest.fixture(autouse=True)
def fresh(sim, kernel):
    sim.reset()
    run(kernel[1], "%kimi reset")


def ok(reply, messages):
    assert reply["status"] == "ok", text_of(messages)
    return text_of(messages)


def test_a_k3_cell_with_effort_sends_it_and_the_turn_has_a_cost(sim, kernel):
    _, client = kernel
    sim.queue(Reply(text="Two.", reasoning="one plus one",
                    usage={"prompt_tokens": 1000, "completion_tokens": 500, "cached_tokens": 400}))
    shown = ok(*run(client, "%%kimi -m kimi-k3 --effort low --display text\nWhat is 1 + 1?"))
    body = sim.chat_requests[-1].json
    assert body["model"] == "kimi-k3"
    assert body["thinking"] == {"type": "enabled", "keep": "all", "effort": "low"}
    assert "reasoning_effort" not in body
    assert "Two." in shown and "context 0.1% of 1,048,576" in shown
    # 600 uncached at $3, 400 cached at $0.30, 500 out at $15 per 1M tokens
    cost = (600 * 3 + 400 * 0.3 + 500 * 15) / 1_000_000
    out = ok(*run(client, "print(repr(_kimi.usage.cost), _kimi.usage.currency)"))
    assert f"{cost!r} USD" in out
    # The answer's reasoning stays in the history (keep: "all"), so the next turn sends it back.
    sim.queue(Reply(text="Four."))
    ok(*run(client, "%%kimi -m kimi-k3 --display none\nAnd 2 + 2?"))
    assistant = [m for m in sim.chat_requests[-1].json["messages"] if m["role"] == "assistant"]
    assert assistant and assistant[0]["content"] == "Two."
    assert assistant[0]["reasoning_content"] == "one plus one"  # byte for byte what came back


def test_effort_on_k26_is_a_notice_and_nothing_is_sent(sim, kernel):
    _, client = kernel
    sim.queue(Reply(text="fine"))
    shown = ok(*run(client, "%%kimi -m kimi-k2.6 --effort max --display text\nhello"))
    assert "effort" not in sim.chat_requests[-1].json["thinking"]
    assert "effort='max' was not sent: kimi-k2.6 has no thinking effort levels" in shown


def test_a_k3_agent_loop_runs_the_tool_and_sends_the_reasoning_back(sim, kernel):
    _, client = kernel
    sim.queue(
        Reply(reasoning="I should compute it.", tool_calls=[ToolCall("run_python", {"code": "k3_ran = 6 * 7"})]),
        Reply(text="It is 42."),
    )
    shown = ok(*run(client, "%%kimi -m kimi-k3 --effort high --agent --yes --display text\ncompute 6 x 7"))
    assert "It is 42." in shown
    out = ok(*run(client, "print(k3_ran)"))
    assert "42" in out
    first, second = sim.chat_requests[-2].json, sim.chat_requests[-1].json
    assert first["thinking"] == second["thinking"] == {"type": "enabled", "keep": "all", "effort": "high"}
    call = next(m for m in second["messages"] if m.get("tool_calls"))
    assert "reasoning_content" in call  # required on tool-call turns; byte for byte what came back
    assert any(m["role"] == "tool" for m in second["messages"])


def test_format_json_with_a_schema_sends_json_schema_and_retries_once(sim, kernel):
    _, client = kernel
    ok(*run(client, "invoice = {'type': 'object', 'properties': {'total': {'type': 'number'}}, 'required': ['total']}"))
    # -f json prefills "{" (partial mode): the first answer continues it; the retry is not prefilled.
    sim.queue(Reply(text='"sum": 3}'), Reply(text='{"total": 3.5}'))
    reply, messages = run(client, "%%kimi -m kimi-k3 -f json --schema invoice --display none\nthe invoice total")
    ok(reply, messages)
    first, second = sim.chat_requests[-2].json, sim.chat_requests[-1].json
    fmt = first["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "invoice"
    assert fmt["json_schema"]["schema"]["required"] == ["total"] and fmt["json_schema"]["strict"] is True
    assert "'total' is a required property" in json.dumps(second["messages"][-1])
    shown = [m for m in messages if m["msg_type"] == "display_data"]
    assert any(m["content"]["data"].get("application/json") == {"total": 3.5} for m in shown)
    # A model without json_schema gets JSON mode, still checked here.
    sim.queue(Reply(text='"total": 1}'))
    ok(*run(client, "%%kimi -m kimi-k2.5 -f json --schema invoice --display none\nagain"))
    assert sim.chat_requests[-1].json["response_format"] == {"type": "json_object"}


def test_map_with_a_schema_validates_retries_and_marks_rows(sim, kernel):
    _, client = kernel

    def answer(messages):
        text = json.dumps(messages[-1]["content"])
        if "deep" in text:
            return Reply(text="[" * 5000 + "]" * 5000)
        if "previous answer" in text:
            return Reply(text='{"label": "good", "score": 0.9}')
        if "first" in text:
            return Reply(text='{"label": "good"}')  # missing score: asked once more
        return Reply(text='{"label": "bad", "score": 0.1}')

    sim.on(r".", answer)
    code = ("import pandas as pd\n"
            "df = pd.DataFrame({'text': ['first row', 'second row', 'deep row']})\n"
            "out = kimi_jupyter.map('Rate: {text}', df, model='kimi-k3', effort='high', schema={'label': str, 'score': float},"
            " progress=False, use_cache=False)\n"
            "print(out.to_json(orient='records'))")
    out = ok(*run(client, code, timeout=120))
    rows = json.loads(out.strip().splitlines()[-1])
    assert rows[0]["label"] == "good" and rows[0]["score"] == 0.9 and rows[0]["error"] is None
    assert rows[1]["label"] == "bad" and rows[1]["error"] is None
    assert rows[2]["label"] is None and "deeper than" in rows[2]["error"] and "after one retry" in rows[2]["error"]
    sent = [r.json for r in sim.chat_requests]
    assert all(b["response_format"]["type"] == "json_schema" for b in sent)
    assert all(b["thinking"] == {"type": "enabled", "keep": "all", "effort": "high"} for b in sent)
    assert len(sent) == 5  # three rows, two of them asked once more


def test_percent_kimi_models_shows_the_windows_and_balance_works(sim, kernel):
    _, client = kernel
    out = ok(*run(client, "%kimi models"))
    k3 = next(line for line in out.splitlines() if " kimi-k3 " in line)
    assert "1,048,576" in k3 and "$3 / $0.3 / $15" in k3 and "effort low|high|max" in k3
    assert "262,144" in next(line for line in out.splitlines() if " kimi-k2.6 " in line)
    out = ok(*run(client, "%kimi balance"))
    assert "Balance: available $" in out and KEY not in out
    assert sim.requests[-1].headers["Authorization"] == f"Bearer {KEY}"  # the key went only where it belongs
