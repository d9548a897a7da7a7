"""Response cache and replay, spend limits and token pre-flight, through the real magic."""

from __future__ import annotations

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.testing.globalipapp import start_ipython

from kimi_jupyter.session import get_session
from kimi_jupyter.testing import Reply, ToolCall

KEY = "sk-test-simulator"


@pytest.fixture
def ip(kimi_sim_env, tmp_path):
    start_ipython()
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "kimi_jupyter")
    shell.config.pop("Kimi", None)
    shell.run_line_magic("config", f"Kimi.cache_dir = {str(tmp_path / 'cache')!r}")
    shell.user_ns.pop("agent_ran", None)
    yield shell
    shell.config.pop("Kimi", None)


def kimi(ip, line, body):
    ip.run_cell(f"%%kimi --display text {line}\n{body}")
    return ip.user_ns["_kimi"]


def chat_count(sim):
    return len(sim.chat_requests)


def test_cached_cell_replays_identically_without_a_request(ip, kimi_sim_env, tmp_path, capsys):
    kimi_sim_env.queue(Reply(text="Cached answer.", reasoning="Thought once.",
                             usage={"prompt_tokens": 50, "completion_tokens": 10}))
    first = kimi(ip, "--cache --new", "What is caching?")
    assert chat_count(kimi_sim_env) == 1
    second = kimi(ip, "--cache --new", "What is caching?")
    assert chat_count(kimi_sim_env) == 1  # no request the second time
    assert (second.text, second.reasoning, second.usage) == (first.text, first.reasoning, first.usage)
    assert any("Replayed from the response cache" in str(getattr(e, "text", "")) for e in second.events)
    assert "nothing was billed" in capsys.readouterr().out
    assert get_session().conversation.messages[-1]["content"] == "Cached answer."
    # The usage ledger counts the replay, but no tokens or money for it.
    assert get_session().ledger.rows["replayed"].requests == 1
    assert get_session().ledger.total.usage.prompt == 50
    # A different prompt is a miss.
    kimi_sim_env.queue(Reply(text="Other."))
    kimi(ip, "--cache --new", "What is caching, really?")
    assert chat_count(kimi_sim_env) == 2
    files = list((tmp_path / "cache").rglob("*.json"))
    assert len(files) == 2 and all(KEY not in f.read_text() for f in files)
    ip.run_line_magic("kimi", "cache info")
    assert "2 entries" in capsys.readouterr().out
    ip.run_line_magic("kimi", "cache clear")
    assert "Removed 2" in capsys.readouterr().out and not list((tmp_path / "cache").rglob("*.json"))


def test_cache_setting_and_image_content_in_the_key(ip, kimi_sim_env):
    ip.run_line_magic("config", "Kimi.cache = True")
    ip.run_cell("import numpy as np\nimg = np.zeros((16, 16, 3), dtype='uint8')")
    kimi_sim_env.queue(Reply(text="black"), Reply(text="white"))
    assert kimi(ip, "--new", "colour of {img}?").text == "black"
    assert kimi(ip, "--new", "colour of {img}?").text == "black" and chat_count(kimi_sim_env) == 1
    ip.run_cell("img = np.full((16, 16, 3), 255, dtype='uint8')")
    assert kimi(ip, "--new", "colour of {img}?").text == "white" and chat_count(kimi_sim_env) == 2


def test_agent_turn_replays_its_tool_steps_without_running_them(ip, kimi_sim_env):
    kimi_sim_env.queue(
        Reply(reasoning="run it", tool_calls=[ToolCall("run_python", {"code": "agent_ran = 1"})]),
        Reply(reasoning="done", text="Set it."),
    )
    first = kimi(ip, "--agent --yes --cache --new", "set the flag")
    assert ip.user_ns.pop("agent_ran") == 1 and chat_count(kimi_sim_env) == 2
    second = kimi(ip, "--agent --yes --cache --new", "set the flag")
    assert chat_count(kimi_sim_env) == 2 and "agent_ran" not in ip.user_ns
    # The replay shows the recorded steps as recorded, never as run (or approved) now.
    assert [s.name for s in first.tool_steps] == ["run_python"] and second.tool_steps == []
    assert any("run_python: replayed, not run in this replay" in n for n in second.notices)
    assert any("was approved then; nothing was asked or run in this replay" in n for n in second.notices)
    # Only the request and its replayed answer enter the memory, never the entry's messages.
    roles = [m["role"] for m in get_session().conversation.messages]
    assert roles == ["user", "assistant"]


def test_session_budget_warns_at_80_percent_and_refuses_past_it(ip, kimi_sim_env, capsys):
    # kimi-k2.5 on the cn platform: 4 CNY / 1M input, 21 CNY / 1M output.
    usage = {"prompt_tokens": 100_000, "completion_tokens": 0}  # 0.40 CNY each
    kimi_sim_env.queue(Reply(text="one", usage=usage), Reply(text="two", usage=usage), Reply(text="three", usage=usage))
    ip.run_line_magic("config", "Kimi.budget = 1.0")
    kimi(ip, "--new", "first")
    kimi(ip, "--new", "second")
    capsys.readouterr()
    third = kimi(ip, "--new", "third")
    assert "80% of the session budget" in capsys.readouterr().out and third.text == "three"
    refused = kimi(ip, "--new", "fourth")
    assert chat_count(kimi_sim_env) == 3  # nothing was sent
    assert refused.error.startswith("Refused: this session has spent ¥1.2 of its ¥1 budget")


def test_a_spent_budget_still_replays_from_the_cache_but_refuses_anything_new(ip, kimi_sim_env):
    usage = {"prompt_tokens": 300_000, "completion_tokens": 0}  # 1.20 CNY
    kimi_sim_env.queue(Reply(text="paid once", usage=usage))
    ip.run_line_magic("config", "Kimi.cache = True")
    ip.run_line_magic("config", "Kimi.budget = 1.0")
    first = kimi(ip, "--new", "the question")
    assert first.text == "paid once" and chat_count(kimi_sim_env) == 1
    again = kimi(ip, "--new", "the question")  # replayed: nothing sent, nothing billed
    assert again.error is None and again.text == "paid once" and chat_count(kimi_sim_env) == 1
    refused = kimi(ip, "--new", "another question")
    assert refused.error.startswith("Refused: this session has spent") and chat_count(kimi_sim_env) == 1


def test_per_turn_limit_refuses_an_expensive_prompt_before_sending(ip, kimi_sim_env):
    ip.run_line_magic("config", "Kimi.max_turn_cost = 0.0001")
    response = kimi(ip, "--new", "summarise: " + "lorem ipsum " * 2000)
    assert chat_count(kimi_sim_env) == 0
    assert "over the per-turn limit of ¥0.0001" in response.error


def test_preflight_asks_the_server_only_near_a_limit_and_only_for_what_is_new(ip, kimi_sim_env, capsys):
    ip.run_line_magic("config", "Kimi.preflight_tokens = 100")
    ip.run_cell("import numpy as np\nbig = (np.random.default_rng(1).random((600, 800, 3)) * 255).astype('uint8')")
    kimi_sim_env.queue(Reply(text="noise"), Reply(text="more noise"), Reply(text="still noise"))
    kimi(ip, "--new", "what is {big}?")
    out = capsys.readouterr().out
    estimates = [r for r in kimi_sim_env.requests if r.path.endswith("/tokenizers/estimate-token-count")]
    assert estimates == []  # far from every limit: the local estimate is trusted
    assert "Pre-flight: this prompt is about" in out and "estimated locally" in out and "¥" in out
    # Near the per-turn limit (the local estimate grows ~3,900 tokens, ~¥0.016, a turn): ask the server,
    # about the new message only, never the whole conversation again.
    ip.run_line_magic("config", "Kimi.max_turn_cost = 0.035")
    kimi(ip, "", "and {big} again?")
    kimi(ip, "", "and once more, {big}?")
    out = capsys.readouterr().out
    estimates = [r for r in kimi_sim_env.requests if r.path.endswith("/tokenizers/estimate-token-count")]
    assert len(estimates) == 2 and "counted by the server" in out
    assert all(len(r.json["messages"]) == 1 for r in estimates)
