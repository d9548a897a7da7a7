"""kimi_jupyter.map() in a real JupyterLab: the progress widget while rows run, then the plain
summary line that replaces it (what a saved notebook keeps)."""

from __future__ import annotations

from lab_ui import open_notebook, output_area, run_cell, start_cell
from playwright.sync_api import expect

from kimi_jupyter.testing import Reply


def test_map_shows_a_progress_widget_then_a_summary_line(page, lab, sim, shot):
    sim.on(r"ticket", Reply(text="billing", chunk_chars=1, chunk_delay=0.05))
    lab.write_notebook("rows.ipynb", [
        {"cell_type": "code", "source": "import kimi_jupyter, pandas as pd\n"
                                        "df = pd.DataFrame({'text': [f'ticket {i}' for i in range(60)]})"},
        {"cell_type": "code", "source": "out = kimi_jupyter.map('Classify: {text}', df, thinking=False, "
                                        "concurrency=4, use_cache=False)\nout['answer'].value_counts()"},
    ])
    open_notebook(page, lab.notebook_url("rows.ipynb"))
    run_cell(page, 0)
    start_cell(page, 1)
    out = output_area(page, 1)
    bar = out.locator(".widget-hprogress, .widget-progress").first
    expect(bar).to_be_visible(timeout=20_000)
    expect(out).to_contain_text("kimi rows:", timeout=20_000)
    expect(out).to_contain_text("ETA", timeout=20_000)  # rows are done: cost so far and an estimate
    expect(out).to_contain_text("¥")
    shot(page, "r1-rows-progress-widget")
    expect(out).to_contain_text("60/60 rows done", timeout=60_000)
    expect(out).to_contain_text("billing")  # the value counts below the summary
    expect(out.locator(".widget-hprogress, .widget-progress")).to_have_count(0)
    shot(page, "r2-rows-summary-line")
