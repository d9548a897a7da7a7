"""map(engine="batch") against the simulator's Files and Batch APIs on 127.0.0.1 (accelerated
clock): submit, poll, collect, the state file, resume, cancel, and the batch faults."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pandas as pd
import pytest

import kimi_jupyter
from kimi_jupyter.rows import RowsError
from kimi_jupyter.testing import KimiSimulator, Reply
from kimi_jupyter.testing.pytest_plugin import SIMULATOR_API_KEY


@pytest.fixture
def sim(monkeypatch):
    with KimiSimulator(api_key=SIMULATOR_API_KEY, batch_speed=20000) as simulator:
        monkeypatch.setenv("KIMI_BASE_URL", simulator.base_url)
        monkeypatch.setenv("MOONSHOT_API_KEY", SIMULATOR_API_KEY)
        monkeypatch.setenv("KIMI_PROVIDER", "moonshot")
        simulator.on(r"review", lambda m: Reply(text="positive" if "great" in m[-1]["content"] else "negative"))
        yield simulator


@pytest.fixture
def reviews():
    return pd.DataFrame({"review": [f"review {i}: {'great' if i % 2 else 'poor'}" for i in range(40)]})


def _batches(sim):
    headers = {"Authorization": f"Bearer {SIMULATOR_API_KEY}"}
    return httpx.get(sim.base_url + "/batches?limit=100", headers=headers).json()["data"]


def test_a_batch_run_answers_every_row_and_fills_the_cache(sim, reviews, capsys):
    out = kimi_jupyter.map("Sentiment of: {review}", reviews, engine="batch", thinking=False, progress="text")
    assert out["answer"].tolist() == ["negative", "positive"] * 20
    assert out["error"].isna().all()
    assert len(sim.batch_requests) == 40 and len(sim.chat_requests) == 40
    said = capsys.readouterr()
    assert "Pre-flight: 40 rows, 40 to submit" in said.out and "prompt tokens" in said.out
    assert "Submitted 40 rows in 1 batch(es) as run " in said.out
    assert "40/40 rows done" in said.err
    (batch,) = _batches(sim)
    assert batch["status"] == "completed" and batch["request_counts"] == {"total": 40, "completed": 40, "failed": 0}
    live = kimi_jupyter.map("Sentiment of: {review}", reviews, thinking=False, progress=False)
    assert live.attrs["kimi"]["cached"] == 40 and len(sim.chat_requests) == 40  # no request, nothing billed
    listed = kimi_jupyter.batches()
    assert listed[0]["status"] == "collected" and listed[0]["batches"] == [batch["id"]]
    again = kimi_jupyter.map("Sentiment of: {review}", reviews, engine="batch", thinking=False, progress="text")
    assert again["answer"].tolist() == out["answer"].tolist() and len(_batches(sim)) == 1
    assert "Submitted" not in capsys.readouterr().out  # every row came from the cache: nothing to submit


def test_the_jsonl_lines_are_the_requests_a_live_turn_would_send(sim):
    kimi_jupyter.map("Sentiment of: {value}", ["great review"], engine="batch", thinking=False, progress=False)
    (request,) = sim.batch_requests
    body = request.json
    assert body["model"] == "kimi-k2.5" and body["thinking"] == {"type": "disabled"}
    assert body["messages"] == [{"role": "user", "content": "Sentiment of: great review"}]
    assert body["stream"] is False


def test_a_full_disk_under_the_spooled_requests_is_one_clear_message(sim, monkeypatch):
    from kimi_jupyter.rows import batch

    def full(self, pos, line):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(batch._Spool, "add", full)
    with pytest.raises(RowsError, match=r"could not write or read a local file .*No space left on device"):
        kimi_jupyter.map("Sentiment of: {value}", ["a", "b"], engine="batch", thinking=False, progress=False)
    assert sim.batch_requests == [] and _batches(sim) == []


def test_a_provider_without_the_batch_api_is_refused(sim, monkeypatch):
    monkeypatch.setenv("KIMI_PROVIDER", "openrouter")
    with pytest.raises(RowsError, match="engine='live'"):
        kimi_jupyter.map("Sentiment of: {value}", ["a"], engine="batch", progress=False)
    assert sim.requests == []


def test_a_batch_that_fails_validation_marks_every_row_and_bills_nothing(sim, reviews):
    sim.batch_fault("fail_validation")
    out = kimi_jupyter.map("Sentiment of: {review}", reviews, engine="batch", thinking=False, progress=False)
    assert out["answer"].isna().all()
    assert out["error"].str.contains("failed validation").all()
    assert out["error"].str.contains("nothing in it was billed").all()
    assert sim.batch_requests == []


def test_an_expired_batch_keeps_the_finished_rows_and_a_rerun_sends_only_the_rest(sim, reviews):
    sim.batch_fault("expire")
    out = kimi_jupyter.map("Sentiment of: {review}", reviews, engine="batch", thinking=False, progress=False)
    done = out["error"].isna()
    assert 0 < done.sum() < 40
    assert out.loc[~done, "error"].str.contains("expired before this row ran").all()
    assert _batches(sim)[0]["status"] == "expired"
    first = len(sim.batch_requests)
    again = kimi_jupyter.map("Sentiment of: {review}", reviews, engine="batch", thinking=False, progress=False)
    assert again["error"].isna().all()
    assert len(sim.batch_requests) == 40 and len(sim.batch_requests) - first == (~done).sum()


def test_a_corrupt_output_file_marks_the_unreadable_row_and_keeps_the_others(sim, reviews):
    sim.batch_fault("corrupt_output")
    out = kimi_jupyter.map("Sentiment of: {review}", reviews, engine="batch", thinking=False, progress=False)
    bad = out["error"].notna()
    assert bad.sum() == 1
    assert "damaged" in out.loc[bad, "error"].iloc[0] and "may have been billed" in out.loc[bad, "error"].iloc[0]
    assert out.loc[~bad, "answer"].notna().all()


def test_resume_collects_a_run_from_its_state_file_and_cancel_stops_one(sim, reviews, monkeypatch):
    run_id = kimi_jupyter.map("Sentiment of: {review}", reviews, engine="batch", thinking=False, wait=False,
                              progress=False)
    state = json.loads(next(Path(".kimi-cache-runs").glob("*.json")).read_text())
    assert state["run_id"] == run_id and len(state["keys"]) == 40 and state["batches"][0]["id"].startswith("batch_")
    assert _key_absent_from(state)
    from kimi_jupyter import session as session_module

    monkeypatch.setattr(session_module, "_SESSION", None)  # what a kernel restart leaves: only the files
    assert kimi_jupyter.batches()[0]["run_id"] == run_id
    out = kimi_jupyter.resume(run_id, reviews, progress=False)
    assert out["answer"].tolist() == ["negative", "positive"] * 20
    assert len(_batches(sim)) == 1 and len(sim.batch_requests) == 40

    slow = KimiSimulator(api_key=SIMULATOR_API_KEY, batch_speed=1).start()
    try:
        monkeypatch.setenv("KIMI_BASE_URL", slow.base_url)
        second = kimi_jupyter.map("Sentiment of: {value}", ["x great", "y poor"], engine="batch", wait=False,
                                  progress=False)
        assert [b["status"] for b in kimi_jupyter.cancel(second)] == ["cancelling"]
        result = kimi_jupyter.resume(second, progress=False, poll_interval=0.05)
        assert all("cancelled" in e for e in result.errors)
        assert slow.batch_requests == []
    finally:
        slow.stop()


def _key_absent_from(state) -> bool:
    return SIMULATOR_API_KEY not in json.dumps(state)


def test_a_damaged_state_file_is_ignored_not_trusted(sim):
    Path(".kimi-cache-runs").mkdir()
    Path(".kimi-cache-runs/rows-20260101-000000-abcdef.json").write_text('{"format": 1, "run_id": "../x"}')
    Path(".kimi-cache-runs/rows-20260101-000001-abcdef.json").write_text("not json")
    assert kimi_jupyter.batches() == []
    with pytest.raises(RowsError, match="No batch runs"):
        kimi_jupyter.resume()


def test_a_row_over_the_context_window_fails_alone_in_a_batch(sim):
    sim._config.context_limit = 400
    out = kimi_jupyter.map("Answer: {value}", ["short review", "word " * 2000], engine="batch", thinking=False,
                           progress=False)
    assert out[0] and out[1] is None
    assert out.errors[1].startswith("This row's prompt is over the model's context window")
    assert _batches(sim)[0]["request_counts"] == {"total": 2, "completed": 1, "failed": 1}


def test_a_bad_completion_window_or_a_refused_upload_is_one_clear_message(sim, monkeypatch):
    with pytest.raises(RowsError, match="'12h' to '7d'"):
        kimi_jupyter.map("Sentiment of: {value}", ["a"], engine="batch", completion_window="1h", progress=False)
    monkeypatch.setenv("MOONSHOT_API_KEY", "sk-wrong")
    with pytest.raises(RowsError, match=r"could not be submitted.*Nothing was submitted"):
        kimi_jupyter.map("Sentiment of: {value}", ["a"], engine="batch", progress=False)
    assert sim.batch_requests == []
