"""5. Rendering model text: the live views' Markdown repaints and the saved answer's HTML.

* live repaints: a realistic answer (prose, lists, links, code fences, a table) grows to
  100 kB (quick: 20 kB) and is repainted at 60 evenly spaced lengths (quick: 10), as the
  live widget view and the Markdown display do while it streams. Ours is
  ``GrowingMarkdown`` (re-parses only the last top-level block and the new text); the
  baseline is ``safe_markdown`` of the whole text at every repaint (what a stateless
  renderer does). Total time of all repaints; target ``<= 0.25x``. The last repaint must be
  identical to the whole rendering (checked, reported in the details).
* final HTML: ``markdown_to_html`` of the same 100 kB answer (policy rules, Pygments
  highlighting when installed) against markdown-it-py's stock CommonMark renderer with
  tables (no policy, no highlighting), which shows what the policy and highlighting cost
  once per answer (information, no target).

Runs alternate ours and the baseline; medians are reported.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .common import Log, Result, median

LIVE_TARGET = 0.25
PARAGRAPH = (
    "The **rolling mean** smooths the series; see [the pandas docs](https://pandas.pydata.org) "
    "and `Series.rolling`. Values before the window fills are `NaN` unless `min_periods` is set.\n\n"
    "- load the data\n- clean the *outliers*\n  - drop rows with `NaN`\n- plot it\n\n"
    "```python\ndf['smooth'] = df['price'].rolling(3, min_periods=1).mean()\n"
    "for k, row in df.head().iterrows():\n    print(k, row['smooth'])\n```\n\n"
    "| column | meaning |\n|---|---|\n| price | closing price |\n| smooth | 3-day mean |\n\n"
)


def _answer(size: int) -> str:
    return (PARAGRAPH * (size // len(PARAGRAPH) + 1))[:size]


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run(quick: bool, log: Log) -> list[Result]:
    from markdown_it import MarkdownIt

    from kimi_jupyter.untrusted import GrowingMarkdown, markdown_to_html, safe_markdown

    size, repaints, reps = (20_000, 10, 1) if quick else (100_000, 60, 3)
    text = _answer(size)
    ends = [size * (k + 1) // repaints for k in range(repaints)]

    def ours() -> str:
        growing = GrowingMarkdown()
        out = ""
        for end in ends:
            out = growing(text[:end])
        return out

    def baseline() -> str:
        out = ""
        for end in ends:
            out = safe_markdown(text[:end])
        return out

    log(f"render: {repaints} live repaints of a {size:,}-character answer")
    same = ours() == baseline()
    ours_s: list[float] = []
    base_s: list[float] = []
    for _ in range(reps):
        ours_s.append(_timed(ours))
        base_s.append(_timed(baseline))
    live_ratio = median(ours_s) / median(base_s)

    stock = MarkdownIt("commonmark").enable("table")
    markdown_to_html(PARAGRAPH)  # warm-up: Pygments imports its lexer once per process
    final_ours: list[float] = []
    final_base: list[float] = []
    for _ in range(reps):
        final_ours.append(_timed(lambda: markdown_to_html(text)))
        final_base.append(_timed(lambda: stock.render(text)))

    kb = size // 1000
    return [
        Result(
            f"live Markdown {repaints} repaints, {kb} kB answer",
            median(ours_s) * 1000,
            median(base_s) * 1000,
            "ms",
            "safe_markdown of the whole text per repaint",
            f"<= {LIVE_TARGET:g}x",
            live_ratio <= LIVE_TARGET and same,
            details={"ours_s": ours_s, "baseline_s": base_s, "last_repaint_identical": same},
        ),
        Result(
            f"final HTML of a {kb} kB answer",
            median(final_ours) * 1000,
            median(final_base) * 1000,
            "ms",
            "markdown-it-py stock renderer",
            "(info)",
            None,
            details={"ours_s": final_ours, "baseline_s": final_base},
        ),
    ]
