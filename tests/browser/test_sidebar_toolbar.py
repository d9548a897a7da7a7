"""The chat toolbar, the context gauge, output actions and the sidebar's layout in a real JupyterLab.

Each control's value is asserted in the request the simulator received, and the values come
back after a reload (remembered per notebook). Screenshots at 1400x900 and 1024x768.
"""

from __future__ import annotations

import re

from lab_ui import open_notebook, output_area, run_cell
from playwright.sync_api import expect
from test_sidebar import open_sidebar, send

from kimi_jupyter.testing import Reply

SIZES = ((1400, 900), (1024, 768))
WIDE_TABLE = (
    "Here is the table:\n\n"
    "| city | country | population | area km2 | density | mayor | founded | river |\n"
    "|---|---|---|---|---|---|---|---|\n"
    "| Paris | France | 2,102,650 | 105.4 | 19,951 | Anne Hidalgo | 3rd century BC | Seine |\n"
    "| Lyon | France | 522,250 | 47.87 | 10,910 | Gregory Doucet | 43 BC | Rhone |\n"
)


def _ready(page, lab, name, cells, size):
    page.set_viewport_size({"width": size[0], "height": size[1]})
    lab.write_notebook(name, cells)
    open_notebook(page, lab.notebook_url(name))
    sidebar = open_sidebar(page)
    expect(sidebar.locator(".jp-kimi-banner")).to_have_attribute("data-status", "ready", timeout=30_000)
    return sidebar


def test_toolbar_controls_reach_the_request_and_are_remembered_per_notebook(page, lab, sim, shot):
    for width, height in SIZES:
        name = f"toolbar-{width}.ipynb"
        sidebar = _ready(page, lab, name, [{"cell_type": "code", "source": "x = 41"}], (width, height))
        box = sidebar.bounding_box()
        assert box["width"] >= 320, box  # opens at least as wide as the usable minimum
        toolbar = sidebar.get_by_role("toolbar", name="Chat tools")
        for label in ("Attach active cell", "Attach output / plot", "Attach file", "New chat"):
            expect(toolbar.get_by_role("button", name=label)).to_be_visible()
        model = toolbar.get_by_label("Model")
        expect(model).to_be_visible()
        page.wait_for_function(
            "() => document.querySelectorAll('#kimi-jupyter-sidebar select.jp-kimi-model option').length > 1")
        k3 = width == 1400  # one size picks a model with effort levels, the other turns thinking off
        picked = "kimi-k3" if k3 else "kimi-k2.5"
        model.select_option(picked)
        effort = toolbar.get_by_label("Effort")
        if k3:
            expect(effort).to_be_visible()  # the registry gives kimi-k3 effort levels
            effort.select_option("high")
        else:
            expect(effort).to_be_hidden()
            toolbar.get_by_label("Think").uncheck()
        toolbar.get_by_label("Let Kimi run code (asks first)").check()
        shot(page, f"t1-toolbar-{width}x{height}")
        sim.reset()
        sim.queue(Reply(text="x is 41."))
        turn = send(sidebar, "What is x?")
        expect(turn).to_have_attribute("data-phase", "done", timeout=30_000)
        body = sim.chat_requests[-1].json
        assert body["model"] == picked
        if k3:
            assert body["thinking"]["type"] == "enabled" and body["thinking"]["effort"] == "high", body["thinking"]
        else:
            assert body.get("thinking") == {"type": "disabled"}, body.get("thinking")
        assert {t["function"]["name"] for t in body.get("tools", [])} >= {"run_python"}
        # The gauge: the last request's tokens of the model's window, and the costs.
        gauge = sidebar.locator(".jp-kimi-gauge")
        expect(gauge).to_be_visible()
        expect(gauge).to_contain_text(re.compile(r"context: [\d,]+ of [\d,]+ tokens"))
        expect(gauge).to_contain_text("history ~")
        shot(page, f"t2-gauge-{width}x{height}")
        # Remembered per notebook: after a reload the same values are back.
        page.reload()
        page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
        sidebar = open_sidebar(page)
        toolbar = sidebar.get_by_role("toolbar", name="Chat tools")
        expect(toolbar.get_by_label("Model")).to_have_value(picked)
        if k3:
            expect(toolbar.get_by_label("Effort")).to_have_value("high")
        else:
            expect(toolbar.get_by_label("Think")).not_to_be_checked()
        expect(toolbar.get_by_label("Let Kimi run code (asks first)")).to_be_checked()


def test_the_gauge_agrees_with_kimi_usage(page, lab, sim, shot):
    sidebar = _ready(page, lab, "gauge.ipynb", [{"cell_type": "code", "source": "%load_ext kimi_jupyter\n%kimi usage"}],
                     SIZES[0])
    sim.reset()
    sim.queue(Reply(text="One."), Reply(text="Two."))
    for prompt in ("Say one.", "Say two."):
        expect(send(sidebar, prompt)).to_have_attribute("data-phase", "done", timeout=30_000)
    expect(sidebar.locator(".jp-kimi-gauge")).to_have_attribute("data-updates", "2")  # both turns counted
    text = sidebar.locator(".jp-kimi-gauge-text").text_content()
    chat_cost = re.search(r"this chat (\S+)", text).group(1)
    session_cost = re.search(r"session (\S+)", text).group(1)
    assert chat_cost.startswith("¥"), text
    run_cell(page, 0)
    usage = output_area(page, 0).inner_text()
    sidebar_row = next(line for line in usage.splitlines() if line.strip().startswith("sidebar"))
    assert chat_cost in sidebar_row, (chat_cost, usage)
    assert session_cost in usage, (session_cost, usage)
    shot(page, "t3-gauge-and-usage")


def test_ask_kimi_about_an_output_and_a_wide_table_scrolls(page, lab, sim, shot):
    for width, height in SIZES:
        name = f"output-{width}.ipynb"
        sidebar = _ready(page, lab, name, [{"cell_type": "code", "source": "print('total sales: 1234')"}],
                         (width, height))
        run_cell(page, 0)
        action = page.locator(".jp-Cell").nth(0).get_by_role("button", name="Ask Kimi about this output")
        expect(action).to_be_visible()
        action.click()
        expect(sidebar.locator(".jp-kimi-chip")).to_have_count(1)
        expect(sidebar.locator("textarea.jp-kimi-input")).to_have_value("What does this output show?")
        shot(page, f"t4-output-action-{width}x{height}")
        sim.reset()
        sim.queue(Reply(text=WIDE_TABLE))
        sidebar.locator("textarea.jp-kimi-input").press("Enter")
        turn = sidebar.locator(".jp-kimi-turn").last
        expect(turn).to_have_attribute("data-phase", "done", timeout=30_000)
        sent = str(sim.chat_requests[-1].json["messages"])
        assert "total sales: 1234" in sent  # the output went with the question
        table = turn.locator(".jp-kimi-answer table")
        expect(table).to_be_visible()
        layout = table.evaluate(
            """t => ({scroll: t.scrollWidth, client: t.clientWidth, right: t.getBoundingClientRect().right,
                     side: document.querySelector('#kimi-jupyter-sidebar').getBoundingClientRect().right})""")
        assert layout["scroll"] > layout["client"], layout  # it scrolls sideways...
        assert layout["right"] <= layout["side"] + 1, layout  # ...inside the sidebar
        table.evaluate("t => t.scrollIntoView()")
        shot(page, f"t5-wide-table-{width}x{height}")


def test_the_sidebar_resizes_not_below_320_px_and_keeps_its_width_after_a_reload(page, lab, sim, shot):
    sidebar = _ready(page, lab, "resize.ipynb", [{"cell_type": "code", "source": "x = 1"}], SIZES[0])
    start = sidebar.bounding_box()["width"]
    handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle:not(.lm-mod-hidden)").last
    grip = handle.bounding_box()
    x, y = grip["x"] + grip["width"] / 2, grip["y"] + grip["height"] / 2

    def drag(dx):
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(x + dx / 2, y, steps=4)
        page.mouse.move(x + dx, y, steps=4)
        page.mouse.up()

    drag(-200)  # wider
    wide = sidebar.bounding_box()["width"]
    assert wide > start + 150, (start, wide)
    shot(page, "t6-sidebar-resized")
    page.wait_for_timeout(1500)  # JupyterLab saves the layout (its split sizes) shortly after a change
    page.reload()
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
    sidebar = page.locator("#kimi-jupyter-sidebar")
    expect(sidebar).to_be_visible()
    assert abs(sidebar.bounding_box()["width"] - wide) < 12, (wide, sidebar.bounding_box())
    handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle:not(.lm-mod-hidden)").last
    grip = handle.bounding_box()
    x, y = grip["x"] + grip["width"] / 2, grip["y"] + grip["height"] / 2
    drag(900)  # as narrow as it goes
    assert sidebar.bounding_box()["width"] >= 320 - 1, sidebar.bounding_box()
