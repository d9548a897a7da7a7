"""Project rules (AGENTS.md, .kimi/rules.md) reach the system prompt, against the simulator."""

from __future__ import annotations

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.testing.globalipapp import start_ipython

from kimi_jupyter import rules
from kimi_jupyter.display import NullRenderer
from kimi_jupyter.session import get_session
from kimi_jupyter.testing import Reply
from kimi_jupyter.turn import TurnRequest, run_turn

KEY = "sk-test-simulator"


@pytest.fixture
def project(tmp_path, monkeypatch):
    """outside/AGENTS.md (not in the repository), repo/.git, repo/AGENTS.md, repo/nb/.kimi/rules.md;
    the kernel works in repo/nb."""
    (tmp_path / "AGENTS.md").write_text("OUTSIDE THE REPOSITORY")
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "AGENTS.md").write_text("Use metric units.\n")
    nb = repo / "nb"
    (nb / ".kimi").mkdir(parents=True)
    (nb / ".kimi" / "rules.md").write_text("Answer in French.\n")
    monkeypatch.chdir(nb)
    return nb


def plain_turn(prompt="hi", **settings):
    session = get_session()
    request = TurnRequest(content=prompt, settings=session.settings(**settings))
    return run_turn(session, request, NullRenderer())


def system_of(sim, index=-1):
    messages = sim.chat_requests[index].json["messages"]
    return messages[0]["content"] if messages[0]["role"] == "system" else None


def test_rules_of_the_folder_and_its_parents_up_to_the_repository_reach_the_system_prompt(project, kimi_sim_env):
    kimi_sim_env.queue(Reply(text="ok"))
    plain_turn(system="Be brief.")
    system = system_of(kimi_sim_env)
    assert system.startswith("Be brief.\n\nProject rules")
    assert system.index("Use metric units.") < system.index("Answer in French.")  # nearest last
    assert "## ../AGENTS.md" in system and "## .kimi/rules.md" in system
    assert "OUTSIDE" not in system


def test_rules_off_by_setting_and_by_the_magic_option(project, kimi_sim_env):
    kimi_sim_env.queue(Reply(text="a"), Reply(text="b"), Reply(text="c"))
    plain_turn(rules=False)
    assert system_of(kimi_sim_env) is None
    start_ipython()
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "kimi_jupyter")
    shell.run_cell("%%kimi --no-rules --display none\nhello")
    assert system_of(kimi_sim_env) is None
    shell.run_cell("%%kimi --display none\nhello")
    assert "Answer in French." in system_of(kimi_sim_env)


def test_outside_a_repository_only_the_folder_itself_counts(tmp_path, monkeypatch, kimi_sim_env):
    (tmp_path / "AGENTS.md").write_text("parent rules")
    here = tmp_path / "work"
    here.mkdir()
    (here / "AGENTS.md").write_text("own rules")
    monkeypatch.chdir(here)
    kimi_sim_env.queue(Reply(text="ok"))
    plain_turn()
    system = system_of(kimi_sim_env)
    assert "own rules" in system and "parent rules" not in system


def test_rules_are_capped_and_the_key_is_masked(project, kimi_sim_env):
    (project / "AGENTS.md").write_text(f"the key is {KEY}\n" + "x" * (3 * rules.FILE_BYTES))
    kimi_sim_env.queue(Reply(text="ok"))
    plain_turn()
    system = system_of(kimi_sim_env)
    assert KEY not in system
    assert len(system) <= rules.TOTAL_CHARS + 200 and "cut" in system


def test_kimi_config_lists_the_rule_files(project, kimi_sim_env, capsys):
    start_ipython()
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "kimi_jupyter")
    shell.run_line_magic("kimi", "config")
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("Project rules:"))
    assert "../AGENTS.md" in line and ".kimi/rules.md" in line
    get_session().config["rules"] = False
    shell.run_line_magic("kimi", "config")
    assert "Project rules: off" in capsys.readouterr().out


def test_map_rows_do_not_carry_the_rules(project, kimi_sim_env):
    from kimi_jupyter.turn import TurnRequest

    session = get_session()
    kimi_sim_env.queue(Reply(text="row"))
    run_turn(session, TurnRequest(content="row 1", settings=session.settings(), history=False, source="rows"),
             NullRenderer())
    assert system_of(kimi_sim_env) is None
