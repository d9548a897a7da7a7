"""Rows in a real ipykernel: the ``%%kimi --each`` magic, Stop (a real interrupt), and a kernel
restart in the middle of a live run and of a batch run (resumed from the cache and the
state file, nothing answered twice)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from kimi_jupyter.testing import KimiSimulator, Reply
from kimi_jupyter.testing.pytest_plugin import SIMULATOR_API_KEY

from .kernels import run, running_kernel, text_of

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def sim():
    with KimiSimulator(api_key=SIMULATOR_API_KEY, batch_speed=200) as simulator:
        simulator.on(r"slow", Reply(text="slow answer", chunk_chars=2, chunk_delay=0.05))
        simulator.on(r"review", lambda m: Reply(text="positive" if "great" in m[-1]["content"] else "negative"))
        yield simulator


def _env(sim):
    return {"KIMI_BASE_URL": sim.base_url, "MOONSHOT_API_KEY": SIMULATOR_API_KEY, "KIMI_PROVIDER": "moonshot"}


def _ok(reply, messages):
    assert reply["status"] == "ok", text_of(messages)


SETUP = ("import kimi_jupyter, pandas as pd\n%load_ext kimi_jupyter\n"
         "df = pd.DataFrame({'review': [f'review {i}: ' + ('great' if i % 2 else 'poor') for i in range(12)]})")


def test_the_each_magic_fills_a_column_and_shows_progress(sim, tmp_path):
    with running_kernel(_env(sim), tmp_path) as (_manager, client):
        _ok(*run(client, SETUP))
        reply, messages = run(client, "%%kimi --each df --into sentiment --no-think\nSentiment of: {review}")
        _ok(reply, messages)
        shown = text_of(messages)
        assert "12/12 rows done" in shown
        widgets = [m for m in messages if m["msg_type"] == "display_data"
                   and "application/vnd.jupyter.widget-view+json" in m["content"]["data"]]
        assert widgets, "the progress widget was not shown"
        reply, messages = run(client, "print(df['sentiment'].tolist()[:2], df['sentiment_error'].isna().all())")
        assert "['negative', 'positive'] True" in text_of(messages)
        _reply, messages = run(client, "%%kimi --each nope --into x\nSentiment of: {review}")
        assert "no variable 'nope'" in text_of(messages)


def test_stop_in_a_kernel_returns_the_finished_rows(sim, tmp_path):
    code = ("rows = [f'fast {i}' for i in range(4)] + [f'slow {i}' for i in range(40)]\n"
            "out = kimi_jupyter.map('Answer: {value}', rows, thinking=False, concurrency=2, progress='text')")
    with running_kernel(_env(sim), tmp_path) as (manager, client):
        _ok(*run(client, "import kimi_jupyter"))
        msg_id = client.execute(code)
        deadline = time.monotonic() + 30
        while len(sim.chat_requests) < 8 and time.monotonic() < deadline:
            time.sleep(0.05)
        manager.interrupt_kernel()
        from .kernels import collect

        reply, messages = collect(client, msg_id, 60)
        _ok(reply, messages)
        assert "Stopped: stopped by the user" in text_of(messages)
        _reply, messages = run(client, "print(out.summary.done, out.summary.not_run, out[:4])")
        done, not_run = (int(x) for x in text_of(messages).split()[:2])
        assert done >= 4 and not_run > 0


def test_a_kernel_restart_mid_live_run_resumes_from_the_cache(sim, tmp_path):
    code = ("rows = [f'slow {i}' for i in range(30)]\n"
            "out = kimi_jupyter.map('Answer: {value}', rows, thinking=False, concurrency=2, progress=False)\n"
            "print('done', out.summary.done, out.summary.cached)")
    cache = Path(tmp_path) / ".kimi-cache"
    with running_kernel(_env(sim), tmp_path) as (manager, client):
        _ok(*run(client, "import kimi_jupyter"))
        client.execute(code)
        deadline = time.monotonic() + 60
        while len(list(cache.glob("*/*.json"))) < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        manager.restart_kernel(now=True)
        client.wait_for_ready(timeout=60)
        answered_before = {r.messages[-1]["content"] for r in sim.chat_requests if r.status == 200}
        cached_before = len(list(cache.glob("*/*.json")))
        assert 6 <= cached_before < 30
        sent_before = len(sim.chat_requests)
        _ok(*run(client, "import kimi_jupyter"))
        reply, messages = run(client, code, timeout=120)
        _ok(reply, messages)
        done, cached = (int(x) for x in text_of(messages).split()[1:3])
        assert done == 30 and cached >= cached_before
        sent_after = [r.messages[-1]["content"] for r in sim.chat_requests[sent_before:]]
        assert len(sent_after) == 30 - cached
        not_sent_again = {p for p in answered_before if p not in sent_after}
        assert len(not_sent_again) >= cached_before  # every row finished before the restart: not sent again


def test_a_kernel_restart_mid_batch_is_collected_by_resume(sim, tmp_path):
    code = ("import kimi_jupyter, pandas as pd\n"
            "df = pd.DataFrame({'review': [f'review {i}: ' + ('great' if i % 2 else 'poor') for i in range(20)]})\n"
            "out = kimi_jupyter.map('Sentiment of: {review}', df, engine='batch', thinking=False, progress=False)")
    headers = {"Authorization": f"Bearer {SIMULATOR_API_KEY}"}
    with running_kernel(_env(sim), tmp_path) as (manager, client):
        client.execute(code)
        deadline = time.monotonic() + 60
        while not httpx.get(sim.base_url + "/batches", headers=headers).json()["data"] and time.monotonic() < deadline:
            time.sleep(0.05)
        manager.restart_kernel(now=True)
        client.wait_for_ready(timeout=60)
        _ok(*run(client, "import kimi_jupyter, pandas as pd\nprint(kimi_jupyter.batches()[0]['status'])"))
        reply, messages = run(client, code.split("\nout =")[0] + "\nout = kimi_jupyter.resume(data=df, progress=False)\n"
                              "print(out['answer'].tolist()[:2], out['error'].isna().all())", timeout=120)
        _ok(reply, messages)
        assert "['negative', 'positive'] True" in text_of(messages)
    assert len(httpx.get(sim.base_url + "/batches", headers=headers).json()["data"]) == 1
    assert len(sim.batch_requests) == 20  # each row ran once on the provider
