"""Issue 15: the key reaches the model by no path (tools, ``{var}``, ``{In[n]}``, ``--cells``,
``ask()``), and a ``.env`` that points the key elsewhere is announced.

A real kernel (``tests/kernels.py``) talks to the real simulator on 127.0.0.1. The key is
in the environment; a ``.env`` next to the notebook sets the base URL, so the first turn
must name the host the key goes to. The notebook holds the key in a variable and in a
``%config`` cell; the model asks for it through ``get_variable`` and for IPython's history
variables. Every request body the simulator recorded, everything the cells showed,
``%kimi history`` and the response cache are searched for the key and for pieces of it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kimi_jupyter.testing import KimiSimulator, Reply, ToolCall

from .kernels import run, running_kernel, text_of

pytestmark = pytest.mark.timeout(240)

KEY = "sk-kimi-PATHCHECK-0123456789abcdefXYZ"
FORBIDDEN = (KEY, KEY[:12], KEY[-10:], "PATHCHECK")


def assert_clean(text: str, where: str) -> None:
    for piece in FORBIDDEN:
        assert piece not in text, f"{piece!r} found in {where}: {text[max(0, text.find(piece) - 120):][:300]}"


def bodies(sim: KimiSimulator) -> str:
    return "\n".join(json.dumps(r.json) for r in sim.requests if r.json is not None)


@pytest.fixture(scope="module")
def sim():
    with KimiSimulator(api_key=KEY) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, sim) -> Path:
    root = tmp_path_factory.mktemp("secrets-paths")
    (root / ".env").write_text(f"KIMI_BASE_URL={sim.base_url}  # the simulator\nKIMI_PROVIDER='moonshot'\n")
    return root


@pytest.fixture(scope="module")
def kernel(sim, workdir):
    with running_kernel({"MOONSHOT_API_KEY": KEY}, workdir) as (_, client):
        reply, _ = run(client, "%load_ext kimi_jupyter\nimport os\nmy_api_key = os.environ['MOONSHOT_API_KEY']\n"
                               "settings_blob = {'endpoint': 'x', 'token': my_api_key}")
        assert reply["status"] == "ok"
        yield client


def test_every_path_to_the_model_is_redacted(sim, kernel, workdir):
    sim.reset()
    # A %config cell that holds the key, as the attack did.
    reply, _ = run(kernel, f"%config Kimi.api_key = '{KEY}'\n%kimi trust-endpoint")
    assert reply["status"] == "ok"
    reply, msgs = run(kernel, "print(get_ipython().execution_count)")
    config_count = int(text_of(msgs).strip()) - 1

    # 1. The agent asks for the key's variable and for IPython's history variables.
    sim.queue(
        Reply(reasoning="I need the variables.", text="Let me look.", tool_calls=[
            ToolCall("get_variable", {"name": "my_api_key"}),
            ToolCall("get_variable", {"name": "settings_blob"}),
            ToolCall("get_variable", {"name": "_ih"}),
            ToolCall("get_variable", {"name": "In"}),
            ToolCall("get_variable", {"name": f"_i{config_count}"}),
            ToolCall("get_variable", {"name": "_oh"}),
        ]),
        Reply(text="Seen."),
    )
    reply, msgs = run(kernel, "%%kimi --agent --cache --display text\nwhat is in my namespace?")
    shown = text_of(msgs)
    assert reply["status"] == "ok" and "Seen." in shown
    tool_results = [m for r in sim.chat_requests for m in (r.json or {}).get("messages", []) if m.get("role") == "tool"]
    assert len(tool_results) == 6
    assert "***" in tool_results[0]["content"] and "***" in tool_results[1]["content"]
    for hidden in tool_results[2:]:
        assert "No variable named" in hidden["content"], hidden

    # 2. --cells after the %config cell, {In[n]} of it, and {var} of the key.
    sim.queue(Reply(text="Cells seen."), Reply(text="Input seen."), Reply(text="Var seen."))
    reply, msgs = run(kernel, "%%kimi --cells 4 --display text --new\nwhat did I run?")
    shown += text_of(msgs)
    reply, msgs = run(kernel, f"%%kimi --display text --new\nexplain {{In[{config_count}]}}")
    shown += text_of(msgs)
    reply, msgs = run(kernel, "%%kimi --display text --new\nis this right: {my_api_key} / {settings_blob}")
    shown += text_of(msgs)
    assert "Cells seen." in shown and "Input seen." in shown and "Var seen." in shown

    # 3. ask() with the key in its prompt.
    sim.queue(Reply(text="Asked."))
    reply, msgs = run(kernel, "import kimi_jupyter\nr = kimi_jupyter.ask('key: ' + my_api_key, display='none')\n"
                              "print(r.text, r.error)")
    shown += text_of(msgs)
    assert "Asked. None" in shown

    sent = bodies(sim)
    assert "%config Kimi.api_key = '***'" in sent  # the --cells source, redacted
    assert sent.count("***") >= 5
    assert_clean(sent, "a request body")
    # The key really was used, in the Authorization header only.
    assert all(r.headers["Authorization"] == f"Bearer {KEY}" for r in sim.chat_requests)

    reply, msgs = run(kernel, "%kimi history")
    shown += text_of(msgs)
    assert_clean(shown, "the cells' output")
    cache = "\n".join(p.read_text() for p in (workdir / ".kimi-cache").rglob("*.json"))
    assert cache and "get_variable" in cache
    assert_clean(cache, "the response cache")


def test_the_first_turn_names_the_host_the_env_file_sends_the_key_to(sim, kernel):
    sim.reset()
    run(kernel, "%config Kimi.api_key = None")
    sim.queue(Reply(text="one"), Reply(text="two"))
    # Issue 26: the first request waits for the user's confirmation; nothing is sent before it.
    _, refused = run(kernel, "%%kimi --display text --new\nhello")
    refused_text = text_of(refused)
    assert "Not sent: your API key (from environment (MOONSHOT_API_KEY)) would go to 127.0.0.1" in refused_text
    assert ".env (KIMI_BASE_URL)" in refused_text and "%kimi trust-endpoint" in refused_text
    assert not sim.chat_requests
    _, trusted = run(kernel, "%kimi trust-endpoint")
    assert "Trusted for this kernel" in text_of(trusted)
    _, first = run(kernel, "%%kimi --display text --new\nhello")
    _, second = run(kernel, "%%kimi --display text --new\nhello again")
    first_text, second_text = text_of(first), text_of(second)
    assert "Your API key (from environment (MOONSHOT_API_KEY)) will be sent to 127.0.0.1" in first_text
    assert ".env (KIMI_BASE_URL)" in first_text and "one" in first_text
    assert "will be sent to" not in second_text and "two" in second_text
