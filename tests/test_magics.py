"""%%kimi and %kimi in a real IPython shell against the simulator."""

from __future__ import annotations

import base64
import io
import json

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.testing.globalipapp import start_ipython

from kimi_jupyter.testing import Fault, Reply


@pytest.fixture
def ip(kimi_sim_env):
    start_ipython()  # once per process; later calls are no-ops
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "kimi_jupyter")
    shell.user_ns.pop("_kimi", None)
    shell.config.pop("Kimi", None)
    yield shell
    shell.config.pop("Kimi", None)


def cell(ip, line, body):
    return ip.run_cell(f"%%kimi {line}\n{body}")


def sent(sim, index=-1):
    return sim.chat_requests[index].json


def decode_image(part):
    from PIL import Image

    header, data = part["image_url"]["url"].split(",", 1)
    return header, Image.open(io.BytesIO(base64.b64decode(data)))


def test_prompt_with_dataframe_and_figure_is_one_multimodal_message(ip, kimi_sim_env, capsys):
    ip.run_cell("import pandas as pd, matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
                "df = pd.DataFrame({'price': [1.5, 2.5, None], 'city': ['a', 'b', 'c']})\n"
                "fig, ax = plt.subplots(figsize=(4, 3), dpi=100); ax.plot([1, 2, 3])")
    kimi_sim_env.queue(Reply(text="Looks fine.", reasoning="Checking the chart."))
    cell(ip, "", "Compare {df} with this chart: {fig}. Keep {{braces}} and {x + 1}.")
    body = sent(kimi_sim_env)
    assert body["model"] == "kimi-k2.5" and body["stream"] is True and body["thinking"] == {"type": "enabled"}
    assert "temperature" not in body
    (message,) = body["messages"]
    parts = message["content"]
    assert [p["type"] for p in parts] == ["text", "image_url", "text"]
    assert "price" in parts[0]["text"] and "3 rows x 2 columns" in parts[0]["text"]
    assert "[image: fig]" in parts[0]["text"]
    assert parts[2]["text"].startswith(". Keep {braces} and {x + 1}.")
    header, image = decode_image(parts[1])
    assert header == "data:image/png;base64" and image.format == "PNG"
    assert 300 < image.width <= 400 and 200 < image.height <= 300  # 4x3 in at 100 dpi, tight bbox
    out = capsys.readouterr().out
    assert "Looks fine." in out and "Checking the chart." in out
    assert ip.user_ns["_kimi"].text == "Looks fine."


def test_memory_across_cells_and_new(ip, kimi_sim_env):
    kimi_sim_env.queue(Reply(text="first answer"))
    kimi_sim_env.queue(Reply(text="second answer"))
    kimi_sim_env.queue(Reply(text="fresh"))
    cell(ip, "", "first question")
    cell(ip, "--no-think", "second question")
    second = sent(kimi_sim_env)["messages"]
    assert [m["role"] for m in second] == ["user", "assistant", "user"]
    assert second[1]["content"] == "first answer" and second[2]["content"] == "second question"
    assert sent(kimi_sim_env)["thinking"] == {"type": "disabled"}
    cell(ip, "--new --system 'Be brief.'", "third")
    assert sent(kimi_sim_env)["messages"] == [{"role": "system", "content": "Be brief."},
                                              {"role": "user", "content": "third"}]


def test_format_code_puts_code_into_the_next_cell(ip, kimi_sim_env, monkeypatch):
    inserted = []
    monkeypatch.setattr(ip, "set_next_input", lambda text, replace=False: inserted.append((text, replace)))
    # Partial mode: the answer is prefilled with an opening fence and the model continues it.
    kimi_sim_env.queue(Reply(text="import math\nprint(math.pi)\n```\nDone."))
    cell(ip, "-f code -m kimi-k2.5 --max-tokens 500", "print pi")
    body = sent(kimi_sim_env)
    assert body["max_tokens"] == 500
    assert "```python fenced block" in body["messages"][-2]["content"]
    assert body["messages"][-1] == {"role": "assistant", "content": "```python\n", "partial": True}
    assert ip.user_ns["_kimi"].text.startswith("```python\nimport math")
    assert inserted == [("import math\nprint(math.pi)", False)]


def test_format_json_uses_json_mode_and_shows_the_value(ip, kimi_sim_env):
    kimi_sim_env.queue(Reply(text='"answer": 42}'))  # continues the prefilled "{" (partial mode)
    cell(ip, "-f json", "give json")
    assert sent(kimi_sim_env)["response_format"] == {"type": "json_object"}
    assert sent(kimi_sim_env)["messages"][-1] == {"role": "assistant", "content": "{", "partial": True}
    assert ip.user_ns["_kimi"].json() == {"answer": 42}


@pytest.mark.parametrize("line,body,message", [
    ("--bogus", "x", "unrecognized arguments: --bogus"),
    ("--max-tokens -3", "x", "invalid positive integer value"),
    ("-f yaml", "x", "invalid choice: 'yaml'"),
    ("", "tell me about {nope}", "Name 'nope' is not defined"),
    ("", "   ", "The cell is empty"),
    ("--plot", "what is wrong?", "no earlier cell displayed a plot"),
    ("--yes", "x", "only apply with --agent"),
    ("-m", "x", "expected one argument"),
])
def test_bad_input_says_what_to_do_and_sends_nothing(ip, kimi_sim_env, capsys, line, body, message):
    from kimi_jupyter.context import get_plot_capture

    get_plot_capture(ip).clear()  # plots from other tests in this shared shell
    result = cell(ip, line, body)
    captured = capsys.readouterr()
    assert type(result.error_in_exec).__name__ == "CellFailed"  # the cell fails: Run All stops
    assert message in captured.err + captured.out
    assert "Traceback" not in captured.err + captured.out
    assert kimi_sim_env.chat_requests == []


def test_missing_key_is_one_clear_line(ip, kimi_sim_env, monkeypatch, capsys):
    monkeypatch.delenv("MOONSHOT_API_KEY")
    cell(ip, "", "hello")
    out = capsys.readouterr()
    assert "No API key is set" in out.out + out.err and "Traceback" not in out.out + out.err
    assert kimi_sim_env.chat_requests == []


def test_client_errors_end_in_one_message_and_no_memory(ip, kimi_sim_env, capsys):
    kimi_sim_env.fault(Fault.quota())
    cell(ip, "", "hello")
    out = capsys.readouterr().out
    assert "quota is exhausted" in out and "Traceback" not in out
    assert len(ip.user_ns["_kimi"].text) == 0 and ip.user_ns["_kimi"].error
    kimi_sim_env.queue(Reply(text="ok now"))
    cell(ip, "", "again")
    assert [m["role"] for m in sent(kimi_sim_env)["messages"]] == ["user"]


def test_config_overrides_environment_and_shows_sources(ip, kimi_sim_env, capsys):
    ip.run_line_magic("config", "Kimi.model = 'kimi-k2-thinking'")
    ip.run_line_magic("config", "Kimi.frame_budget = 300")
    kimi_sim_env.queue(Reply(text="x"))
    cell(ip, "", "hi")
    assert sent(kimi_sim_env)["model"] == "kimi-k2-thinking"
    capsys.readouterr()
    ip.run_line_magic("kimi", "config")
    out = capsys.readouterr().out
    import re

    assert re.search(r"^model +kimi-k2-thinking +\[%config\]$", out, re.M)
    assert re.search(r"^frame_budget +300 +\[%config\]$", out, re.M)
    assert "sk-test-simulator" not in out


def test_line_magic_commands(ip, kimi_sim_env, capsys):
    kimi_sim_env.queue(Reply(text="answer one", usage={"prompt_tokens": 100, "completion_tokens": 20, "cached_tokens": 40}))
    ip.run_cell("import numpy as np\nimg = (np.random.default_rng(0).random((32, 32, 3)) * 255).astype('uint8')")
    cell(ip, "", "look {img}")
    capsys.readouterr()
    ip.run_line_magic("kimi", "history")
    out = capsys.readouterr().out
    assert "user: look [image: img] [image]" in out and "assistant: answer one" in out and "base64" not in out
    ip.run_line_magic("kimi", "usage")
    out = capsys.readouterr().out
    assert "magic" in out and "100" in out and "40" in out and "¥" in out
    ip.run_line_magic("kimi", "models")
    assert "* kimi-k2.5" in capsys.readouterr().out
    ip.run_line_magic("kimi", "reset")
    ip.run_line_magic("kimi", "history")
    assert "empty" in capsys.readouterr().out
    ip.run_line_magic("kimi", "help")
    assert "%%kimi [options]" in capsys.readouterr().out
    ip.run_line_magic("kimi", "frobnicate")
    assert "Unknown %kimi command" in capsys.readouterr().err


def test_in_and_out_references(ip, kimi_sim_env):
    ip.run_cell("21 * 2", store_history=True)
    count = ip.execution_count - 1
    kimi_sim_env.queue(Reply(text="ok"))
    cell(ip, "", f"source {{In[{count}]}} gave {{Out[{count}]}}")
    text = sent(kimi_sim_env)["messages"][-1]["content"]
    text = text if isinstance(text, str) else json.dumps(text)
    assert "21 * 2" in text and "42" in text


def test_cells_option_attaches_recent_cells(ip, kimi_sim_env):
    ip.run_cell("alpha = 'first cell marker'", store_history=True)
    ip.run_cell("print('second')", store_history=True)
    kimi_sim_env.queue(Reply(text="ok"))
    ip.run_cell("%%kimi --cells 2\nexplain", store_history=True)
    content = sent(kimi_sim_env)["messages"][-1]["content"]
    text = content if isinstance(content, str) else content[0]["text"]
    assert "first cell marker" in text and "print('second')" in text


def test_ask_accepts_the_same_multimodal_inputs(kimi_sim_env):
    import pandas as pd

    import kimi_jupyter

    kimi_sim_env.queue(Reply(text="answer", reasoning="why"))
    frame = pd.DataFrame({"x": range(5)})
    r = kimi_jupyter.ask("Describe {frame} please {not_a_placeholder}", frame, display="none")
    assert (r.text, r.reasoning, r.finish_reason) == ("answer", "why", "stop")
    content = sent(kimi_sim_env)["messages"][-1]["content"]
    text = content if isinstance(content, str) else " ".join(p.get("text", "") for p in content)
    assert "{frame}" in text and "{not_a_placeholder}" in text and "5 rows x 1 columns" in text
    r = kimi_jupyter.ask("hi {frame}", namespace={"frame": frame}, display="none", model="moonshot-v1-8k")
    assert sent(kimi_sim_env)["model"] == "moonshot-v1-8k"
    r = kimi_jupyter.ask("hi {missing}", namespace={}, display="none")
    assert "missing" in r.error and r.text == ""


def test_plot_option_attaches_the_latest_displayed_plot_and_names_its_cell(ip, kimi_sim_env):
    ip.run_cell("import io, base64\nfrom PIL import Image\nbuf = io.BytesIO()\n"
                "Image.new('RGB', (40, 30), 'red').save(buf, 'PNG')\npng = base64.b64encode(buf.getvalue()).decode()",
                store_history=True)
    result = ip.run_cell("from IPython.display import publish_display_data\n"
                         "publish_display_data({'image/png': png, 'text/plain': '<plot>'})", store_history=True)
    kimi_sim_env.queue(Reply(text="A red rectangle."))
    ip.run_cell("%%kimi --plot --display none\nWhat is this?", store_history=True)
    parts = sent(kimi_sim_env)["messages"][-1]["content"]
    assert f"[plot displayed by cell {result.execution_count}]" in parts[0]["text"]
    _, image = decode_image(parts[1])
    assert image.size == (40, 30)


def test_three_cells_with_different_model_and_max_tokens_reuse_one_connection(ip, kimi_sim_env):
    """-m and --max-tokens are per-call options: the cells share one pooled connection
    (the pool is keyed by the `Connection`, not by the whole settings)."""
    from kimi_jupyter.session import get_session

    kimi_sim_env.on(r"pooled", Reply(text="ok"))
    get_session().close()  # start from no pool
    for line in ("--display none", "--display none -m kimi-k2-turbo-preview", "--display none --max-tokens 64"):
        assert cell(ip, line, "pooled question").error_in_exec is None
    sent = kimi_sim_env.chat_requests[-3:]
    assert [r.json["model"] for r in sent][1] == "kimi-k2-turbo-preview" and sent[2].json["max_tokens"] == 64
    (http,) = get_session()._clients.values()
    (connection,) = http._transport._pool.connections
    assert "Request Count: 3" in connection.info(), connection.info()
