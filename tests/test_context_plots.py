"""Plot capture and earlier-cell context with a real IPython shell and the inline backend."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from kimi_jupyter.context import PlotCapture, build_content, get_plot_capture, recent_cells


@pytest.fixture(scope="module")
def shell() -> Iterator[Any]:
    import matplotlib
    from IPython.core.interactiveshell import InteractiveShell

    if InteractiveShell.initialized():
        sh = InteractiveShell.instance()
    else:
        from IPython.testing.globalipapp import get_ipython

        sh = get_ipython()
    backend = matplotlib.get_backend()
    formatter = sh.display_formatter
    active = list(formatter.active_types)
    # Terminal shells only format text/plain; a kernel formats images too.
    formatter.active_types = [*active, "image/png", "image/jpeg"]
    try:
        sh.enable_matplotlib("inline")
    except NotImplementedError:
        pass  # the base shell has no GUI hook; the inline backend is configured all the same
    # Other tests share this process-wide shell and may have installed the shared capture
    # (the extension does): take it out while these tests count hooks, put it back after.
    shared = vars(sh).get("_kimi_plot_capture")
    if shared is not None:
        shared.uninstall()
        del sh._kimi_plot_capture
    yield sh
    if shared is not None:  # the very same object: the extension holds on to it
        shared.install(sh)
        sh._kimi_plot_capture = shared
    from matplotlib import pyplot as plt
    from matplotlib_inline.backend_inline import flush_figures

    plt.close("all")
    formatter.active_types = active
    try:
        sh.events.unregister("post_execute", flush_figures)
    except ValueError:
        pass
    matplotlib.use(backend)


def run(shell: Any, code: str) -> int:
    result = shell.run_cell(code, store_history=True)
    assert result.success, result.error_in_exec or result.error_before_exec
    return result.execution_count


def is_png(data: bytes) -> tuple[int, int]:
    img = Image.open(io.BytesIO(data))
    assert img.format == "PNG"
    return img.size


def test_inline_plots_are_captured_after_the_figure_is_closed(shell: Any):
    before = vars(shell.display_pub).get("publish")  # another capture may be installed already
    capture = PlotCapture()
    capture.install(shell)
    capture.install(shell)  # idempotent: a second install must not double-record
    try:
        run(shell, "import matplotlib.pyplot as plt")
        shown = run(shell, "plt.plot([1, 2, 3])\nplt.show()")
        flushed = run(shell, "plt.figure(figsize=(3, 2)); plt.plot([3, 1, 2]);")  # flushed at cell end
        nothing = run(shell, "value = 41 + 1")
        two = run(shell, "plt.plot([1]); plt.show()\nplt.plot([2]); plt.show()")

        from matplotlib import pyplot as plt

        assert plt.get_fignums() == []  # the inline backend closed every figure
        assert len(capture.plots_for(shown)) == 1
        assert len(capture.plots_for(flushed)) == 1
        w, h = is_png(capture.plots_for(flushed)[0])
        assert w < h * 2 and w > h  # the 3x2 figure, attributed to its own cell
        assert capture.plots_for(nothing) == []
        assert len(capture.plots_for(two)) == 2
        assert capture.last_plots(two) == capture.plots_for(flushed)  # skips the plot-less cell
        assert capture.last_plots(two + 1) == capture.plots_for(two)
        assert capture.counts() == [shown, flushed, two]

        parts = build_content(f"what is in {{Out[{flushed}]}}?", shell.user_ns, history=capture)
        assert [p["type"] for p in parts] == ["text", "image_url", "text"]
        assert parts[0]["text"] == f"what is in [image: Out[{flushed}] plot]"
        url = parts[1]["image_url"]["url"]
        assert base64.b64decode(url.split(",", 1)[1]) == capture.plots_for(flushed)[0]
    finally:
        capture.uninstall()
    assert vars(shell.display_pub).get("publish") is before  # what was there before is back
    after = run(shell, "plt.plot([1]); plt.show()")
    assert capture.plots_for(after) == []


def test_survives_display_pub_replacement(shell: Any):
    from IPython.core.displaypub import DisplayPublisher

    capture = PlotCapture().install(shell)
    original = shell.display_pub
    try:
        shell.display_pub = DisplayPublisher(shell=shell)
        count = run(shell, "import matplotlib.pyplot as plt\nplt.plot([5, 6]); plt.show()")
        assert len(capture.plots_for(count)) == 1
    finally:
        capture.uninstall()
        shell.display_pub = original
    assert "publish" not in vars(original)


def test_shared_capture_per_shell(shell: Any):
    first = get_plot_capture(shell)
    try:
        assert get_plot_capture(shell) is first and first.installed
    finally:
        first.uninstall()


def test_memory_is_bounded():
    capture = PlotCapture(max_cells=20, max_per_cell=3, max_bytes=10_000)
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100).decode()
    for count in range(1, 31):
        capture.record({"text/plain": "<Figure>", "image/png": png}, count=count)
    assert capture.counts() == list(range(11, 31))
    for _ in range(5):
        capture.record({"image/png": png}, count=30)
    assert len(capture.plots_for(30)) == 3
    big = base64.b64encode(b"\xff\xd8\xff" + b"\x00" * 6000).decode()
    capture.record({"image/jpeg": big}, count=31)
    capture.record({"image/jpeg": big}, count=32)
    assert capture.counts()[-1] == 32 and 31 not in capture.counts()  # byte cap evicts oldest
    capture.record({"text/plain": "no image"}, count=33)
    capture.record("not a bundle", count=34)
    capture.record({"image/png": "%%% not base64"}, count=35)
    assert 33 not in capture.counts() and 35 not in capture.counts()


def test_recent_cells(shell: Any):
    capture = PlotCapture().install(shell)
    try:
        first = run(shell, "import pandas as pd\nframe = pd.DataFrame({'a': [1, 2]})")
        second = run(shell, "frame")
        third = run(shell, "import matplotlib.pyplot as plt\nplt.plot([1, 2]); plt.show()")
        run(shell, "")  # empty cells are skipped
        fourth = run(shell, "%%capture\nprint('hidden')")
        current = shell.execution_count
        text = recent_cells(shell, 3, plots=capture)
        assert f"In [{first}]:" not in text
        assert f"In [{second}]:\nframe\nOut[{second}]: pandas.DataFrame: 2 rows x 1 columns" in text
        assert f"In [{third}]:" in text and "[plot]" in text
        assert f"In [{fourth}]:\n%%capture" in text  # raw source, as typed
        assert f"In [{current}]" not in text
        assert text.index(f"In [{second}]") < text.index(f"In [{third}]") < text.index(f"In [{fourth}]")
        small = recent_cells(shell, 3, plots=capture, max_chars=120)
        assert len(small) <= 120 and f"In [{fourth}]" in small
        skipped = recent_cells(shell, 3, plots=capture, skip_prefixes=("%%capture",))
        assert "%%capture" not in skipped and f"In [{first}]:" in skipped
        assert recent_cells(shell, 0) == ""
        assert f"In [{first}]" in recent_cells(shell, 1, before_count=second)
    finally:
        capture.uninstall()


def test_running_count_follows_either_ipython_counting_order():
    """IPython 9 advances execution_count before running a cell, IPython 8 after."""
    from types import SimpleNamespace

    for advances_first in (True, False):
        shell = SimpleNamespace(execution_count=5)
        capture = PlotCapture()
        capture._shell = shell
        capture._advances_first = not advances_first  # a wrong guess, corrected by the first cell
        info = SimpleNamespace(store_history=True)
        if advances_first:
            shell.execution_count = 6  # already advanced for cell 5
        capture._on_pre_run_cell(info)
        capture._on_post_run_cell(SimpleNamespace(info=info, execution_count=5))
        shell.execution_count = 7 if advances_first else 6  # the next cell, number 6
        capture._on_pre_run_cell(info)
        assert capture.running_count() == 6
        # A cell that stores no history (nbval) keeps the counter where it is.
        capture._on_pre_run_cell(SimpleNamespace(store_history=False))
        assert capture.running_count() == shell.execution_count


def test_a_displayed_figure_attaches_the_png_the_notebook_showed(shell: Any):
    from kimi_jupyter.context import image_part
    from kimi_jupyter.context.plots import displayed_png

    capture = PlotCapture().install(shell)
    try:
        count = run(shell, "import matplotlib.pyplot as plt\n"
                           "kept_fig, kept_ax = plt.subplots(figsize=(4, 3))\nkept_ax.plot([1, 3, 2])")
        fig = shell.user_ns["kept_fig"]
        shown = capture.plots_for(count)
        assert len(shown) == 1 and displayed_png(fig) == shown[0]
        url = image_part(fig)["image_url"]["url"]
        assert base64.b64decode(url.split(",", 1)[1]) == shown[0]  # the same bytes, no re-render

        # Changed after it was displayed: rendered afresh, with the change.
        run(shell, "kept_ax.set_title('changed later')")
        assert displayed_png(fig) is None
        fresh = base64.b64decode(image_part(fig)["image_url"]["url"].split(",", 1)[1])
        assert fresh != shown[0] and is_png(fresh)

        # Too big for the box: the displayed PNG is downscaled, not sent as is.
        run(shell, "kept_ax.set_title('shown again'); display(kept_fig)")
        assert displayed_png(fig) is not None
        small = base64.b64decode(image_part(fig, max_size=(120, 90))["image_url"]["url"].split(",", 1)[1])
        assert max(is_png(small)) <= 120
    finally:
        capture.uninstall()
        run(shell, "plt.close('all')")
    assert "format" not in vars(shell.display_formatter)  # the formatter is restored
