"""Exports use the live view's policy, written as files and read back as a raw Markdown
renderer would (markdown-it's CommonMark with HTML on, every link kept so none is hidden from
the check); ``%kimi export`` in a real kernel refuses an existing file without ``--force``."""

from __future__ import annotations

import json

import pytest
from markdown_it import MarkdownIt

from kimi_jupyter.export import write_export
from kimi_jupyter.transcript import Transcript, TurnRecord

from ..kernels import run, running_kernel, text_of

pytestmark = pytest.mark.timeout(240)

ATTACKS = [
    "see \\`<img src=https://tracker.example/a.png onerror=alert(1)>`",  # an escaped backtick, then HTML
    "see \\`![x](https://tracker.example/b.png)`",  # an escaped backtick, then an image
    "`a\nb` <img src=x onerror=alert(2)> `",  # a code span over two lines, then HTML
    "[click](javascript:alert(3)) and [also](JaVaScRiPt&#58;alert(4)) <javascript:alert(5)>",
    "![remote](https://tracker.example/c.png) [ok](https://example.org)",
    "<details open><summary>x</summary><iframe src=https://tracker.example></iframe></details>",
]


def _raw_renderer() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True})
    md.validateLink = lambda url: True  # type: ignore[method-assign]  # see every link, even the bad ones
    return md


def assert_inert(markdown: str) -> None:
    md = _raw_renderer()
    tokens = md.parse(markdown)
    flat = [t for tok in tokens for t in [tok, *(tok.children or [])]]
    kinds = {t.type for t in flat}
    assert not kinds & {"html_inline", "html_block", "image"}, [t for t in flat if t.type.startswith(("html", "image"))]
    for token in flat:
        if token.type == "link_open":
            href = str(token.attrGet("href") or "")
            assert href.startswith(("http://", "https://", "mailto:")), href
    rendered = md.render(markdown)
    assert "<img" not in rendered and "<iframe" not in rendered and "onerror=" not in rendered.replace("onerror=alert", "")


@pytest.mark.parametrize("attack", ATTACKS)
def test_an_exported_md_and_ipynb_load_nothing_and_run_nothing(tmp_path, attack):
    transcript = Transcript([TurnRecord("magic", attack, {"text": attack, "notices": [attack], "error": attack})])
    md = write_export(tmp_path / "chat.md", transcript, [], "notebook cells").read_text(encoding="utf-8")
    assert_inert(md)
    nb = json.loads(write_export(tmp_path / "chat.ipynb", transcript, [], "notebook cells").read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        assert_inert(source)
    assert "tracker.example" in md or "alert(" in md  # shown, as text or as a link to click


def test_export_refuses_an_existing_file_and_the_open_notebook_without_force(tmp_path):
    notebook = tmp_path / "analysis.ipynb"
    notebook.write_text('{"cells": []}')
    target = tmp_path / "chat.md"
    with running_kernel({}, tmp_path) as (_, client):
        reply, msgs = run(client, "%load_ext kimi_jupyter\n%kimi export chat.md")
        assert reply["status"] == "ok" and target.exists(), text_of(msgs)
        target.write_text("mine")
        reply, msgs = run(client, "%kimi export chat.md")
        shown = text_of(msgs)
        assert "exists" in shown and "--force" in shown and "Traceback" not in shown, shown
        assert target.read_text() == "mine"
        reply, msgs = run(client, "%kimi export analysis.ipynb")
        assert "exists" in text_of(msgs) and notebook.read_text() == '{"cells": []}'
        reply, msgs = run(client, "%kimi export chat.md --force")
        assert "Exported" in text_of(msgs) and target.read_text().startswith("# Kimi conversation")


def test_export_never_writes_through_a_symlink(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "chat.md").symlink_to(victim)
    with pytest.raises(ValueError, match="exists"):
        write_export(tmp_path / "chat.md", Transcript(), [], "x")
    write_export(tmp_path / "chat.md", Transcript(), [], "x", force=True)
    assert victim.read_text() == "precious" and not (tmp_path / "chat.md").is_symlink()
