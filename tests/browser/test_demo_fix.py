"""Fix with Kimi in demo mode (no script knows the error): in a real JupyterLab, the button
proposes a change to that cell only (the misspelt name corrected), and Accept + Run cell
runs it; an error the demo cannot correct gets a plain "no fix", never unrelated code."""

from __future__ import annotations

from lab_ui import cell_sources, open_notebook, output_area, run_cell, wait_kernel_idle
from playwright.sync_api import expect


def test_the_demo_fix_button_corrects_the_misspelt_name_in_that_cell(page, lab, sim, shot):
    lab.write_notebook("demo_fix.ipynb", [
        {"cell_type": "code", "source": "revenue = 10\nregions = 2"},
        {"cell_type": "code", "source": "share = revenu / regions\nprint(share * 4)"},
    ])
    open_notebook(page, lab.notebook_url("demo_fix.ipynb"))
    run_cell(page, 0)
    run_cell(page, 1)
    expect(output_area(page, 1)).to_contain_text("NameError")
    sim.reset()  # nothing queued, no script: the demo's own answer
    page.locator(".jp-Cell").nth(1).get_by_role("button", name="Fix with Kimi").click()
    card = page.locator(".jp-kimi-proposals")
    expect(card.locator(".jp-kimi-proposal-target")).to_have_text("Edit cell 2", timeout=30_000)
    expect(card.locator(".jp-kimi-proposal-explanation")).to_contain_text("the closest defined name is revenue")
    expect(card.locator(".jp-kimi-diff-line[data-op='add']")).to_have_text(["+ share = revenue / regions"])
    expect(card.locator(".jp-kimi-diff-line[data-op='del']")).to_have_text(["- share = revenu / regions"])
    assert "summarize" not in card.inner_text()
    shot(page, "demo-fix-proposal")
    card.get_by_role("button", name="Accept").click()
    card.get_by_role("button", name="Run cell").click()
    page.wait_for_function(
        "() => window.jupyterapp.shell.currentWidget.content.widgets[1].model.outputs.length > 0 && "
        "window.jupyterapp.shell.currentWidget.content.widgets[1].model.outputs.get(0).type === 'stream'",
        timeout=30_000)
    wait_kernel_idle(page)
    expect(output_area(page, 1)).to_contain_text("20.0")
    assert cell_sources(page)[:2] == ["revenue = 10\nregions = 2", "share = revenue / regions\nprint(share * 4)"]


def test_the_demo_says_plainly_when_it_has_no_fix(page, lab, sim, shot):
    lab.write_notebook("demo_nofix.ipynb", [
        {"cell_type": "code", "source": "ratio = 3 / 0"},
    ])
    open_notebook(page, lab.notebook_url("demo_nofix.ipynb"))
    run_cell(page, 0)
    expect(output_area(page, 0)).to_contain_text("ZeroDivisionError")
    sim.reset()
    page.locator(".jp-Cell").nth(0).get_by_role("button", name="Fix with Kimi").click()
    card = page.locator(".jp-kimi-proposals")
    expect(card).to_contain_text("I have no fix for this ZeroDivisionError", timeout=30_000)
    expect(card).to_contain_text("MOONSHOT_API_KEY")
    expect(card.locator(".jp-kimi-diff-line")).to_have_count(0)  # nothing to Accept
    expect(card.get_by_role("button", name="Accept")).to_have_count(0)
    shot(page, "demo-no-fix")
    assert cell_sources(page) == ["ratio = 3 / 0"]
