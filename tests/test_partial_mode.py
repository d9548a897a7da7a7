"""Partial mode against the simulator: prefills, the joined answer, `-f code`/`-f json`,
`--prefill`, and the fallback on providers whose servers do not take the field."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.testing.globalipapp import start_ipython

from kimi_jupyter import aask, ask
from kimi_jupyter.client import KimiClient
from kimi_jupyter.events import Notice
from kimi_jupyter.settings import resolve_settings
from kimi_jupyter.testing import KimiSimulator, Reply

KEY = "sk-test-simulator"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def ip(kimi_sim_env):
    start_ipython()
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "kimi_jupyter")
    shell.config.pop("Kimi", None)
    yield shell


def test_ask_prefill_is_sent_as_partial_and_joined_with_the_answer(kimi_sim_env):
    kimi_sim_env.queue(Reply(text=" 42.", reasoning="Counting."))
    response = ask("What is six times seven?", prefill="The answer is", display="none")
    last = kimi_sim_env.chat_requests[-1].messages[-1]
    assert last == {"role": "assistant", "content": "The answer is", "partial": True}
    assert response.text == "The answer is 42."


def test_format_code_with_the_demo_reply_gives_runnable_code(ip, kimi_sim_env, monkeypatch, capsys):
    inserted = []
    monkeypatch.setattr(ip, "set_next_input", lambda text, replace=False: inserted.append(text))
    ip.run_cell("%%kimi --new -f code\nwrite a function that summarizes numbers")
    response = ip.user_ns["_kimi"]
    assert response.text.startswith("```python\ndef summarize(values):")
    assert response.text.count("```") == 2  # the prefilled fence is not repeated
    (code,) = inserted
    compile(code, "<answer>", "exec")
    assert "```python\ndef summarize" in capsys.readouterr().out  # the display shows the joined text


def test_prefill_option_on_the_magic(ip, kimi_sim_env):
    kimi_sim_env.queue(Reply(text="yes, in three steps."))
    ip.run_cell('%%kimi --new --prefill "Sure," \nCan you plan it?')
    assert kimi_sim_env.chat_requests[-1].messages[-1]["content"] == "Sure,"
    assert ip.user_ns["_kimi"].text == "Sure,yes, in three steps."


def test_providers_without_partial_mode_fall_back(tmp_path):
    with KimiSimulator(api_key=KEY) as sim:
        settings = resolve_settings(explicit={"base_url": sim.url_for("openrouter"), "api_key": KEY,
                                              "provider": "openrouter", "model": "moonshotai/kimi-k2.5"},
                                    environ={})
        sim.queue(Reply(text="plain"))
        with KimiClient(settings) as client:
            stream = client.stream_chat([{"role": "user", "content": "hi"}], prefill="Sure,")
            events = list(stream)
        assert stream.response.text == "plain"
        assert any(isinstance(e, Notice) and "does not support partial mode" in e.text for e in events)
        assert "partial" not in sim.chat_requests[-1].messages[-1]
        from kimi_jupyter.partial import prefill_options

        assert prefill_options("code", None, settings) == {}  # -f code: the prompt's instruction alone


def test_the_simulator_enforces_where_partial_may_appear():
    with KimiSimulator(api_key=KEY) as sim:
        partial = {"role": "assistant", "content": "{", "partial": True}
        user = {"role": "user", "content": "json please"}
        misplaced = httpx.post(sim.base_url + "/chat/completions", headers=AUTH,
                               json={"model": "kimi-k2.5", "messages": [partial, user]})
        assert misplaced.status_code == 400 and "last message" in misplaced.json()["error"]["message"]
        gateway = httpx.post(sim.url_for("vllm") + "/chat/completions", headers=AUTH,
                             json={"model": "kimi-k2.5", "messages": [user, partial]})
        assert gateway.status_code == 400 and "partial" in gateway.json()["error"]["message"]
        ok = httpx.post(sim.base_url + "/chat/completions", headers=AUTH,
                        json={"model": "kimi-k2.5", "messages": [user, partial], "thinking": {"type": "disabled"}})
        text = ok.json()["choices"][0]["message"]["content"]
        assert not text.startswith("{") and text.endswith("}")  # the continuation only


def test_aask_joins_too(kimi_sim_env):
    kimi_sim_env.queue(Reply(text="world"))
    response = asyncio.run(aask("greet", prefill="hello "))
    assert response.text == "hello world"


def test_the_sidebar_prefill_option_goes_through_the_same_turn(kimi_sim_env):
    from kimi_jupyter.sidebar.chat import SidebarChat, handle_message

    kimi_sim_env.queue(Reply(text=" 42."))
    sent: list[dict] = []
    sidebar = SidebarChat(namespace={})
    handle_message({"action": "ask", "request_id": "p", "prompt": "Six times seven?",
                    "options": {"prefill": "The answer is"}}, sent.append, sidebar)
    assert kimi_sim_env.chat_requests[-1].messages[-1] == {"role": "assistant", "content": "The answer is",
                                                           "partial": True}
    assert sent[-1]["type"] == "done" and sent[-1]["response"]["text"] == "The answer is 42."
