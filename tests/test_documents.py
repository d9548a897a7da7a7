"""Documents in prompts against the simulator: `{report}` naming a pdf/docx/... becomes its
extracted text in a system message (Files API ``file-extract`` on moonshot, local extraction
elsewhere), cached by content hash, summarised as "report.pdf: N pages / N tokens"."""

from __future__ import annotations

from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.testing.globalipapp import start_ipython

from kimi_jupyter import ask
from kimi_jupyter.context import build_content
from kimi_jupyter.context.documents import DocumentError, extract_text
from kimi_jupyter.context.media import MediaSink, SessionUploads
from kimi_jupyter.settings import resolve_settings
from kimi_jupyter.testing import KimiSimulator, Reply
from kimi_jupyter.testing.samples import make_docx, make_pdf

KEY = "sk-test-simulator"


@pytest.fixture
def ip(kimi_sim_env):
    start_ipython()
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "kimi_jupyter")
    shell.config.pop("Kimi", None)
    yield shell


def file_posts(sim):
    return [r for r in sim.requests if r.method == "POST" and r.path.endswith("/files")]


def test_a_pdf_becomes_a_system_message_with_a_summary(ip, kimi_sim_env, tmp_path, capsys):
    report = tmp_path / "report.pdf"
    report.write_bytes(make_pdf(["Revenue grew 12% in Q3.", "Churn fell to 2%.", "Outlook: stable."]))
    ip.user_ns["report"] = report  # a pathlib.Path
    kimi_sim_env.queue(Reply(text="It grew."), Reply(text="Still 2%."))
    ip.run_cell("%%kimi --new\nSummarise {report} in one line.")
    out = capsys.readouterr().out
    request = kimi_sim_env.chat_requests[-1]
    system, user = request.messages[-2:]
    assert system["role"] == "system" and system["content"].startswith("[document: report.pdf]\n")
    assert "Revenue grew 12% in Q3." in system["content"] and "Outlook: stable." in system["content"]
    assert user["content"] == "Summarise [document: report.pdf, attached as a system message] in one line."
    assert "Document report.pdf: 3 pages / " in out and " tokens" in out
    assert [(f.purpose, f.filename) for f in kimi_sim_env.files.all()] == [("file-extract", "report.pdf")]
    # A follow-up keeps the document in the conversation, and naming it again does not re-upload.
    ip.run_cell("%%kimi\nAnd churn, per {report}?")
    later = kimi_sim_env.chat_requests[-1].messages
    assert sum(1 for m in later if m["role"] == "system" and "report.pdf" in m["content"]) == 2
    assert len(file_posts(kimi_sim_env)) == 1


def test_ask_takes_a_docx_path_string(kimi_sim_env, tmp_path, capsys):
    notes = tmp_path / "notes.docx"
    notes.write_bytes(make_docx(["Decision: ship on Friday.", "Owner: the platform team."]))
    kimi_sim_env.queue(Reply(text="Friday."))
    response = ask("When do we ship? See {notes}", namespace={"notes": str(notes)}, display="text")
    assert response.error is None and response.text == "Friday."
    system = kimi_sim_env.chat_requests[-1].messages[0]
    assert system == {"role": "system", "content": "[document: notes.docx]\nDecision: ship on Friday.\n"
                                                   "Owner: the platform team."}
    out = capsys.readouterr().out
    assert "Document notes.docx: " in out and " tokens" in out


def test_without_a_files_api_documents_are_extracted_locally(tmp_path):
    report = tmp_path / "report.pdf"
    report.write_bytes(make_pdf(["Local page one", "Local page two"]))
    with KimiSimulator(api_key=KEY) as sim:
        settings = resolve_settings(explicit={"base_url": sim.url_for("openrouter"), "api_key": KEY,
                                              "provider": "openrouter"}, environ={})
        sink = MediaSink(settings, SessionUploads())
        parts = build_content("read {report}", {"report": report}, media=sink)
        assert parts == [{"type": "text", "text": "read [document: report.pdf, attached as a system message]"}]
        (message,) = sink.system_messages
        assert "Local page one" in message["content"] and "Local page two" in message["content"]
        assert sink.summaries[0].startswith("report.pdf: 2 pages / ")
        assert sim.requests == []  # nothing uploaded anywhere


def test_unreadable_documents_say_so_in_one_line(kimi_sim_env, tmp_path):
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4 this is not really a pdf")
    response = ask("read {b}", namespace={"b": broken}, display="none")
    assert response.error is not None and "broken.pdf" in response.error
    with pytest.raises(DocumentError, match="could not extract text"):
        extract_text(b"PK\x03\x04 not a zip", "x.docx")
    assert Path(broken).exists()


def test_a_plain_string_that_is_not_a_file_stays_text(kimi_sim_env):
    kimi_sim_env.queue(Reply(text="ok"))
    ask("{name}", namespace={"name": "missing-report.pdf"}, display="none")
    (message,) = kimi_sim_env.chat_requests[-1].messages
    assert message == {"role": "user", "content": "missing-report.pdf"}
