"""The sidebar's Attach file in a real JupyterLab: pick a PDF in the file-browser dialog, and
its extracted text reaches Kimi as a system message."""

from __future__ import annotations

import json

from lab_ui import open_notebook
from playwright.sync_api import expect

from kimi_jupyter.testing import Reply
from kimi_jupyter.testing.samples import make_pdf


def test_attach_file_sends_a_picked_pdf_as_a_document(page, lab, sim, shot):
    (lab.root / "q3-report.pdf").write_bytes(make_pdf(["Revenue grew 12% in Q3.", "Churn fell to 2.1%."]))
    lab.write_notebook("files.ipynb", [{"cell_type": "code", "source": "x = 1"}])
    open_notebook(page, lab.notebook_url("files.ipynb"))
    page.evaluate("async () => { await window.jupyterapp.commands.execute('kimi:open-chat'); }")
    sidebar = page.locator("#kimi-jupyter-sidebar")
    expect(sidebar.locator(".jp-kimi-banner")).to_have_attribute("data-status", "ready", timeout=30_000)

    sidebar.get_by_role("button", name="Attach file").click()
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_be_visible()
    item = dialog.locator(".jp-DirListing-item", has_text="q3-report.pdf")
    expect(item).to_be_visible(timeout=15_000)
    item.click()
    shot(page, "f1-attach-file-dialog")
    dialog.get_by_role("button", name="Select").click()
    chip = sidebar.locator(".jp-kimi-composer .jp-kimi-chip")
    expect(chip).to_contain_text("q3-report.pdf")
    shot(page, "f2-file-chip")

    sim.queue(Reply(text="Revenue grew 12% and churn fell to 2.1%.", reasoning="From the report."))
    box = sidebar.locator("textarea.jp-kimi-input")
    box.fill("What does the report say?")
    box.press("Enter")
    turn = sidebar.locator(".jp-kimi-turn").last
    expect(turn).to_have_attribute("data-phase", "done", timeout=30_000)
    expect(turn).to_contain_text("Document q3-report.pdf: 2 pages")
    expect(turn.locator(".jp-kimi-answer")).to_contain_text("Revenue grew 12%")
    shot(page, "f3-document-answered")
    messages = sim.chat_requests[-1].messages
    system = [m for m in messages if m["role"] == "system"]
    assert system and "Revenue grew 12% in Q3." in system[-1]["content"]
    assert "q3-report.pdf" in json.dumps(messages[-1]["content"])


def test_the_header_says_when_rate_limits_run_low(page, lab, sim, shot):
    from kimi_jupyter.testing import Fault

    lab.write_notebook("limits.ipynb", [{"cell_type": "code", "source": "x = 1"}])
    open_notebook(page, lab.notebook_url("limits.ipynb"))
    page.evaluate("async () => { await window.jupyterapp.commands.execute('kimi:open-chat'); }")
    sidebar = page.locator("#kimi-jupyter-sidebar")
    banner = sidebar.locator(".jp-kimi-banner")
    expect(banner).to_have_attribute("data-status", "ready", timeout=30_000)
    low = {"x-ratelimit-limit-requests": "100", "x-ratelimit-remaining-requests": "3",
           "x-ratelimit-reset-requests": "20s", "Retry-After": "0"}
    sim.fault(Fault.status(429, "engine_overloaded_error", "busy", low), times=1)
    sim.queue(Reply(text="ok"))
    box = sidebar.locator("textarea.jp-kimi-input")
    box.fill("hello")
    box.press("Enter")
    expect(sidebar.locator(".jp-kimi-turn").last).to_have_attribute("data-phase", "done", timeout=30_000)
    expect(banner.locator(".jp-kimi-ratelimit")).to_have_text(
        "Rate limit running low: 3 of 100 requests left, resets in 20 s."
    )
    shot(page, "f4-rate-limit-low")
