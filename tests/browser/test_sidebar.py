"""The Kimi sidebar in a real JupyterLab: ask about a DataFrame, watch it stream, use the code."""

from __future__ import annotations

import json

from lab_ui import cell_sources, open_notebook, output_area, run_cell, start_cell
from playwright.sync_api import expect

from kimi_jupyter.testing import Reply, ToolCall

FRAME_CELL = 'import pandas as pd\ndf = pd.DataFrame({"city": ["Paris", "Lyon", "Nice"], "price": [3.5, 2.0, 4.25]})\ndf'
REASONING = (
    "The user asks which columns the DataFrame df has. The summary lists two columns: city "
    "(text) and price (float). I should name them and show how to list them in code, maybe "
    "adding a derived column so the example does something visible."
)
ANSWER = (
    "`df` has **two columns**:\n\n- `city`: text\n- `price`: float\n\n"
    "```python\ndf['price_eur'] = df['price'] * 1.1\nprint(sorted(df.columns))\n```\n"
)


def open_sidebar(page):
    page.evaluate("async () => { await window.jupyterapp.commands.execute('kimi:open-chat'); }")
    return page.locator("#kimi-jupyter-sidebar")


def ready_sidebar(page, lab, name, source, run=False):
    """A one-cell notebook ``name`` open (its cell run if ``run``), the chat beside it ready."""
    lab.write_notebook(name, [{"cell_type": "code", "source": source}])
    open_notebook(page, lab.notebook_url(name))
    if run:
        run_cell(page, 0)
    sidebar = open_sidebar(page)
    expect(sidebar.locator(".jp-kimi-banner")).to_have_attribute("data-status", "ready", timeout=30_000)
    return sidebar


def send(sidebar, prompt):
    """Type ``prompt``, press Enter; the new turn."""
    box = sidebar.locator("textarea.jp-kimi-input")
    box.fill(prompt)
    box.press("Enter")
    return sidebar.locator(".jp-kimi-turn").last


def test_sidebar_asks_about_a_dataframe_streams_and_inserts_code(page, lab, sim, shot):
    lab.write_notebook("sidebar.ipynb", [{"cell_type": "code", "source": FRAME_CELL}])
    open_notebook(page, lab.notebook_url("sidebar.ipynb"))
    run_cell(page, 0)

    page.keyboard.press("Control+Alt+K")  # the shortcut opens the sidebar
    sidebar = page.locator("#kimi-jupyter-sidebar")
    expect(sidebar).to_be_visible()
    expect(sidebar.locator(".jp-kimi-notebook")).to_have_text("sidebar.ipynb")
    banner = sidebar.locator(".jp-kimi-banner")
    expect(banner).to_have_attribute("data-status", "ready", timeout=30_000)
    expect(banner).to_contain_text("kimi-k2.5 (moonshot)")
    shot(page, "a1-sidebar-ready")

    sim.queue(Reply(text=ANSWER, reasoning=REASONING, chunk_chars=5, chunk_delay=0.03))
    turn = send(sidebar, "What columns does {df} have?")
    expect(turn).to_have_attribute("data-phase", "thinking", timeout=15_000)
    expect(turn.locator(".jp-kimi-reasoning-text")).to_contain_text("The user asks")
    expect(turn.locator(".jp-kimi-reasoning")).to_have_attribute("open", "")
    shot(page, "a2-reasoning-streaming")
    expect(turn).to_have_attribute("data-phase", "answering", timeout=15_000)
    expect(turn.locator(".jp-kimi-answer")).to_contain_text("two columns")
    shot(page, "a3-answer-streaming")
    expect(turn).to_have_attribute("data-phase", "done", timeout=20_000)
    expect(turn.locator(".jp-kimi-usage")).to_contain_text("usage: prompt")
    expect(turn.locator(".jp-kimi-usage")).to_contain_text("cost")
    expect(turn.locator(".jp-kimi-reasoning")).not_to_have_attribute("open", "")  # folded
    expect(turn.locator(".jp-kimi-answer pre")).to_contain_text("price_eur")
    # A long code line scrolls inside its block (no clipping at the sidebar's edge), and the
    # block's buttons sit on one row, each on one line.
    layout = turn.locator(".jp-kimi-answer pre").first.evaluate(
        """pre => {
          const side = document.querySelector('#kimi-jupyter-sidebar').getBoundingClientRect();
          const buttons = [...pre.previousElementSibling.querySelectorAll('button')];
          const boxes = buttons.map(b => b.getBoundingClientRect());
          return {
            scrolls: pre.scrollWidth > pre.clientWidth && ['auto', 'scroll'].includes(getComputedStyle(pre).overflowX),
            inside: pre.getBoundingClientRect().right <= side.right + 1,
            rows: new Set(boxes.map(b => Math.round(b.top))).size,
            oneLine: boxes.every(b => b.height < 2 * parseFloat(getComputedStyle(buttons[0]).lineHeight)),
            labels: buttons.map(b => b.getAttribute('aria-label') || b.textContent),
          };
        }"""
    )
    assert layout == {"scrolls": True, "inside": True, "rows": 1, "oneLine": True,
                      "labels": ["Copy", "Insert below", "Replace active cell", "Run"]}, layout
    shot(page, "a4-answer-done")

    # The kernel filled {df} with a summary of the live DataFrame.
    sent = json.dumps(sim.chat_requests[-1].messages[-1]["content"])
    assert "city" in sent and "price" in sent and "{df}" not in sent

    before = len(cell_sources(page))
    turn.locator(".jp-kimi-code-actions").first.get_by_role("button", name="Insert below").click()
    page.wait_for_function(f"() => window.jupyterapp.shell.currentWidget.content.widgets.length === {before + 1}")
    sources = cell_sources(page)
    index = next(i for i, source in enumerate(sources) if "price_eur" in source)
    assert sources[index] == "df['price_eur'] = df['price'] * 1.1\nprint(sorted(df.columns))"

    run_cell(page, index)
    expect(output_area(page, index)).to_contain_text("['city', 'price', 'price_eur']")
    shot(page, "a5-code-inserted-and-run")


PLOT_CELL = (
    "import matplotlib.pyplot as plt\n"
    "plt.figure(figsize=(3, 2))\nplt.plot([1, 3, 2])\nplt.title('sales')\nplt.show()"
)


def test_sidebar_attaches_the_active_cell_and_its_plot(page, lab, sim, shot):
    lab.write_notebook("attach.ipynb", [
        {"cell_type": "code", "source": "total = 40 + 2\nprint(total)"},
        {"cell_type": "code", "source": PLOT_CELL},
    ])
    open_notebook(page, lab.notebook_url("attach.ipynb"))
    run_cell(page, 0)
    run_cell(page, 1, timeout=60_000)
    sidebar = open_sidebar(page)
    expect(sidebar.locator(".jp-kimi-banner")).to_have_attribute("data-status", "ready", timeout=30_000)
    page.evaluate("() => { window.jupyterapp.shell.currentWidget.content.activeCellIndex = 0; }")
    sidebar.get_by_role("button", name="Attach active cell").click()
    page.evaluate("() => { window.jupyterapp.shell.currentWidget.content.activeCellIndex = 1; }")
    sidebar.get_by_role("button", name="Attach output / plot").click()
    chips = sidebar.locator(".jp-kimi-composer .jp-kimi-chip")
    expect(chips.first).to_contain_text("cell [1]")
    expect(chips.nth(1)).to_contain_text("plot from cell [2]")
    expect(chips.nth(1).locator("img")).to_be_visible()
    shot(page, "a6-attachments")
    sim.queue(Reply(text="It prints 42, and the plot shows sales rising then dipping.", reasoning="Look."))
    turn = send(sidebar, "What does this cell print, and what does the plot show?")
    expect(turn).to_have_attribute("data-phase", "done", timeout=20_000)
    expect(turn.locator(".jp-kimi-answer")).to_contain_text("It prints 42")
    content = sim.chat_requests[-1].messages[-1]["content"]
    sent = json.dumps(content)
    assert "total = 40 + 2" in sent and "42" in sent
    assert any(part["type"] == "image_url" and part["image_url"]["url"].startswith("data:image/")
               for part in content)
    shot(page, "a7-attached-cell-and-plot-answered")


def test_sidebar_states_missing_package_missing_key_and_busy(page, lab, shot):
    lab.write_notebook("nokimi.ipynb", [{"cell_type": "code", "source": "1 + 1"}], kernel="nokimi")
    open_notebook(page, lab.notebook_url("nokimi.ipynb"))
    banner = open_sidebar(page).locator(".jp-kimi-banner")
    expect(banner).to_have_attribute("data-status", "not-installed", timeout=30_000)
    expect(banner).to_contain_text("kimi_jupyter is not installed in this kernel: pip install kimi-jupyter")
    shot(page, "s1-kernel-without-kimi_jupyter")

    lab.write_notebook("nokey.ipynb", [{"cell_type": "code", "source": "import time\ntime.sleep(4)"}], kernel="nokey")
    open_notebook(page, lab.notebook_url("nokey.ipynb"))
    sidebar = open_sidebar(page)
    banner = sidebar.locator(".jp-kimi-banner")
    expect(banner).to_have_attribute("data-status", "ready", timeout=30_000)
    expect(banner).to_have_attribute("data-level", "warn")
    expect(banner).to_contain_text("No API key in this kernel. Set MOONSHOT_API_KEY")
    shot(page, "s2-kernel-without-key")

    start_cell(page, 0)
    expect(banner).to_contain_text("Kernel busy - your message will be sent when it is idle.", timeout=10_000)
    turn = send(sidebar, "hello?")
    expect(turn).to_have_attribute("data-phase", "queued")
    expect(turn).to_contain_text("Kernel busy")
    shot(page, "s3-kernel-busy-message-queued")
    # Once the cell ends the kernel answers: without a key, the turn fails with what to do.
    expect(turn).to_have_attribute("data-phase", "failed", timeout=20_000)
    expect(turn.locator(".jp-kimi-alert")).to_contain_text("MOONSHOT_API_KEY")
    shot(page, "s4-no-key-failure")


def test_stop_interrupts_the_kernel_and_keeps_the_partial_answer(page, lab, sim, shot):
    sidebar = ready_sidebar(page, lab, "stop.ipynb", "x = 1")
    sim.queue(Reply(text="This answer streams slowly " + "and on " * 200, chunk_chars=4, chunk_delay=0.03))
    turn = send(sidebar, "Tell me a long story")
    expect(turn.locator(".jp-kimi-answer")).to_contain_text("streams slowly", timeout=15_000)
    sidebar.get_by_role("button", name="Stop").click()
    expect(turn).to_have_attribute("data-phase", "interrupted", timeout=15_000)
    expect(turn.locator(".jp-kimi-alert")).to_contain_text("Interrupted")
    expect(turn.locator(".jp-kimi-answer")).to_contain_text("This answer streams slowly")
    expect(sidebar.get_by_role("button", name="Stop")).to_be_disabled()
    shot(page, "s5-stopped")
    run_cell(page, 0)  # the kernel is healthy


def test_agent_tool_step_waits_for_approve_then_runs(page, lab, sim, shot):
    sidebar = ready_sidebar(page, lab, "agent.ipynb", "numbers = [1, 2, 3]", run=True)
    code = ("total = sum(numbers) * 7  # the numbers the notebook defined, times seven, as asked\n"
            "print(total)")
    sim.queue(
        Reply(reasoning="I should compute it in the kernel.",
              tool_calls=[ToolCall("run_python", {"code": code})]),
        Reply(text="The sum times seven is **42**."),
    )
    sidebar.get_by_label("Let Kimi run code (asks first)").check()
    turn = send(sidebar, "What is sum(numbers) * 7? Compute it.")
    step = turn.locator(".jp-kimi-step").first
    expect(step).to_have_attribute("data-state", "awaiting approval", timeout=20_000)
    pre = step.locator(".jp-kimi-pre").first
    expect(pre).to_contain_text("print(total)")
    # The code keeps its two lines: a long line scrolls sideways instead of wrapping.
    lines = pre.evaluate("p => ({height: p.clientHeight, line: parseFloat(getComputedStyle(p).lineHeight),"
                         " scroll: p.scrollWidth > p.clientWidth, ws: getComputedStyle(p).whiteSpace})")
    assert lines["ws"] == "pre" and lines["scroll"], lines
    assert lines["height"] < 4 * lines["line"], lines
    expect(step.get_by_role("button", name="Don't run")).to_be_visible()
    shot(page, "s6-agent-awaiting-approval")
    step.get_by_role("button", name="Run it").click()
    expect(turn).to_have_attribute("data-phase", "done", timeout=20_000)
    expect(step).to_have_attribute("data-state", "done")
    expect(step).to_contain_text("42")
    expect(turn.locator(".jp-kimi-answer")).to_contain_text("The sum times seven is 42.")
    step.locator("summary").click()  # fold the step to see the whole turn
    shot(page, "s7-agent-approved-and-answered")


def test_a_kernel_restart_ends_the_running_answer_and_the_chat_reconnects(page, lab, sim, shot):
    sidebar = ready_sidebar(page, lab, "restart.ipynb", "before = 'set before the restart'", run=True)
    banner = sidebar.locator(".jp-kimi-banner")

    sim.queue(Reply(text="First answer."))
    expect(send(sidebar, "Remember the word blue.")).to_have_attribute("data-phase", "done", timeout=20_000)

    sim.queue(Reply(text="A slow answer " + "that goes on " * 300, chunk_chars=4, chunk_delay=0.03))
    running = send(sidebar, "Tell me a long story")
    expect(running.locator(".jp-kimi-answer")).to_contain_text("A slow answer", timeout=15_000)
    page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.restart()")

    # The answer the old kernel was streaming ends, keeps its text, and says what happened.
    expect(running).to_have_attribute("data-phase", "failed", timeout=20_000)
    expect(running.locator(".jp-kimi-alert")).to_contain_text("The kernel restarted before Kimi finished")
    expect(running.locator(".jp-kimi-answer")).to_contain_text("A slow answer")
    expect(sidebar.locator(".jp-kimi-divider")).to_contain_text("a new conversation starts here")
    expect(sidebar.get_by_role("button", name="Stop")).to_be_disabled()
    expect(banner).to_have_attribute("data-status", "ready", timeout=30_000)
    shot(page, "s8-kernel-restarted")

    # The chat reconnects to the new kernel by itself and sees its variables.
    run_cell(page, 0)
    sim.queue(Reply(text="The variable says it was set before the restart."))
    after = send(sidebar, "What does {before} say?")
    expect(after).to_have_attribute("data-phase", "done", timeout=20_000)
    expect(after.locator(".jp-kimi-answer")).to_contain_text("set before the restart")
    messages = sim.chat_requests[-1].messages
    sent = json.dumps(messages)
    assert "set before the restart" in sent and "{before}" not in sent
    assert "blue" not in sent  # the new kernel's conversation starts over, as the divider says
    shot(page, "s9-after-restart-answered")


def test_the_think_box_the_model_picker_and_the_answer_start_apply_to_the_next_message(page, lab, sim, shot):
    sidebar = ready_sidebar(page, lab, "think.ipynb", "x = 1")
    think = sidebar.get_by_label("Think")
    expect(think).to_be_checked()  # the kernel's Kimi.thinking (on by default)
    think.uncheck()
    shot(page, "s10-think-box-off")
    sim.queue(Reply(text="Quick answer, no reasoning."))
    turn = send(sidebar, "Quick question")
    expect(turn).to_have_attribute("data-phase", "done", timeout=20_000)
    expect(turn.locator(".jp-kimi-head")).to_contain_text("thinking off")
    assert sim.chat_requests[-1].json["thinking"] == {"type": "disabled"}

    # The model picker: the provider's list, the kernel's model first; a pick holds.
    model = sidebar.get_by_label("Model")
    expect(model).to_have_value("kimi-k2.5")
    expect(model.locator("option[value='kimi-k2-turbo-preview']")).to_have_count(1)
    model.select_option("kimi-k2-turbo-preview")
    sim.queue(Reply(text="Turbo answer."))
    turn = send(sidebar, "Which model are you?")
    expect(turn).to_have_attribute("data-phase", "done", timeout=20_000)
    expect(turn.locator(".jp-kimi-head")).to_contain_text("kimi-k2-turbo-preview")
    assert sim.chat_requests[-1].json["model"] == "kimi-k2-turbo-preview"
    shot(page, "s11-model-picked")
    model.select_option("kimi-k2.5")

    think.check()
    sim.queue(Reply(text="Thought it through.", reasoning="Let me think."))
    turn = send(sidebar, "Harder question")
    expect(turn).to_have_attribute("data-phase", "done", timeout=20_000)
    expect(turn.locator(".jp-kimi-head")).to_contain_text("thinking on")
    expect(turn.locator(".jp-kimi-reasoning")).to_contain_text("Let me think.")
    assert sim.chat_requests[-1].json["thinking"] == {"type": "enabled"}

    # The answer's start (partial mode): sent as a partial assistant message, shown joined
    # with what Kimi continues, and for that one message only.
    start = sidebar.get_by_label("Answer starts with")
    start.fill("The answer is")
    shot(page, "s12-answer-start")
    sim.queue(Reply(text=" 42."))
    turn = send(sidebar, "What is six times seven?")
    expect(turn).to_have_attribute("data-phase", "done", timeout=20_000)
    expect(turn.locator(".jp-kimi-answer")).to_contain_text("The answer is 42.")
    assert sim.chat_requests[-1].messages[-1] == {"role": "assistant", "content": "The answer is", "partial": True}
    expect(start).to_have_value("")
    sim.queue(Reply(text="Plain again."))
    turn = send(sidebar, "And now?")
    expect(turn).to_have_attribute("data-phase", "done", timeout=20_000)
    assert sim.chat_requests[-1].messages[-1]["role"] == "user"
