"""%kimi export: Markdown and notebook files of a conversation, against golden files.

The transcript is filled by real turns (``ask()`` through the turn engine, the agent loop in a
real IPython shell) against the simulator, plus one decided edit proposal. Set
``KIMI_UPDATE_GOLDEN=1`` to rewrite the golden files after an intended change (and read the
diff).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.testing.globalipapp import start_ipython

from kimi_jupyter import ask
from kimi_jupyter.agent.proposals import ACCEPTED, REJECTED, Proposal, ProposalSet
from kimi_jupyter.export import safe_markdown, to_markdown, write_export
from kimi_jupyter.session import get_session
from kimi_jupyter.testing import Reply, ToolCall
from kimi_jupyter.transcript import Transcript, TurnRecord, transcript_for

GOLDEN = Path(__file__).parent / "golden"
KEY = "sk-test-simulator"
HOSTILE = (
    "Here: <script>alert(1)</script> <img src=x onerror=alert(2)> ![t](http://tracker.example/p.png) "
    "and `a < b` stays code.\n\n```python\nif a < b:\n    print('<ok>')\n```\n\nYour key is " + KEY
)


@pytest.fixture
def shell(kimi_sim_env):
    start_ipython()
    yield InteractiveShell.instance()


def _fill(sim, shell) -> Transcript:
    sim.queue(Reply(reasoning="The user wants <b>escaping</b> checked.", text=HOSTILE))
    ask(f"What is <this>? (my key is {KEY})", display="none", history=True, source="magic")
    sim.queue(
        Reply(reasoning="Run it.", tool_calls=[ToolCall("run_python", {"code": "print(6 * 7)"})]),
        Reply(text="It is **42**."),
    )
    ask("Compute 6 * 7.", display="none", agent=True, yes=True, history=True, source="magic")
    transcript = transcript_for(get_session().notebook)
    edit = Proposal("edit", 2, "c2", "print(total)", old="print(totl)")
    insert = Proposal("insert", 2, "c2", "print('done')")
    proposals = ProposalSet([edit, insert])
    proposals.decide(edit.pid, ACCEPTED)
    proposals.decide(insert.pid, REJECTED, "No <i>extra</i> cells.")
    transcript.add(TurnRecord(source="fix", prompt="Propose a minimal fix for this failing notebook cell.",
                              response=transcript.turns[-1].response | {"text": "A typo: use `total`.",
                                                                        "tool_steps": [], "reasoning": ""},
                              proposals=[edit.record(), insert.record()]))
    return transcript


def _check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("KIMI_UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


def test_markdown_export_matches_the_golden_file(kimi_sim_env, shell, tmp_path):
    transcript = _fill(kimi_sim_env, shell)
    assert [t.source for t in transcript.turns] == ["magic", "magic", "fix"]
    target = write_export(tmp_path / "chat.md", transcript, [KEY], "notebook cells")
    text = target.read_text(encoding="utf-8")
    _check_golden("export.md", text)
    # The prompt's key was masked (***) before it was ever sent; the model's echo of it by the export.
    assert KEY not in text and text.count("\\[redacted\\]") == 1 and "(my key is \\*\\*\\*)" in text
    # The live view's policy (untrusted.safe_markdown): an image is a link, raw HTML is text.
    assert "<script>" not in text and "<img" not in text
    assert "image: t ([http://tracker.example/p.png](<http://tracker.example/p.png>))" in text
    assert "`a < b`" in text and "    print('<ok>')" in text  # code is kept as written
    assert "<details><summary>Reasoning</summary>" in text and "&lt;b&gt;escaping&lt;/b&gt;" in text
    assert "- Edit cell 2: **accepted**" in text and "No &lt;i&gt;extra&lt;/i&gt; cells" in text
    assert "usage: prompt" in text


def test_notebook_export_matches_the_golden_file(kimi_sim_env, shell, tmp_path):
    import nbformat

    transcript = _fill(kimi_sim_env, shell)
    target = write_export(tmp_path / "chat.ipynb", transcript, [KEY], "notebook cells")
    text = target.read_text(encoding="utf-8")
    _check_golden("export.ipynb", text)
    nb = nbformat.reads(text, as_version=4)
    nbformat.validate(nb)
    assert [c.cell_type for c in nb.cells] == ["markdown"] * 7
    assert KEY not in text and "<script>" not in text


def test_the_rendered_markdown_has_no_live_html_and_loads_nothing(kimi_sim_env, shell):
    from markdown_it import MarkdownIt

    html = MarkdownIt("commonmark").render(to_markdown(_fill(kimi_sim_env, shell), [KEY]))
    assert "<script" not in html and "<img" not in html and ' src="' not in html
    assert "&lt;script&gt;" in html and "&lt;img src=x onerror=alert(2)&gt;" in html  # shown as text
    assert '<a href="http://tracker.example/p.png">http://tracker.example/p.png</a>' in html  # a link loads nothing


def test_safe_markdown_keeps_code_and_neutralises_the_rest():
    assert safe_markdown("<b>x</b>") == "&lt;b&gt;x&lt;/b&gt;"
    assert safe_markdown("a `<b>` c") == "a `<b>` c"
    assert safe_markdown("![a](http://x/y.png)") == "image: a ([http://x/y.png](<http://x/y.png>))"
    assert safe_markdown("```\n<b>\n```") == "```\n<b>\n```"
    assert safe_markdown("    <indented code>") == "```\n<indented code>\n```"
    assert safe_markdown("[a link](http://x)") == "[a link](<http://x>)"


def test_a_key_in_the_environment_is_redacted_too(kimi_sim_env, tmp_path, monkeypatch):
    from kimi_jupyter.export import secrets_to_hide

    monkeypatch.setenv("KIMI_API_KEY", "sk-another-secret-value")
    assert {KEY, "sk-another-secret-value"} <= set(secrets_to_hide(get_session()))


def test_export_refuses_unknown_extensions(tmp_path):
    with pytest.raises(ValueError, match=r"\.md or \.ipynb"):
        write_export(tmp_path / "chat.txt", Transcript(), [], "x")
    assert to_markdown(Transcript(), []).endswith("*(no turns yet)*\n")


def test_export_magic_writes_the_cells_conversation(kimi_sim_env, shell, tmp_path, capsys):
    shell.run_line_magic("load_ext", "kimi_jupyter")
    kimi_sim_env.queue(Reply(text="Hi there."))
    shell.run_cell("%%kimi --display none\nHello!")
    shell.run_line_magic("kimi", f"export {tmp_path / 'out.md'}")
    assert "Exported" in capsys.readouterr().out
    text = (tmp_path / "out.md").read_text(encoding="utf-8")
    assert "Hello\\!" in text and "Hi there." in text  # "!" escaped by the live view's policy
    shell.run_line_magic("kimi", f"export {tmp_path / 'out.html'}")
    assert ".md or .ipynb" in capsys.readouterr().err


def test_the_sidebar_export_reply(kimi_sim_env):
    from kimi_jupyter.export import sidebar_export
    from kimi_jupyter.sidebar.chat import SidebarChat

    sidebar = SidebarChat(namespace={})
    transcript_for(sidebar.memory).add(TurnRecord("sidebar", f"key {KEY}", {"text": "ok", "usage": {}}))
    reply = sidebar_export(sidebar, {"request_id": "r1", "format": "ipynb"})
    assert reply["type"] == "export" and reply["filename"] == "kimi-chat.ipynb" and reply["error"] is None
    assert KEY not in reply["content"] and json.loads(reply["content"])["nbformat"] == 4
