"""What a new user meets first: no news toast over the chat, a status bar that says Busy while
a `%%kimi` cell runs (and while it waits for approval), an approval box that shows the code
once with its buttons in a 900 px window, the palette command that focuses the chat input,
and the sidebar in Notebook 7."""

from __future__ import annotations

import time

from lab_ui import KERNEL_STATUS, open_notebook, output_area, run_cell, start_cell, wait_kernel_idle
from playwright.sync_api import expect

from kimi_jupyter.testing import Reply, ToolCall

NEWS = "Would you like to get notified about official Jupyter news?"
NOTIFY = "@jupyterlab/apputils-extension/notification.jupyterlab-settings"
STATUS_BAR = """() => {
  const bar = document.querySelector('#jp-main-statusbar');
  return bar ? bar.textContent : '';
}"""


def _open_chat(page):
    page.evaluate("async () => { await window.jupyterapp.commands.execute('kimi:open-chat'); }")
    sidebar = page.locator("#kimi-jupyter-sidebar")
    expect(sidebar.locator(".jp-kimi-banner")).to_have_attribute("data-status", "ready", timeout=30_000)
    return sidebar


def test_no_news_toast_covers_the_chat_on_first_launch(page, lab, shot):
    # The lab runs with an empty user settings folder: what a user gets on a first launch.
    lab.write_notebook("news.ipynb", [{"cell_type": "code", "source": "x = 1"}])
    settings = lab.root.parent / "settings" / NOTIFY
    # Control: with the setting at JupyterLab's own default ("ask"), the toast does appear,
    # so its absence below means something.
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text('{"fetchNews": "none"}')
    try:
        open_notebook(page, lab.notebook_url("news.ipynb"))
        expect(page.get_by_text(NEWS)).to_be_visible(timeout=20_000)
        shot(page, "n0-news-toast-with-jupyterlab-default")
    finally:
        settings.unlink()

    open_notebook(page, lab.notebook_url("news.ipynb"))
    sidebar = _open_chat(page)
    page.wait_for_timeout(4000)  # the toast came within a second or two above
    assert page.get_by_text(NEWS).count() == 0
    for name in ("Send", "Stop"):
        button = sidebar.get_by_role("button", name=name, exact=True)
        box = button.bounding_box()
        assert box is not None
        hit = page.evaluate(
            "([x, y]) => { const e = document.elementFromPoint(x, y); return e && e.closest('button') ? "
            "e.closest('button').textContent : (e ? e.className : null); }",
            [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2],
        )
        assert hit == name, f"{name} is covered by {hit!r}"
    shot(page, "n1-first-launch-no-news-toast")


def _samples(page, seconds: float, every: float = 0.2) -> list[tuple[str, str]]:
    out = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        out.append((page.evaluate(KERNEL_STATUS), page.evaluate(STATUS_BAR)))
        time.sleep(every)
    return out


def test_the_status_bar_says_busy_while_a_kimi_cell_runs_and_waits(page, lab, sim, shot):
    lab.write_notebook("status.ipynb", [
        {"cell_type": "code", "source": "%load_ext kimi_jupyter\nnumbers = [1, 2, 3]"},
        {"cell_type": "code", "source": "%%kimi\nTell me a long story"},
        {"cell_type": "code", "source": "%%kimi --agent\nWhat is sum(numbers) * 7?"},
    ])
    open_notebook(page, lab.notebook_url("status.ipynb"))
    run_cell(page, 0)
    sim.queue(Reply(text="Once upon a time " + "and then " * 120, reasoning="Let me think. " * 30,
                    chunk_chars=4, chunk_delay=0.02))
    start_cell(page, 1)
    expect(output_area(page, 1)).to_contain_text("Thinking", timeout=20_000)  # widgets are up
    streaming = _samples(page, 3.0)
    shot(page, "n2-status-bar-busy-while-streaming")
    wait_kernel_idle(page, 60_000)

    sim.queue(Reply(reasoning="I should compute it.", tool_calls=[ToolCall("run_python", {"code": "print(sum(numbers) * 7)"})]),
              Reply(text="It is **42**."))
    start_cell(page, 2)
    run_it = output_area(page, 2).get_by_role("button", name="Run it")
    expect(run_it).to_be_visible(timeout=20_000)
    waiting = _samples(page, 2.0)
    run_it.click()
    expect(output_area(page, 2)).to_contain_text("It is 42", timeout=20_000)
    wait_kernel_idle(page, 30_000)

    seen = [(status, "Busy" if "| Busy" in bar else "Idle" if "| Idle" in bar else bar)
            for status, bar in streaming + waiting]
    assert seen == [("busy", "Busy")] * len(seen), seen
    page.wait_for_timeout(1000)
    wait_kernel_idle(page, 10_000)  # and once the cells are done, it says Idle again
    page.wait_for_function(f"() => ({STATUS_BAR})().includes('| Idle')", timeout=10_000)


LONG_CODE = "\n".join(
    ["import statistics", "values = [3, 1, 4, 1, 5, 9, 2, 6]"]
    + [f"step_{i} = statistics.mean(values) + {i}  # a long proposal, line {i}" for i in range(40)]
    + ["print('total', sum(values))"]
)


def test_the_approval_box_shows_the_code_once_with_its_buttons_in_view(browser, lab, sim, shot):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(30_000)
    page = context.new_page()
    try:
        lab.write_notebook("approve.ipynb", [
            {"cell_type": "code", "source": "%load_ext kimi_jupyter"},
            {"cell_type": "code", "source": "%%kimi --agent\nSummarise the values, computing it in the kernel."},
        ])
        open_notebook(page, lab.notebook_url("approve.ipynb"))
        run_cell(page, 0)
        sim.queue(
            Reply(reasoning="The user wants statistics. I will compute them in the kernel. " * 6,
                  tool_calls=[ToolCall("run_python", {"code": LONG_CODE})]),
            Reply(text="The values add up to **31**.", reasoning="The tool printed the total."),
        )
        start_cell(page, 1)
        out = output_area(page, 1)
        run_it = out.get_by_role("button", name="Run it")
        expect(run_it).to_be_visible(timeout=20_000)
        page.wait_for_timeout(500)  # let the live view settle
        assert out.inner_text().count("a long proposal, line 39") == 1  # the code, once
        box = run_it.bounding_box()
        assert box is not None and box["y"] + box["height"] <= 900, box  # above the fold
        expect(out.get_by_role("button", name="Don't run")).to_be_visible()
        shot(page, "n3-approval-buttons-in-view")

        run_it.click()
        expect(out).to_contain_text("The values add up to 31", timeout=20_000)
        wait_kernel_idle(page, 30_000)
        text = out.inner_text()
        assert "approved: ran" not in text  # no record outside the answer
        final = out.locator(".jp-kimi-turn, .kimi-turn").first
        expect(final).to_contain_text("run_python · done")  # the step, inside the answer box
        expect(final).to_contain_text("The values add up to 31")
        shot(page, "n4-approved-steps-inside-the-answer")
    finally:
        context.close()


def test_the_palette_command_focuses_the_chat_input(page, lab, shot):
    lab.write_notebook("palette.ipynb", [{"cell_type": "code", "source": "x = 1"}])
    open_notebook(page, lab.notebook_url("palette.ipynb"))
    page.locator(".jp-NotebookPanel .jp-Cell").first.click()
    page.keyboard.press("Escape")  # command mode: plain keys are notebook shortcuts here
    page.keyboard.press("Control+Shift+C")
    palette = page.locator("#modal-command-palette input")
    expect(palette).to_be_focused()
    palette.fill("Kimi: Open chat")
    page.keyboard.press("Enter")
    box = page.locator("#kimi-jupyter-sidebar textarea.jp-kimi-input")
    expect(box).to_be_focused(timeout=10_000)
    page.keyboard.type("abba")  # in command mode these would add and remove cells
    expect(box).to_have_value("abba")
    assert page.evaluate("() => window.jupyterapp.shell.currentWidget.content.widgets.length") == 1
    shot(page, "n5-palette-open-chat-focused")


def test_notebook7_has_the_kimi_chat_in_its_right_panel(page, notebook7, sim, shot):
    notebook7.write_notebook("nb7.ipynb", [
        {"cell_type": "code", "source": "import pandas as pd\ndf = pd.DataFrame({'a': [1, 2, 3]})"},
    ])
    page.goto(f"{notebook7.url}/notebooks/nb7.ipynb?token={notebook7.token}")
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
    toggle = page.locator(".jp-NotebookPanel-toolbar .jp-kimi-toolbar-button")
    expect(toggle).to_be_visible(timeout=20_000)  # the Kimi icon, next to the kernel
    expect(page.locator("#kimi-jupyter-sidebar")).to_be_hidden()
    shot(page, "n6-notebook7-opened")
    toggle.click()
    sidebar = page.locator("#kimi-jupyter-sidebar")
    expect(sidebar).to_be_visible()
    expect(sidebar.locator(".jp-kimi-banner")).to_have_attribute("data-status", "ready", timeout=30_000)
    sim.queue(Reply(text="Hello from the kernel: `df` has one column, **a**."))
    box = sidebar.locator("textarea.jp-kimi-input")
    box.fill("What columns will df have?")
    box.press("Enter")
    turn = sidebar.locator(".jp-kimi-turn").last
    expect(turn).to_have_attribute("data-phase", "done", timeout=20_000)
    expect(turn.locator(".jp-kimi-answer")).to_contain_text("has one column")
    shot(page, "n7-notebook7-sidebar-answered")
    toggle.click()  # the same icon hides the chat again
    expect(sidebar).to_be_hidden()
