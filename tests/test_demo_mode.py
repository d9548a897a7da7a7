"""The demo tells the truth: what a user of `.ci/lab` without a key meets.

The demo simulator is ``python -m kimi_jupyter.testing --script notebooks/harness/replies.json``
(started here as `.ci/lab` starts it, or in-process with the same script): an unscripted
"Fix with Kimi" proposes a minimal change to *that* cell or says it has none; the stand-in
answer says how to set a key; the README's ``map()`` example fills its column with
categories; the Batch API runs on the accelerated clock, and batch progress shows rows and
(estimated) tokens as they finish.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.testing.globalipapp import start_ipython

import kimi_jupyter
from kimi_jupyter.fix import FailingCell, build_fix_prompt, trim_traceback
from kimi_jupyter.session import get_session
from kimi_jupyter.testing import KimiSimulator
from kimi_jupyter.testing.__main__ import _parser
from kimi_jupyter.testing.batches import DEMO_BATCH_SPEED
from kimi_jupyter.testing.demo_fix import minimal_fix
from kimi_jupyter.testing.pytest_plugin import SIMULATOR_API_KEY

from .demo_sim import DEMO_KEY, SCRIPT, demo_simulator

REPO = Path(__file__).resolve().parents[1]
LABELS = ("billing", "shipping", "product", "praise")


@pytest.fixture
def scripted(kimi_sim_env: KimiSimulator) -> KimiSimulator:
    """The in-process simulator with the demo's script loaded (the same replies as the demo)."""
    kimi_sim_env.load_script(SCRIPT)
    return kimi_sim_env


@pytest.fixture
def shell(scripted):
    start_ipython()
    sh = InteractiveShell.instance()
    sh.run_line_magic("load_ext", "kimi_jupyter")
    sh.run_line_magic("config", "Kimi.display = 'none'")
    yield sh
    sh.config.pop("Kimi", None)


def _fail(shell, source: str) -> BaseException:
    result = shell.run_cell(source, store_history=True)
    assert result.error_in_exec is not None
    return result.error_in_exec


# -- Fix with Kimi on an error no script knows ---------------------------------------------------
def test_an_unscripted_fix_corrects_the_misspelt_name_in_that_cell_only(shell, scripted, capsys):
    shell.run_cell("monthly_total = 120\nregions = ['north', 'south']", store_history=True)
    source = "share = monthly_totl / len(regions)  # monthly_totl per region\nprint(share)"
    _fail(shell, source)
    shell.run_line_magic("kimi", "fix")
    out = capsys.readouterr().out
    fixed = "share = monthly_total / len(regions)  # monthly_totl per region\nprint(share)"
    assert shell.user_ns["_kimi"].code.strip() == fixed  # the comment keeps its text: names only
    assert f"-{source.splitlines()[0]}" in out and f"+{fixed.splitlines()[0]}" in out
    assert "summarize" not in shell.user_ns["_kimi"].text
    assert "closest defined name is `monthly_total`" in shell.user_ns["_kimi"].text
    shell.run_cell(shell.user_ns["_kimi"].code, store_history=True)  # Accept -> Run cell works
    assert shell.user_ns["share"] == 60


def test_an_unscripted_fix_with_nothing_to_correct_says_so_and_proposes_no_code(shell, scripted, capsys):
    _fail(shell, "ratio = 3 / 0")
    shell.run_line_magic("kimi", "fix")
    said = capsys.readouterr()
    assert "Kimi proposed no code" in said.err and "I have no fix for this ZeroDivisionError" in said.err
    assert "MOONSHOT_API_KEY" in said.err
    assert shell.user_ns["_kimi"].code == "" and "```" not in shell.user_ns["_kimi"].text
    assert "+" not in said.out  # no diff was shown


def test_the_demo_fixes_a_key_error_with_the_closest_column(shell):
    shell.run_cell("import pandas as pd\nsales = pd.DataFrame({'region': ['n'], 'units': [2], 'price': [3.0]})",
                   store_history=True)
    error = _fail(shell, "sales['revenue'] = sales['units'] * sales['unit_prices']")
    cell = FailingCell("sales['revenue'] = sales['units'] * sales['unit_prices']", trim_traceback(error, shell),
                       execution_count=shell.execution_count - 1)
    found = minimal_fix(build_fix_prompt(shell, cell, get_session().settings()))
    assert found is not None
    assert found[1] == "sales['revenue'] = sales['units'] * sales['price']"


def test_a_fix_prompt_without_an_error_the_demo_can_correct_gets_no_code():
    prompt = ("Propose a minimal fix for this failing notebook cell. ...\n\nFailing cell:\n```python\n"
              "x = undefined_thing\n```\n\nError (traceback trimmed to the frames that matter):\n```\n"
              "NameError: name 'undefined_thing' is not defined\n```")
    assert minimal_fix(prompt) is None  # no name close to it: no guess


# -- the stand-in answer and the README's map() example ---------------------------------------------
def test_the_stand_in_answer_says_how_to_set_a_key(scripted):
    payload = {"model": "kimi-k2.5", "messages": [{"role": "user", "content": "Tell me a joke about pandas."}]}
    answer = httpx.post(scripted.base_url + "/chat/completions", json=payload, timeout=10,
                        headers={"Authorization": f"Bearer {SIMULATOR_API_KEY}"}).json()
    text = answer["choices"][0]["message"]["content"]
    assert "MOONSHOT_API_KEY" in text and "notebooks/.env" in text
    assert "KIMI_BASE_URL" not in text


def _readme_map_example() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    found = re.search(r"^out = kimi_jupyter\.map\(\"Classify[^\n]*\n[^\n]*\)\n", readme, flags=re.M)
    assert found is not None, "the README's map() example moved"
    return found.group(0)


def test_the_readme_map_example_gives_categories_in_demo_mode(monkeypatch):
    tickets = pd.DataFrame({"text": [
        "I was charged twice for order #1001",
        "Order #1002 has not arrived after two weeks",
        "The kettle from order #1003 stopped working",
        "Thanks, order #1004 was perfect",
        "Please refund order #1005, the invoice is wrong",
        "Where is my order #1006? Something about it.",
    ]})
    with demo_simulator() as url:
        monkeypatch.setenv("KIMI_BASE_URL", url)
        monkeypatch.setenv("MOONSHOT_API_KEY", DEMO_KEY)
        monkeypatch.setenv("KIMI_PROVIDER", "moonshot")
        namespace = {"kimi_jupyter": kimi_jupyter, "tickets": tickets}
        exec(_readme_map_example(), namespace)
    out = namespace["out"]
    assert out["category_error"].isna().all(), out["category_error"].tolist()
    assert out["category"].tolist()[:5] == ["billing", "shipping", "product", "praise", "billing"]
    assert out["category"].isin(LABELS).all()  # every row gets one of the labels, nothing else


# -- the Batch API's clock and progress ----------------------------------------------------------------
def test_the_demo_runs_batches_on_the_accelerated_clock_and_keeps_a_real_time_flag():
    assert _parser().parse_args([]).batch_speed == DEMO_BATCH_SPEED == 3600
    assert _parser().parse_args(["--real-time"]).batch_speed == 1.0
    assert _parser().parse_args(["--batch-speed", "50"]).batch_speed == 50
    with pytest.raises(SystemExit):
        _parser().parse_args(["--real-time", "--batch-speed", "50"])


def test_batch_progress_shows_rows_and_tokens_as_they_finish(monkeypatch, capsys):
    # A slow clock (50x: the 40 rows finish over about two seconds) so the progress is seen.
    with KimiSimulator(api_key=SIMULATOR_API_KEY, batch_speed=50) as sim:
        monkeypatch.setenv("KIMI_BASE_URL", sim.base_url)
        monkeypatch.setenv("MOONSHOT_API_KEY", SIMULATOR_API_KEY)
        monkeypatch.setenv("KIMI_PROVIDER", "moonshot")
        sim.on(r"ticket", "billing")
        rows = [f"ticket {i}: charged twice" for i in range(40)]
        out = kimi_jupyter.map("Classify this ticket: {value}", rows, engine="batch", thinking=False,
                               progress="text", poll_interval=0.05)
    assert list(out) == ["billing"] * 40
    err = capsys.readouterr().err
    frames = re.findall(r"(\d+)/40 rows · ~([\d,]+) prompt tokens \(estimated\)", err)
    midway = [(int(done), int(tokens.replace(",", ""))) for done, tokens in frames if 0 < int(done) < 40]
    assert midway, err  # rows came in while the batch ran ...
    assert all(tokens > 0 for _, tokens in midway)  # ... with their tokens, not "0 tokens" until the end
    assert [t for _, t in midway] == sorted(t for _, t in midway)
    final = err.rstrip().splitlines()[-1]
    assert "40/40 rows done" in final and "estimated" not in final  # exact counts once collected


def test_only_a_request_for_a_label_gets_a_bare_label():
    from kimi_jupyter.testing.demo_labels import classify

    assert classify("Categorise into positive, neutral, negative: I love it") == "positive"
    assert classify("Classify the sentiment of this review as positive or negative: terrible") == "negative"
    for prompt in ("Write a function to classify emails as spam or ham",  # asks for code
                   "Label the axes as time and value",
                   "Sort this list into ascending order: 3, 1, 2",
                   "Classify this as a very long label with many words or something else entirely: x"):
        assert classify(prompt) is None, prompt
    same = "Classify as red, green or blue: a sunset over the sea"
    assert classify(same) == classify(same) in ("red", "green", "blue")  # no cue: deterministic pick


def test_a_misspelt_builtin_is_corrected_too():
    prompt = ("Propose a minimal fix for this failing notebook cell. ...\n\nFailing cell:\n```python\n"
              "prnt('total:', 3)\n```\n\nError (traceback trimmed to the frames that matter):\n```\n"
              "  cell In[4], line 1, in <module>\n    prnt('total:', 3)\nNameError: name 'prnt' is not defined\n```")
    found = minimal_fix(prompt)
    assert found is not None and found[1] == "print('total:', 3)"
    assert "closest builtin is `print`" in found[0]
