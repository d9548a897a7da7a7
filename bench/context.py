"""4. Context encoding: a figure, a big DataFrame and a big image to message content parts.

* figure: a 12x8 in matplotlib figure at 200 dpi (line, scatter, histogram, image panels)
  through ``image_part_with_info`` (time, encoded bytes, pixels); baseline a plain
  ``fig.savefig`` to PNG bytes at the same dpi (and, in the details, ``bbox_inches="tight"``
  as the inline backend renders it);
* displayed figure: the same figure once the notebook has displayed it (a real IPython shell
  with the plot capture installed, ``display(fig)`` through the PNG formatter as the inline
  backend does), then ``image_part_with_info(fig)``, which reuses the displayed PNG: target
  under 5 ms; baseline the same ``fig.savefig`` to PNG bytes, in the same run;
* frame: ``summarize_frame`` of a 1,000,000 x 50 DataFrame of mixed dtypes (floats with and
  without nulls, ints, a bool, a datetime, categoricals, strings): time (< 250 ms), size
  (within its token budget) and peak traced memory (``tracemalloc``, a run of its own) against
  the size of the 20,000-row sample its statistics come from; baseline ``df.describe()``;
* image: an 8000x8000 RGB image downscaled to Kimi's 4096x2160 box through ``image_part``;
  baseline a plain Pillow ``thumbnail`` to the same box plus a PNG save. Also the same
  image as a JPEG file on disk (the common case), against ``Image.open`` + ``thumbnail`` +
  JPEG save.

Timed runs alternate ours and the baseline; medians are reported.
"""

from __future__ import annotations

import gc
import io
import os
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from .common import Log, Result, median

FRAME_TARGET_MS = 250.0
MEMORY_MULTIPLE = 4.0  # "a small multiple of the sample"
BUDGET_TOKENS = 1500


def _alternate(ours: Callable[[], Any], base: Callable[[], Any], reps: int) -> tuple[list[float], list[float]]:
    a: list[float] = []
    b: list[float] = []
    for r in range(reps):
        for fn, out in ((ours, a), (base, b)) if r % 2 == 0 else ((base, b), (ours, a)):
            gc.collect()
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return a, b


def _peak(fn: Callable[[], Any]) -> int:
    """Peak bytes traced while ``fn`` runs, above what was allocated before."""
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        fn()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


# -- figure ------------------------------------------------------------------------------
def _figure(size: tuple[float, float], dpi: int) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np
    from matplotlib.figure import Figure

    rng = np.random.default_rng(1)
    fig = Figure(figsize=size, dpi=dpi)
    axes = fig.subplots(2, 2)
    x = np.linspace(0, 20, 5_000)
    for k in range(4):
        axes[0, 0].plot(x, np.sin(x + k) * np.exp(-x / (10 + k)), label=f"series {k}")
    axes[0, 0].legend(loc="upper right")
    axes[0, 0].set_title("damped series")
    pts = rng.normal(size=(3_000, 2))
    axes[0, 1].scatter(pts[:, 0], pts[:, 1], c=pts[:, 0] * pts[:, 1], s=6, cmap="viridis")
    axes[0, 1].set_title("scatter")
    axes[1, 0].hist(rng.gamma(2.0, 2.0, 50_000), bins=80)
    axes[1, 0].set_title("distribution")
    axes[1, 1].imshow(rng.random((60, 90)).cumsum(axis=1), aspect="auto", cmap="magma")
    axes[1, 1].set_title("heatmap")
    fig.suptitle("Quarterly sales overview")
    return fig


def bench_figure(quick: bool) -> list[Result]:
    from kimi_jupyter.context import image_part_with_info

    size, dpi = ((6.0, 4.0), 100) if quick else ((12.0, 8.0), 200)
    reps = 1 if quick else 4
    fig = _figure(size, dpi)
    info: dict[str, Any] = {}

    def ours() -> None:
        part, meta = image_part_with_info(fig)
        info["meta"], info["url_chars"] = meta, len(part["image_url"]["url"])

    def plain() -> None:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
        info["plain_bytes"] = buf.tell()

    def tight() -> None:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
        info["tight_bytes"] = buf.tell()

    ours()  # warm-up: fonts, caches
    a, b = _alternate(ours, plain, reps)
    c = [] if quick else _alternate(ours, tight, 1)[1]
    meta = info["meta"]
    label = f"{size[0]:g}x{size[1]:g} in @{dpi}"
    return [Result(
        f"figure {label} -> image part", median(a) * 1000, median(b) * 1000, "ms", "fig.savefig(png)", "info", None,
        details={
            "pixels": f"{meta.width}x{meta.height}", "mime": meta.mime, "png_bytes": meta.bytes,
            "data_url_chars": info["url_chars"], "plain_savefig_bytes": info["plain_bytes"],
            "tight_savefig_ms": round(median(c) * 1000, 1) if c else None,
            "tight_savefig_bytes": info.get("tight_bytes"),
        },
    )]


DISPLAYED_TARGET_MS = 5.0


def bench_displayed_figure(quick: bool) -> list[Result]:
    import contextlib

    from IPython.core.interactiveshell import InteractiveShell
    from IPython.display import display
    from matplotlib_inline.backend_inline import select_figure_formats

    from kimi_jupyter.context import get_plot_capture, image_part_with_info

    size, dpi = ((6.0, 4.0), 100) if quick else ((12.0, 8.0), 200)
    reps = 3 if quick else 9
    shell = InteractiveShell.instance()
    formatter = shell.display_formatter
    formatter.active_types = [*formatter.active_types, "image/png"]
    select_figure_formats(shell, {"png"})
    capture = get_plot_capture(shell)
    fig = _figure(size, dpi)
    twin = _figure(size, dpi)  # the baseline's: savefig leaves a figure stale, so it would re-render
    info: dict[str, Any] = {}
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the base shell prints text/plain
            display(fig)  # what the inline backend does at the end of the plotting cell
        shown = capture.plots_for(capture.running_count() or 0) or [b""]

        def ours() -> None:
            part, meta = image_part_with_info(fig)
            info["meta"], info["url_chars"] = meta, len(part["image_url"]["url"])

        def plain() -> None:
            buf = io.BytesIO()
            twin.savefig(buf, format="png", dpi=dpi)

        ours()
        a, b = _alternate(ours, plain, reps)
    finally:
        capture.uninstall()
    meta = info["meta"]
    ms = median(a) * 1000
    label = f"{size[0]:g}x{size[1]:g} in @{dpi}"
    return [Result(
        f"displayed figure {label} -> image part", ms, median(b) * 1000, "ms", "fig.savefig(png)",
        f"< {DISPLAYED_TARGET_MS:g} ms", ms < DISPLAYED_TARGET_MS,
        details={"pixels": f"{meta.width}x{meta.height}", "png_bytes": meta.bytes,
                 "data_url_chars": info["url_chars"], "same_bytes_as_displayed": meta.bytes == len(shown[-1]),
                 "ours_ms_samples": [round(x * 1000, 2) for x in a]},
    )]


# -- frame -------------------------------------------------------------------------------
def _frame(rows: int, log: Log) -> Any:
    import numpy as np
    import pandas as pd

    start = time.perf_counter()
    rng = np.random.default_rng(7)
    data: dict[str, Any] = {}
    for j in range(38):
        data[f"f{j:02d}"] = rng.standard_normal(rows) * (j + 1) + j
    for j in range(2):
        col = rng.standard_normal(rows)
        col[rng.random(rows) < 0.05 * (j + 1)] = np.nan
        data[f"nullable{j}"] = col
    for j in range(4):
        data[f"i{j}"] = rng.integers(0, 10 ** (j + 2), rows)
    data["flag"] = rng.random(rows) < 0.3
    data["when"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365 * 86_400, rows), unit="s")
    regions = np.array(["north", "south", "east", "west", "central"], dtype=object)
    data["region"] = pd.Categorical(regions[rng.integers(0, 5, rows)])
    data["tier"] = pd.Categorical(rng.integers(0, 3, rows))
    names = np.array([f"customer-{k:05d}" for k in range(20_000)], dtype=object)
    data["customer"] = names[rng.integers(0, len(names), rows)]
    data["note"] = np.where(rng.random(rows) < 0.2, None, names[rng.integers(0, 500, rows)])
    df = pd.DataFrame(data)
    log(f"frame: built {rows:,} x {df.shape[1]} in {time.perf_counter() - start:.1f} s")
    return df


def bench_frame(quick: bool, log: Log) -> list[Result]:
    from kimi_jupyter.context import estimate_tokens, summarize_frame
    from kimi_jupyter.context._frames_pandas import SAMPLE_ROWS

    rows = 50_000 if quick else 1_000_000
    reps = 2 if quick else 5
    base_reps = 1 if quick else 3
    df = _frame(rows, log)
    out: dict[str, str] = {}

    def ours() -> None:
        out["text"] = summarize_frame(df, budget_tokens=BUDGET_TOKENS, name="df")

    def describe() -> None:
        df.describe()

    ours()  # warm-up (imports)
    a, b = _alternate(ours, describe, base_reps)
    for _ in range(reps - base_reps):
        gc.collect()
        start = time.perf_counter()
        ours()
        a.append(time.perf_counter() - start)
    tokens = estimate_tokens(out["text"])
    frame_bytes = int(df.memory_usage(deep=True).sum())
    sample_bytes = frame_bytes * min(rows, SAMPLE_ROWS) / rows
    peak = _peak(ours)
    describe_peak = _peak(describe)
    mb = 1 / 2**20
    label = f"{rows:,}x{df.shape[1]}"
    ms = median(a) * 1000
    return [
        Result(f"frame {label} summary: time", ms, median(b) * 1000, "ms", "df.describe()",
               f"< {FRAME_TARGET_MS:.0f} ms", ms < FRAME_TARGET_MS,
               details={"ours_ms_samples": [round(x * 1000, 1) for x in a]}),
        Result(f"frame {label} summary: tokens", float(tokens), float(BUDGET_TOKENS), "tok", "budget",
               "<= 1.00x", tokens <= BUDGET_TOKENS, details={"chars": len(out["text"])}),
        Result(f"frame {label} summary: peak memory", peak * mb, sample_bytes * mb, "MB",
               f"{min(rows, SAMPLE_ROWS):,}-row sample", f"<= {MEMORY_MULTIPLE:g}x sample", peak <= MEMORY_MULTIPLE * sample_bytes,
               details={"frame_mb": round(frame_bytes * mb, 1), "peak_vs_frame": round(peak / frame_bytes, 4),
                        "describe_peak_mb": round(describe_peak * mb, 1)}),
    ]


# -- image -------------------------------------------------------------------------------
def _image(side: int) -> Any:
    import numpy as np
    from PIL import Image

    ramp = (np.arange(side, dtype=np.uint32) * 255 // max(1, side - 1)).astype(np.uint8)
    stripes = ((np.arange(side) // 40) % 2 * 60).astype(np.uint8)
    arr = np.empty((side, side, 3), dtype=np.uint8)
    arr[..., 0] = ramp[None, :]
    arr[..., 1] = ramp[:, None]
    arr[..., 2] = stripes[None, :] + stripes[:, None] + ramp[None, ::-1] // 2
    return Image.fromarray(arr, "RGB")


def bench_image(quick: bool, log: Log) -> list[Result]:
    from PIL import Image

    from kimi_jupyter.context import DEFAULT_MAX_SIZE, image_part_with_info

    side = 2400 if quick else 8000
    reps = 1 if quick else 3
    box = (min(DEFAULT_MAX_SIZE), min(DEFAULT_MAX_SIZE))  # a square image fits the short side
    img = _image(side)
    info: dict[str, Any] = {}

    def ours() -> None:
        _, info["ours"] = image_part_with_info(img)

    copies: list[Any] = []

    def thumb() -> None:
        im = copies.pop()
        im.thumbnail(box)
        buf = io.BytesIO()
        im.save(buf, "PNG")
        info["thumb"] = (im.size, buf.tell())

    def prepare() -> None:
        copies.append(img.copy())  # thumbnail works in place: give it a fresh copy, untimed

    a: list[float] = []
    b: list[float] = []
    for r in range(reps + 1):  # the first round is a warm-up
        prepare()
        order = ((ours, a), (thumb, b)) if r % 2 == 0 else ((thumb, b), (ours, a))
        for fn, out in order:
            gc.collect()
            start = time.perf_counter()
            fn()
            if r:
                out.append(time.perf_counter() - start)
    meta = info["ours"]
    rows = [Result(
        f"image {side}x{side} RGB -> image part", median(a) * 1000, median(b) * 1000, "ms",
        "PIL thumbnail+png", "info", None,
        details={"ours_pixels": f"{meta.width}x{meta.height}", "ours_mime": meta.mime, "ours_bytes": meta.bytes,
                 "thumbnail_pixels": "x".join(map(str, info["thumb"][0])), "thumbnail_png_bytes": info["thumb"][1]},
    )]

    with tempfile.TemporaryDirectory(prefix="kimi-bench-img-") as tmp:
        path = os.path.join(tmp, "photo.jpg")
        img.save(path, "JPEG", quality=90)

        def ours_file() -> None:
            _, info["ours_file"] = image_part_with_info(path)

        def thumb_file() -> None:
            with Image.open(path) as im:
                im.thumbnail(box)
                buf = io.BytesIO()
                im.save(buf, "JPEG", quality=90)
                info["thumb_file"] = (im.size, buf.tell())

        if not quick:
            ours_file(), thumb_file()  # warm-up
        a, b = _alternate(ours_file, thumb_file, reps)
    meta = info["ours_file"]
    rows.append(Result(
        f"image {side}x{side} JPEG file -> image part", median(a) * 1000, median(b) * 1000, "ms",
        "PIL open+thumbnail+jpeg", "info", None,
        details={"ours_pixels": f"{meta.width}x{meta.height}", "ours_bytes": meta.bytes,
                 "thumbnail_pixels": "x".join(map(str, info["thumb_file"][0])),
                 "thumbnail_bytes": info["thumb_file"][1]},
    ))
    log(f"image: {side}x{side}, {reps} alternating rounds")
    return rows


def run(quick: bool, log: Log) -> list[Result]:
    return [*bench_figure(quick), *bench_displayed_figure(quick), *bench_frame(quick, log), *bench_image(quick, log)]
