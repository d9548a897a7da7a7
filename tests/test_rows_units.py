"""Pure parts of the rows package: schema parsing, template checks, input shapes, adaptive
concurrency, batch file splitting (no network)."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from kimi_jupyter.rows import RowsError
from kimi_jupyter.rows.batch import _Spool
from kimi_jupyter.rows.data import row_source
from kimi_jupyter.rows.limiter import AdaptiveLimiter
from kimi_jupyter.rows.schema import RowSchema
from kimi_jupyter.rows.template import RowTemplate


def test_a_dict_schema_coerces_each_field_and_a_missing_one_fails_validation():
    schema = RowSchema({"name": str, "total": "float", "count": int, "paid": bool})
    parsed, problem = schema.parse('```json\n{"name": "Acme", "total": "12.5", "count": 3.0, "paid": "yes"}\n```')
    assert problem is None
    assert parsed == {"name": "Acme", "total": 12.5, "count": 3, "paid": True}
    # Every field of the short form is required: a missing one is a validation error (jsonschema).
    parsed, problem = schema.parse('{"name": "x"}')
    assert parsed is None and "'total' is a required property" in problem


def test_a_json_schema_is_used_as_given_and_bad_answers_say_why():
    schema = RowSchema({"type": "object", "properties": {"label": {"type": "string", "enum": ["a", "b"]}}})
    assert schema.fields == ["label"] and '"enum":["a","b"]' in schema.instruction()
    assert schema.parse("[1, 2]") == (None, "the answer is not a JSON object: '[1, 2]'")
    assert schema.parse("no")[1].startswith("the answer is not JSON")
    with pytest.raises(RowsError, match="unknown type"):
        RowSchema({"x": complex})


def test_the_template_checks_columns_and_only_copies_the_names_it_uses():
    frame = pd.DataFrame({"text": ["a"], "n": [1]})
    template = RowTemplate("{text} ({n}) {tone} {{literal}}", row_source(frame), {"tone": "polite", "big": object()})
    assert template.namespace({"text": "a", "n": 1}) == {"text": "a", "n": 1, "tone": "polite"}
    with pytest.raises(RowsError, match="names no column"):
        RowTemplate("Same prompt every time {tone}", row_source(frame), {"tone": "x"})
    with pytest.raises(RowsError, match="not a column"):
        RowTemplate("{txet}", row_source(frame), {})


def test_inputs_of_every_shape_become_rows_in_order():
    series = pd.Series(["x", "y"], name="word")
    assert list(row_source(series).fields()) == [{"value": "x", "word": "x"}, {"value": "y", "word": "y"}]
    assert list(row_source(iter([{"a": 1}, 2])).fields()) == [{"a": 1}, {"value": 2}]
    with pytest.raises(RowsError, match="not str"):
        row_source("one prompt")


async def test_the_limiter_halves_on_a_429_and_grows_back():
    limiter = AdaptiveLimiter(8)
    limiter.throttled(0.0)
    assert limiter.limit == 4
    for _ in range(4):
        await limiter.succeeded()
    assert limiter.limit == 5
    await limiter.acquire()
    started = asyncio.get_running_loop().time()
    limiter.throttled(0.2)
    await limiter.release()
    await limiter.acquire()  # held for the server's wait
    assert asyncio.get_running_loop().time() - started >= 0.19


def _spooled(lines: list[bytes]) -> list[tuple[list[int], bytes]]:
    with _Spool() as spool:
        for pos, line in enumerate(lines):
            spool.add(pos * 10, line)
        return [(rows, file.read()) for file, rows in spool.files()]


def test_batch_files_are_split_by_size_and_count(monkeypatch):
    from kimi_jupyter.rows import batch

    monkeypatch.setattr(batch, "MAX_REQUESTS", 3)
    lines = [b"x" * 10 for _ in range(7)]
    files = _spooled(lines)
    assert [rows for rows, _ in files] == [[0, 10, 20], [30, 40, 50], [60]]
    assert files[0][1] == b"xxxxxxxxxx\n" * 3 and files[2][1] == b"xxxxxxxxxx\n"
    monkeypatch.setattr(batch, "MAX_REQUESTS", 100)
    monkeypatch.setattr(batch, "MAX_FILE_BYTES", 25)
    assert [len(rows) for rows, _ in _spooled(lines)] == [2, 2, 2, 1]


async def test_the_limiter_respects_the_requests_the_server_says_are_left():
    left = {"n": 2}
    limiter = AdaptiveLimiter(8, cap=lambda: left["n"])
    assert limiter.allowed() == 2
    await limiter.acquire()
    await limiter.acquire()
    waiting = asyncio.ensure_future(limiter.acquire())
    await asyncio.sleep(0.05)
    assert not waiting.done()  # two in flight, two allowed
    left["n"] = 8
    await limiter.release()
    await asyncio.wait_for(waiting, 1)
    assert limiter.allowed() == 8


async def _one_slot_two_waiting() -> tuple[AdaptiveLimiter, asyncio.Future, asyncio.Future]:
    limiter = AdaptiveLimiter(1)
    await limiter.acquire()
    second = asyncio.ensure_future(limiter.acquire())
    third = asyncio.ensure_future(limiter.acquire())
    await asyncio.sleep(0.02)
    assert not second.done() and not third.done()
    return limiter, second, third


async def test_a_row_waiting_for_the_limiter_starts_when_one_finishes():
    limiter, second, third = await _one_slot_two_waiting()
    await limiter.release()
    await asyncio.wait_for(second, 1)
    await asyncio.sleep(0.02)
    assert not third.done() and limiter.active == 1  # one slot: one row woken
    third.cancel()
    await asyncio.gather(third, return_exceptions=True)
    await limiter.release()
    assert limiter.active == 0 and not limiter._waiters
    await asyncio.wait_for(limiter.acquire(), 1)  # a cancelled waiter leaves nothing behind


def test_rows_read_only_the_columns_the_template_names():
    import polars as pl

    frame = pd.DataFrame({"text": ["a", "b"], "n": [1, 2], 7: [True, False]})
    assert list(row_source(frame).fields(["text"])) == [{"text": "a"}, {"text": "b"}]
    assert list(row_source(frame).fields(["7", "n"])) == [{"n": 1, "7": True}, {"n": 2, "7": False}]
    assert list(row_source(frame).fields()) == [{"text": "a", "n": 1, "7": True}, {"text": "b", "n": 2, "7": False}]
    wide = pl.DataFrame({"text": ["a"], "other": [1]})
    assert list(row_source(wide).fields(["text"])) == [{"text": "a"}]
    assert list(row_source(wide).fields([])) == [{}]


def test_the_announced_cap_follows_each_new_set_of_headers():
    from kimi_jupyter.ratelimit import rate_limits
    from kimi_jupyter.rows.live import LiveRun

    base = "http://127.0.0.1:9/v1-cap-test"
    run = LiveRun(row_source(["a", "b"]), RowTemplate("Q: {value}", row_source(["a", "b"]), {}), {},
                  concurrency=8, api_base=base)
    cap = run._announced_cap()
    assert cap() == 8  # nothing announced yet
    rate_limits().record(base, {"x-ratelimit-limit-requests": "100", "x-ratelimit-remaining-requests": "3"})
    assert cap() == 3
    rate_limits().record(base, {"x-ratelimit-limit-requests": "100", "x-ratelimit-remaining-requests": "50"})
    assert cap() == 8  # never above what the run asked for
    limiter = AdaptiveLimiter(8, cap)
    rate_limits().record(base, {"x-ratelimit-limit-requests": "100", "x-ratelimit-remaining-requests": "2"})
    assert limiter.allowed() == 2


async def test_a_row_woken_then_cancelled_passes_its_turn_on():
    limiter, second, third = await _one_slot_two_waiting()
    await limiter.release()  # wakes the second...
    second.cancel()  # ...which is cancelled before it runs
    await asyncio.gather(second, return_exceptions=True)
    await asyncio.wait_for(third, 1)  # the slot is not lost
    assert limiter.active == 1
