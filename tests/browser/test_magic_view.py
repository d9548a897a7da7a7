"""`%%kimi` in a real JupyterLab: the live view while it streams, the saved view after,
and the rich MIME rendering of a saved response after the notebook is reopened."""

from __future__ import annotations

import dataclasses

from lab_ui import cell_sources, open_notebook, output_area, run_cell, save, start_cell, wait_kernel_idle
from playwright.sync_api import expect

from kimi_jupyter.display import TurnMeta, final_bundle
from kimi_jupyter.events import Done, ReasoningDelta, TextDelta, Usage
from kimi_jupyter.response import Response
from kimi_jupyter.testing import Reply

MIME = "application/vnd.kimi.response+json"
REASONING = (
    "A rolling mean over three rows needs Series.rolling(3).mean(). The first two values "
    "will be NaN because the window is not full yet; min_periods=1 avoids that. I will show "
    "both and keep the example short so it runs on the user's df."
)
ANSWER = (
    "Use `rolling` on the column, then `mean`:\n\n"
    "```python\ndf['price_3d'] = df['price'].rolling(3, min_periods=1).mean()\ndf.head()\n```\n\n"
    "`min_periods=1` keeps the first rows instead of leaving them empty."
)
PROMPT = "%%kimi\nHow do I add a 3-day rolling mean of price to df?"


def test_kimi_magic_streams_live_then_leaves_static_view(page, lab, sim, shot):
    lab.write_notebook("magic.ipynb", [
        {"cell_type": "code", "source": "%load_ext kimi_jupyter\nimport pandas as pd\n"
                                        "df = pd.DataFrame({'price': [1.0, 2.0, 6.0]})"},
        {"cell_type": "code", "source": PROMPT},
    ])
    open_notebook(page, lab.notebook_url("magic.ipynb"))
    run_cell(page, 0)
    sim.queue(Reply(text=ANSWER, reasoning=REASONING, chunk_chars=4, chunk_delay=0.025))  # ~2.5 s
    start_cell(page, 1)
    out = output_area(page, 1)

    expect(out).to_contain_text("Thinking", timeout=20_000)  # the reasoning panel, open
    expect(out).to_contain_text("A rolling mean over")
    shot(page, "b1-magic-reasoning-streaming")
    expect(out).to_contain_text("Use rolling on the column", timeout=20_000)  # the answer streams
    expect(out).to_contain_text("Reasoning")  # folded, titled with its size
    shot(page, "b2-magic-answer-streaming")

    page.wait_for_function(
        "() => window.jupyterapp.shell.currentWidget.content.widgets[1].model.executionCount !== null",
        timeout=30_000,
    )
    final = out.locator(".jp-kimi-turn, .kimi-turn").first
    expect(final).to_be_visible()
    expect(final).to_contain_text("min_periods=1 keeps the first rows")
    expect(final).to_contain_text("Reasoning")
    expect(final).to_contain_text("cost")  # the usage line / table
    wait_kernel_idle(page)  # the view's widgets are closed; the status bar says Idle again
    shot(page, "b3-magic-final-view")

    # The saved view's code blocks act on the notebook: right below the %%kimi cell.
    actions = out.locator(".jp-kimi-rendered .jp-kimi-code-actions").first
    actions.get_by_role("button", name="Insert below").click()
    page.wait_for_function("() => window.jupyterapp.shell.currentWidget.content.widgets.length === 3")
    code = "df['price_3d'] = df['price'].rolling(3, min_periods=1).mean()\ndf.head()"
    assert cell_sources(page)[2] == code
    actions.get_by_role("button", name="Run below").click()
    page.wait_for_function("() => window.jupyterapp.shell.currentWidget.content.widgets.length === 4")
    assert cell_sources(page)[2:] == [code, code]
    expect(output_area(page, 2)).to_contain_text("price_3d", timeout=20_000)
    expect(output_area(page, 2)).to_contain_text("3.0")  # (1 + 2 + 6) / 3, computed by the kernel
    shot(page, "b4-magic-code-inserted-and-run")
    save(page)


def _saved_response() -> dict:
    response = Response().feed_all([
        ReasoningDelta(REASONING),
        TextDelta(ANSWER),
        Usage(prompt=812, cached=512, completion=240, reasoning=96, total=1052, cost=0.00412, currency="CNY"),
        Done("stop"),
    ])
    meta = TurnMeta(model="kimi-k2.5", thinking=True, provider="moonshot", context_window=262144)
    bundle = dict(final_bundle(response, meta))
    bundle[MIME] = {**response.summary(), "meta": dataclasses.asdict(meta)}
    return bundle


def _check_rich_view(page, index: int) -> None:
    rendered = output_area(page, index).locator(".jp-kimi-rendered .jp-kimi-turn")
    expect(rendered).to_be_visible(timeout=20_000)
    expect(rendered.locator(".jp-kimi-head")).to_contain_text("kimi-k2.5")
    expect(rendered.locator(".jp-kimi-answer")).to_contain_text("min_periods=1 keeps the first rows")
    expect(rendered.locator(".jp-kimi-answer pre")).to_contain_text("rolling(3, min_periods=1)")
    expect(rendered.locator(".jp-kimi-usage")).to_contain_text("cost")
    reasoning = rendered.locator(".jp-kimi-reasoning")
    expect(reasoning).not_to_have_attribute("open", "")  # folded after reload
    reasoning.locator("summary").click()
    expect(reasoning).to_have_attribute("open", "")
    expect(reasoning).to_contain_text("A rolling mean over three rows")


def test_mime_renderer_shows_a_saved_response(page, lab, shot):
    lab.write_notebook("saved.ipynb", [{
        "cell_type": "code", "source": PROMPT, "execution_count": 2,
        "outputs": [{"output_type": "display_data", "data": _saved_response(), "metadata": {}}],
    }])
    open_notebook(page, lab.notebook_url("saved.ipynb"))
    _check_rich_view(page, 0)
    shot(page, "c1-mime-renderer-saved-response")


def test_reopened_kimi_notebook_renders_rich(page, lab, sim, shot, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    for name, value in (("KIMI_BASE_URL", sim.base_url), ("MOONSHOT_API_KEY", "sk-test-simulator"),
                        ("KIMI_PROVIDER", "moonshot")):
        monkeypatch.setenv(name, value)
    path = lab.write_notebook("reopened.ipynb", [
        {"cell_type": "code", "source": "%load_ext kimi_jupyter"},
        {"cell_type": "code", "source": PROMPT},
    ])
    sim.queue(Reply(text=ANSWER, reasoning=REASONING))
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=60, kernel_name="python3",
                   resources={"metadata": {"path": str(lab.root)}}).execute()
    nbformat.write(nb, path)
    saved = nb.cells[1].outputs[-1]["data"]

    open_notebook(page, lab.notebook_url("reopened.ipynb"))
    out = output_area(page, 1)
    expect(out.locator(".jp-kimi-turn, .kimi-turn").first).to_contain_text("min_periods=1 keeps the first rows")
    shot(page, "c2-reopened-notebook")
    assert MIME in saved
    _check_rich_view(page, 1)
    shot(page, "c2-reopened-notebook-rich")
