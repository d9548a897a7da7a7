"""`--web` against the simulator: thinking off for the turn that offers $web_search (the
simulator refuses it otherwise, as Moonshot does), the search's reported cost counted and
said, in the magic, ask() and `%kimi usage`."""

from __future__ import annotations

import json

import httpx
import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.testing.globalipapp import start_ipython

from kimi_jupyter import ask
from kimi_jupyter.session import get_session
from kimi_jupyter.testing import Reply, ToolCall
from kimi_jupyter.web import searches_for

SEARCH_ARGS = {"search_result": {"search_id": "s-1"}, "usage": {"total_tokens": 1234}}


@pytest.fixture
def ip(kimi_sim_env):
    start_ipython()
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "kimi_jupyter")
    shell.config.pop("Kimi", None)
    yield shell


def script_search(sim) -> None:
    sim.queue(Reply(tool_calls=[ToolCall("$web_search", SEARCH_ARGS)]), Reply(text="It rained in Paris."))


def test_the_simulator_refuses_web_search_with_thinking_on(kimi_sim):
    body = {"model": "kimi-k2.5", "messages": [{"role": "user", "content": "news?"}],
            "tools": [{"type": "builtin_function", "function": {"name": "$web_search"}}]}
    headers = {"Authorization": "Bearer sk-test-simulator"}
    refused = httpx.post(kimi_sim.base_url + "/chat/completions", headers=headers, json=body)
    assert refused.status_code == 400 and "thinking" in refused.json()["error"]["message"]
    body["thinking"] = {"type": "disabled"}
    assert httpx.post(kimi_sim.base_url + "/chat/completions", headers=headers, json=body).status_code == 200


def test_magic_web_switches_thinking_off_and_counts_the_search(ip, kimi_sim_env, capsys):
    script_search(kimi_sim_env)
    ip.run_cell("%%kimi --new --agent --web\nWhat was the weather in Paris yesterday?")
    out = capsys.readouterr().out
    first, second = kimi_sim_env.chat_requests[-2:]
    assert first.json["thinking"] == {"type": "disabled"} and second.json["thinking"] == {"type": "disabled"}
    assert [r.status for r in (first, second)] == [200, 200]
    tool_message = second.messages[-1]
    assert tool_message["role"] == "tool" and json.loads(tool_message["content"]) == SEARCH_ARGS
    assert "thinking is switched off for this turn" in out
    assert "Web search ran on the provider: 1,234 result tokens" in out
    assert ip.user_ns["_kimi"].text == "It rained in Paris."
    ip.run_line_magic("kimi", "usage")
    assert "Web searches: 1 (1,234 result tokens reported" in capsys.readouterr().out


def test_ask_agent_web_does_the_same(kimi_sim_env, capsys):
    from IPython.testing.globalipapp import start_ipython

    start_ipython()
    script_search(kimi_sim_env)
    before = searches_for(get_session()).count
    response = ask("news from Paris?", agent=True, web=True, display="text")
    assert response.error is None and response.text == "It rained in Paris."
    assert all(r.json["thinking"] == {"type": "disabled"} for r in kimi_sim_env.chat_requests[-2:])
    assert searches_for(get_session()).count == before + 1
    assert "thinking is switched off" in capsys.readouterr().out
