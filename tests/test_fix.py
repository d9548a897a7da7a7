"""%kimi fix in a real IPython shell against the simulator: what Kimi is sent, and the answer shown as a diff."""

from __future__ import annotations

import sys

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.testing.globalipapp import start_ipython

from kimi_jupyter.fix import FailingCell, _names, build_fix_prompt, trim_traceback
from kimi_jupyter.session import get_session
from kimi_jupyter.testing import Reply, ToolCall


@pytest.fixture
def shell(kimi_sim_env):
    start_ipython()
    sh = InteractiveShell.instance()
    sh.run_line_magic("load_ext", "kimi_jupyter")
    yield sh


def _fail(shell, source):
    result = shell.run_cell(source, store_history=True)
    assert result.error_in_exec is not None
    return result.error_in_exec


def test_the_traceback_keeps_cell_frames_and_the_raising_frame(shell):
    shell.run_cell("import json\ndef load(text):\n    return json.loads(text)", store_history=True)
    error = _fail(shell, "data = load('{not json')")
    text = trim_traceback(error, shell)
    assert "cell In[" in text and "data = load('{not json')" in text and "return json.loads(text)" in text
    assert "frames in library code" in text  # json's own frames are counted, not listed
    assert text.splitlines()[-1].startswith("json.decoder.JSONDecodeError")


def test_the_prompt_has_the_cell_the_error_the_variables_and_where_they_came_from(shell):
    shell.run_cell("import pandas as pd\nprices = pd.DataFrame({'item': ['a', 'b'], 'price': [3, 4]})",
                   store_history=True)
    shell.run_cell("rate = 1.2", store_history=True)
    error = _fail(shell, "prices['eur'] = prices['price'] * rat\nprices")
    cell = FailingCell("prices['eur'] = prices['price'] * rat\nprices", trim_traceback(error, shell),
                       execution_count=shell.execution_count - 1)
    prompt = build_fix_prompt(shell, cell, get_session().settings())
    assert "NameError: name 'rat' is not defined" in prompt
    assert "- rat: not defined (existing names that look close: rate" in prompt
    assert "- prices: " in prompt and "2 rows x 2 columns" in prompt, prompt  # the DataFrame summary
    assert "prices = pd.DataFrame(" in prompt and "rate = 1.2" in prompt  # the defining cells
    assert "minimal fix" in prompt


def test_names_read_and_bound():
    used, bound = _names("import os\nx = y + 1\ndef f(a):\n    return a + z\nprint(x)")
    assert used[:2] == ["y", "a"] or "y" in used
    assert {"os", "x", "f"} <= bound and "z" in used and "print" in used
    assert _names("def broken(:") == ([], set())


def test_fix_magic_without_a_frontend_shows_the_diff_and_keeps_the_code(shell, kimi_sim_env, capsys):
    shell.run_cell("total = 10", store_history=True)
    _fail(shell, "print(totl * 2)")
    kimi_sim_env.queue(Reply(text="`totl` is a typo.\n\n```python\nprint(total * 2)\n```"))
    shell.run_line_magic("config", "Kimi.display = 'none'")
    shell.run_line_magic("kimi", "fix")
    out = capsys.readouterr().out
    assert "-print(totl * 2)" in out and "+print(total * 2)" in out and "cannot apply edits" in out
    assert shell.user_ns["_kimi"].code.strip() == "print(total * 2)"
    sent = kimi_sim_env.chat_requests[-1].messages[-1]["content"]
    assert "print(totl * 2)" in sent and "total = 10" in sent


def test_fix_with_nothing_failed_says_so(shell, capsys):
    sys.last_value = None
    shell.run_line_magic("kimi", "fix")
    assert "No failing cell found" in capsys.readouterr().err


def test_agent_turn_without_a_frontend_is_not_offered_notebook_tools(shell, kimi_sim_env):
    kimi_sim_env.queue(Reply(reasoning="Nothing to run.", tool_calls=[ToolCall("list_variables", {})]),
                       Reply(text="Done."))
    shell.run_cell("%%kimi --agent --display none\nLook around.")
    offered = {t["function"]["name"] for t in kimi_sim_env.chat_requests[-1].json["tools"]
               if "function" in t}
    assert "run_python" in offered and not offered & {"list_cells", "edit_cell", "insert_cell", "run_cell"}


def test_the_fix_and_its_outcome_are_part_of_the_export(shell, kimi_sim_env, tmp_path):
    shell.run_cell("total = 10", store_history=True)
    _fail(shell, "print(totl * 2)")
    kimi_sim_env.queue(Reply(text="A typo.\n\n```python\nprint(total * 2)\n```"))
    shell.run_line_magic("config", "Kimi.display = 'none'")
    shell.run_line_magic("kimi", "fix")
    shell.run_line_magic("kimi", f"export {tmp_path / 'fix.md'}")
    text = (tmp_path / "fix.md").read_text(encoding="utf-8")
    assert "(%kimi fix)" in text and "Proposed changes:" in text
    assert "shown only (no frontend to apply it)" in text and "+print(total * 2)" in text


def test_a_person_at_a_terminal_is_told_once_that_notebook_tools_are_off(shell, kimi_sim_env, monkeypatch):
    from kimi_jupyter import ask
    from kimi_jupyter.agent import approval, notebook_tools

    monkeypatch.setattr(approval, "_stdin_is_terminal", lambda: True)  # as in terminal IPython
    monkeypatch.setattr(notebook_tools, "_told_unavailable", False)
    answers = []
    for _ in range(2):
        kimi_sim_env.queue(Reply(text="Fine."))
        answers.append(ask("Hello", agent=True, yes=True, display="none"))
    assert notebook_tools.UNAVAILABLE.text in answers[0].notices
    assert notebook_tools.UNAVAILABLE.text not in answers[1].notices
