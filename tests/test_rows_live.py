"""map() with the live engine against the real simulator on 127.0.0.1: answers, cache,
structured output, budgets, Stop, and the bad-input and fault cases of issue 17."""

from __future__ import annotations

import threading
import time

import pandas as pd
import polars as pl
import pytest

import kimi_jupyter
from kimi_jupyter.rows import RowsError
from kimi_jupyter.session import get_session
from kimi_jupyter.testing import Fault, Reply
from kimi_jupyter.testing.ratelimit import RateLimits, RateWindow


def _label(messages):
    text = messages[-1]["content"]
    return Reply(text="positive" if "good" in text else "negative")


@pytest.fixture
def tickets():
    return pd.DataFrame({"text": [f"ticket {i}: {'good' if i % 3 == 0 else 'bad'} service" for i in range(30)],
                         "id": range(30)}, index=[f"t{i}" for i in range(30)])


def _rows_sent(sim):
    return [r for r in sim.chat_requests if r.status == 200]


def test_answers_are_aligned_with_the_frame_and_a_rerun_sends_nothing(kimi_sim_env, tickets):
    kimi_sim_env.on(r"ticket", _label)
    out = kimi_jupyter.map("Sentiment of: {text}", tickets, thinking=False, progress=False, concurrency=4)
    assert list(out.index) == list(tickets.index)
    assert out.loc["t0", "answer"] == "positive" and out.loc["t1", "answer"] == "negative"
    assert out["error"].isna().all()
    assert out.attrs["kimi"]["done"] == 30 and out.attrs["kimi"]["requests"] == 30
    sent = len(kimi_sim_env.chat_requests)
    again = kimi_jupyter.map("Sentiment of: {text}", tickets, thinking=False, progress=False)
    assert len(kimi_sim_env.chat_requests) == sent  # every row replayed from the cache
    assert again.attrs["kimi"]["cached"] == 30 and again.attrs["kimi"]["cost"] == 0
    assert again["answer"].tolist() == out["answer"].tolist()


def test_each_request_holds_one_row_and_the_notebook_variables(kimi_sim_env):
    prompts = kimi_jupyter.map("{instruction} {value}", ["alpha", "beta"], namespace={"instruction": "Echo:"},
                               thinking=False, progress=False)
    assert prompts.errors == [None, None]
    sent = sorted(r.messages[-1]["content"] for r in kimi_sim_env.chat_requests)
    assert sent == ["Echo: alpha", "Echo: beta"]
    assert all(r.json.get("stream") is True and len(r.messages) == 1 for r in kimi_sim_env.chat_requests)


def test_structured_output_becomes_columns_and_unparsable_rows_are_marked(kimi_sim_env):
    kimi_sim_env.on(r"Acme", Reply(text='{"vendor": "Acme", "total": "12.5"}'))
    kimi_sim_env.on(r"Globex", Reply(text="I could not find a total."))
    frame = pl.DataFrame({"invoice": ["Invoice from Acme, 12.50", "Invoice from Globex"]})
    out = kimi_jupyter.map("Extract from: {invoice}", frame, schema={"vendor": str, "total": float},
                           thinking=False, progress=False)
    assert isinstance(out, pl.DataFrame)
    assert out["vendor"].to_list() == ["Acme", None]
    assert out["total"].to_list() == [12.5, None]
    assert out["error"][0] is None and "not JSON" in out["error"][1]
    body = kimi_sim_env.chat_requests[0].json
    assert body["response_format"] == {"type": "json_object"}
    assert '"total":{"type":"number"}' in body["messages"][0]["content"]


def test_an_empty_frame_is_refused_before_anything_is_sent(kimi_sim_env):
    with pytest.raises(RowsError, match="no rows: nothing was sent"):
        kimi_jupyter.map("Sentiment of: {text}", pd.DataFrame({"text": []}), progress=False)
    assert kimi_sim_env.requests == []


def test_a_template_naming_a_missing_column_lists_the_columns(kimi_sim_env, tickets):
    with pytest.raises(RowsError) as caught:
        kimi_jupyter.map("Sentiment of: {txt}", tickets, namespace={}, progress=False)
    assert "{txt}" in str(caught.value) and "text, id" in str(caught.value) and "Nothing was sent" in str(caught.value)
    assert caught.value._render_traceback_() == [f"RowsError: {caught.value}"]
    assert kimi_sim_env.requests == []


def test_a_row_over_the_context_window_fails_alone(kimi_sim_env):
    kimi_sim_env._config.context_limit = 400
    rows = ["short question", "word " * 2000, "another short one"]
    out = kimi_jupyter.map("Answer: {value}", rows, thinking=False, progress=False)
    assert out[0] and out[2] and out[1] is None
    assert out.errors[1].startswith("This row's prompt is over the model's context window")
    assert out.summary.done == 2 and out.summary.failed == 1


def test_a_429_storm_slows_the_run_down_and_every_row_is_answered_once(kimi_sim_env):
    kimi_sim_env._app.window = RateWindow(RateLimits(requests=8, window=1.0))
    rows = [f"question {i}" for i in range(24)]
    out = kimi_jupyter.map("Answer: {value}", rows, thinking=False, progress=False, concurrency=16,
                           retry_backoff=0.1)
    assert out.errors == [None] * 24, out.errors
    assert any(r.status == 429 for r in kimi_sim_env.chat_requests) or out.summary.seconds >= 2
    answered = [r.messages[-1]["content"] for r in _rows_sent(kimi_sim_env)]
    assert sorted(answered) == sorted(f"Answer: {r}" for r in rows)  # none answered (billed) twice


def test_429s_that_outlast_the_client_retries_put_the_row_back_in_the_queue(kimi_sim_env):
    kimi_sim_env.fault(Fault.rate_limit(wait=1), times=6, match=r"question 0")
    out = kimi_jupyter.map("Answer: {value}", ["question 0", "question 1"], thinking=False, progress=False,
                           max_retries=1)
    assert out.errors == [None, None]
    assert len([r for r in _rows_sent(kimi_sim_env) if "question 0" in r.messages[-1]["content"]]) == 1


def test_a_wrong_key_stops_the_run_with_one_message(kimi_sim_env, monkeypatch):
    monkeypatch.setenv("MOONSHOT_API_KEY", "sk-wrong")
    out = kimi_jupyter.map("Answer: {value}", [f"q{i}" for i in range(20)], progress=False, concurrency=2)
    assert out.summary.done == 0
    assert "Authentication" in (out.summary.stopped or "") or "key" in (out.summary.stopped or "").lower()
    assert len(kimi_sim_env.chat_requests) <= 3  # not one request per row
    assert all(e is not None for e in out.errors)


def test_the_run_budget_stops_cleanly_and_keeps_the_done_rows(kimi_sim_env):
    rows = [f"question {i}" for i in range(40)]
    out = kimi_jupyter.map("Answer: {value}", rows, thinking=False, progress=False, concurrency=1, budget=0.0005)
    assert 0 < out.summary.done < 40
    assert out.summary.cost <= 0.0005  # every row in flight held its worst case: never over
    assert "budget" in out.summary.stopped
    assert all(e.startswith("not run") for e in out.errors[out.summary.done:])
    again = kimi_jupyter.map("Answer: {value}", rows, thinking=False, progress=False, concurrency=1, budget=0.0005)
    assert again.summary.cached == out.summary.done  # the paid rows are not paid again


def test_the_session_budget_refuses_rows_through_the_turn(kimi_sim_env):
    get_session().config["budget"] = 0.0
    out = kimi_jupyter.map("Answer: {value}", ["a", "b", "c"], progress=False, concurrency=1)
    assert kimi_sim_env.chat_requests == []
    assert "budget" in out.errors[0] and "Refused" in out.summary.stopped


def test_stop_keeps_finished_rows_and_reports_the_rest_as_not_run(kimi_sim_env):
    kimi_sim_env.on(r"slow", Reply(text="x" * 40, chunk_chars=1, chunk_delay=0.02))
    rows = [f"fast {i}" for i in range(6)] + [f"slow {i}" for i in range(30)]
    from kimi_jupyter.rows import run as run_module

    original = run_module._drive_in_thread

    def interrupt_soon(run, view):  # what a notebook's Stop button does to the calling thread
        timer = threading.Timer(0.8, lambda: run.stop.set())
        timer.start()
        try:
            original(run, view)
        finally:
            timer.cancel()

    run_module._drive_in_thread = interrupt_soon
    try:
        started = time.monotonic()
        out = kimi_jupyter.map("Answer: {value}", rows, thinking=False, progress=False, concurrency=2)
    finally:
        run_module._drive_in_thread = original
    assert time.monotonic() - started < 10
    assert out.summary.done >= 6 and out.summary.not_run > 0
    assert "stopped" in out.summary.stopped
    assert all(out[i] for i in range(6))


def test_a_run_leaves_the_last_answer_and_the_export_transcript_to_the_cells(kimi_sim_env, tickets):
    """Rows are silent turns: ``_kimi`` stays the last cell's answer and ``%kimi export`` does
    not fill with thousands of rows (the answers are in the returned frame)."""
    from kimi_jupyter.transcript import transcript_for

    kimi_sim_env.on(r"ticket", _label)
    kimi_sim_env.on(r"cell question", Reply(text="the cell's answer"))
    session = get_session()
    cell = kimi_jupyter.ask("cell question", display="none", thinking=False)
    turns = len(transcript_for(session.notebook).turns)
    out = kimi_jupyter.map("Sentiment of: {text}", tickets, thinking=False, progress=False)
    assert out["error"].isna().all()
    assert session.notebook.last is cell
    assert len(transcript_for(session.notebook).turns) == turns


def test_every_row_of_a_run_uses_the_settings_resolved_once(kimi_sim_env, tickets, monkeypatch):
    kimi_sim_env.on(r"ticket", _label)
    resolved = {"n": 0}
    original = type(get_session()).settings

    def counting(self, **explicit):
        resolved["n"] += 1
        return original(self, **explicit)

    monkeypatch.setattr(type(get_session()), "settings", counting)
    out = kimi_jupyter.map("Sentiment of: {text}", tickets, thinking=False, progress=False, model="kimi-k2.5")
    assert out["error"].isna().all() and len(_rows_sent(kimi_sim_env)) == 30
    assert resolved["n"] == 1
    assert {r.json["model"] for r in _rows_sent(kimi_sim_env)} == {"kimi-k2.5"}
