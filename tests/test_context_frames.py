"""Frame summaries: content, odd frames, budgets, and bounded cost on big frames."""

from __future__ import annotations

import time
import tracemalloc

import numpy as np
import pandas as pd
import polars as pl
import pytest

from kimi_jupyter.context import estimate_tokens, is_frame, summarize_frame


class Unprintable:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")

    def __str__(self) -> str:
        raise RuntimeError("no str either")


class Unhashable:
    __hash__ = None  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        raise TypeError("cannot compare")

    def __repr__(self) -> str:
        return "Unhashable()"


def assert_fits(text: str, budget: int) -> None:
    assert len(text) <= budget * 4, (len(text), budget)
    assert estimate_tokens(text) <= budget


def test_normal_pandas_frame_shows_everything():
    df = pd.DataFrame(
        {
            "price": [1.5, 2.5, np.nan, 4.0, 10.0],
            "city": ["Paris", "Oslo", "Paris", None, "Rome"],
            "ok": [True, False, True, True, False],
        }
    )
    text = summarize_frame(df, name="sales")
    assert text.startswith("pandas.DataFrame sales: 5 rows x 3 columns")
    for expected in (
        "price",
        "float64",
        "1 (20%)",
        "mean",
        "25%",
        "max",
        "Paris 50%",
        "True 60%",
        "rows (first 5 of 5)",
    ):
        assert expected in text, expected
    assert "4.5" in text  # the mean of the non-null prices
    assert_fits(text, 1500)


def test_series_and_polars():
    s = pd.Series([1, 2, 3], name="n")
    assert summarize_frame(s).startswith("pandas.Series: length 3, dtype int64, name n")
    pdf = pl.DataFrame({"a": [1, 2, None], "s": ["x", "y", "x"], "b": [True, None, False]})
    text = summarize_frame(pdf, name="p")
    assert text.startswith("polars.DataFrame p: 3 rows x 3 columns")
    assert "Int64" in text and "1 (33%)" in text and "x 67%" in text
    assert summarize_frame(pdf["s"]).startswith("polars.Series: length 3, dtype String, name s")
    assert all(is_frame(x) for x in (s, pdf, pdf["s"], pdf.lazy()))
    assert not is_frame([1, 2])


def test_polars_lazyframe_is_described_not_collected():
    lf = pl.LazyFrame({"a": [1, 2]}).with_columns((pl.col("a") * 2).alias("b"), pl.lit("z").alias("c"))
    text = summarize_frame(lf, name="lf")
    assert "not collected" in text and "b: Int64" in text and "c: String" in text
    wide = pl.LazyFrame({f"c{i}": [1] for i in range(2000)})
    text = summarize_frame(wide, budget_tokens=100)
    assert_fits(text, 100)
    assert "more columns" in text


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame(),
        pd.DataFrame(index=range(5)),
        pd.DataFrame({"a": pd.Series([], dtype=float)}),
        pd.DataFrame({"a": [np.nan, np.nan]}),
        pl.DataFrame(),
        pl.DataFrame({"a": pl.Series([], dtype=pl.Float64)}),
        pl.DataFrame({"a": [None, None]}),
    ],
)
def test_empty_frames(frame):
    text = summarize_frame(frame)
    assert "rows" in text and "unavailable" not in text
    assert_fits(text, 1500)


def test_odd_dtypes():
    df = pd.DataFrame(
        {
            "when": pd.date_range("2024-01-01", periods=4, tz="Europe/Paris"),
            "naive": pd.to_datetime(["2020-01-01", None, "2021-06-01", "2022-01-01"]),
            "delta": pd.to_timedelta([1, 2, 3, None], unit="h"),
            "cat": pd.Categorical(["a", "b", "a", "a"]),
            "nint": pd.array([1, None, 3, 4], dtype="Int64"),
            "nbool": pd.array([True, None, False, True], dtype="boolean"),
            "nstr": pd.array(["x", None, "y", "x"], dtype="string"),
            "allnan": [np.nan] * 4,
            "cplx": [1 + 2j, 0, 3j, 1],
            "mixed": [1, "a", 2.5, None],
        }
    )
    text = summarize_frame(df, name="odd")
    assert "Europe/Paris" in text and "min 2024-01-01" in text
    assert "2 categories" in text
    assert "nint" in text and "1 (25%)" in text
    assert "all null" in text
    assert "unavailable" not in text


def test_multiindex_rows_and_columns():
    cols = pd.MultiIndex.from_tuples([("x", "p"), ("x", "q"), ("y", "p")], names=["top", "sub"])
    rows = pd.MultiIndex.from_product([["a", "b"], [1, 2]], names=["k", "n"])
    df = pd.DataFrame(np.arange(12).reshape(4, 3), index=rows, columns=cols)
    text = summarize_frame(df, name="mi")
    assert "MultiIndex with 2 levels (k, n" in text
    assert "column labels: MultiIndex" in text and "x/p" in text and "y/p" in text
    assert "('a', 1)" in text


def test_unprintable_and_unhashable_objects_never_raise():
    df = pd.DataFrame(
        {
            "bad": [Unprintable(), Unprintable(), None],
            "unhash": [Unhashable(), Unhashable(), Unhashable()],
            "lists": [[1], [1], {"a": 2}],
        }
    )
    df.columns = [Unprintable(), "unhash", "lists"]
    text = summarize_frame(df, name="weird")
    assert "<unprintable" in text
    assert "unhash" in text and "lists" in text
    assert_fits(text, 1500)
    # A column of objects whose __repr__ raises, in polars too.
    pdf = pl.DataFrame({"o": pl.Series([Unprintable(), 1], dtype=pl.Object)})
    assert "polars.DataFrame" in summarize_frame(pdf)


def test_non_frames_and_garbage_budgets_do_not_raise():
    assert "not a DataFrame" in summarize_frame([1, 2, 3])
    assert summarize_frame(pd.DataFrame({"a": [1]}), budget_tokens=0) == ""
    assert len(summarize_frame(pd.DataFrame({"a": [1]}), budget_tokens=-5)) == 0
    assert summarize_frame(pd.DataFrame({"a": [1]}), budget_tokens="x")  # type: ignore[arg-type]


def test_ten_thousand_columns():
    df = pd.DataFrame(np.zeros((3, 10_000)), columns=[f"col_{i}" for i in range(10_000)])
    text = summarize_frame(df, name="wide")
    assert_fits(text, 1500)
    assert "3 rows x 10,000 columns" in text
    assert "dtypes: float64 (10,000)" in text
    assert "more columns" in text and "col_0" in text
    small = summarize_frame(df, budget_tokens=120)
    assert_fits(small, 120)
    assert "10,000 columns" in small
    pdf = pl.from_pandas(df)
    text = summarize_frame(pdf)
    assert_fits(text, 1500)
    assert "more columns" in text


@pytest.mark.parametrize("budget", [1, 5, 25, 60, 150, 400, 1500, 6000])
def test_budget_is_respected(budget: int):
    rng = np.random.default_rng(3)
    df = pd.DataFrame(rng.normal(size=(500, 30)), columns=[f"feature_{i}" for i in range(30)])
    df["label"] = rng.choice(["cat", "dog", "a rather long category value"], 500)
    text = summarize_frame(df, budget_tokens=budget, name="df")
    assert_fits(text, budget)
    if budget >= 150:
        assert "pandas.DataFrame df: 500 rows x 31 columns" in text


def test_rows_shrink_before_columns():
    df = pd.DataFrame(np.arange(40.0).reshape(10, 4), columns=list("abcd"))
    full = summarize_frame(df)
    assert "first 5 and last 3" in full
    tight = summarize_frame(df, budget_tokens=estimate_tokens(full) - 20)
    assert "rows (first" in tight and "first 5" not in tight
    assert all(f"  {c} " in tight for c in "abcd")  # every column still profiled


def test_big_frame_is_sampled_fast_and_without_copying():
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.standard_normal((1_000_000, 50)), columns=[f"c{i}" for i in range(50)])
    df.iloc[::10, 3] = np.nan
    summarize_frame(df.iloc[:1000])  # warm imports
    tracemalloc.start()
    start = time.perf_counter()
    text = summarize_frame(df, name="big")
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 5, elapsed
    assert_fits(text, 1500)
    assert "1,000,000 rows x 50 columns" in text
    assert "random sample of 20,000 of 1,000,000 rows" in text
    assert "100,000 (10%)" in text  # exact null count despite sampling
    frame_bytes = 1_000_000 * 50 * 8
    assert peak < frame_bytes / 10, peak  # a small multiple of the sample, not of the frame


def test_big_polars_frame():
    rng = np.random.default_rng(0)
    df = pl.DataFrame(rng.standard_normal((300_000, 20)), schema=[f"c{i}" for i in range(20)])
    start = time.perf_counter()
    text = summarize_frame(df)
    assert time.perf_counter() - start < 5
    assert "random sample of 20,000 of 300,000 rows" in text
    assert_fits(text, 1500)
