"""The response cache's writer thread: entries leave the caller at once, are readable before
they reach the disk, and are all on disk when a map() run ends, is stopped or is cancelled."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import kimi_jupyter
from kimi_jupyter.cache import CacheWriter, ResponseCache, flush_writes, request_key
from kimi_jupyter.events import Done, TextDelta, Usage
from kimi_jupyter.rows.run import amap
from kimi_jupyter.testing import Reply


def on_disk(root: Path) -> list[Path]:
    """Entry files as they are on disk right now (``ResponseCache.info`` would flush first)."""
    return sorted(root.glob("*/*.json"))


def test_queued_entries_are_hits_at_once_and_all_on_disk_after_a_flush(tmp_path: Path) -> None:
    writer = CacheWriter()
    cache = ResponseCache(tmp_path / "c", writer=writer)
    keys = [request_key({"row": i}) for i in range(300)]
    for i, key in enumerate(keys):
        cache.store(key, [TextDelta("answer "), TextDelta(str(i)), Usage(prompt=1, completion=1, total=2),
                          Done("stop")], [{"role": "assistant", "content": f"answer {i}"}])
    for i, key in enumerate(keys):  # written or still queued: a hit either way
        hit = cache.load(key)
        assert hit is not None and hit.events[0] == TextDelta(f"answer {i}")
    assert writer.flush(timeout=60)
    assert len(on_disk(tmp_path / "c")) == 300 and writer.written == 300
    assert not list((tmp_path / "c").glob("*/*.tmp"))  # no temporary file left behind
    fresh = ResponseCache(tmp_path / "c", writer=CacheWriter())  # read back from disk only
    assert all(fresh.load(key) is not None for key in keys)
    assert cache.info() == (300, sum(p.stat().st_size for p in on_disk(tmp_path / "c")))


def test_a_folder_removed_between_writes_is_made_again(tmp_path: Path) -> None:
    import shutil

    writer = CacheWriter()
    cache = ResponseCache(tmp_path / "c", writer=writer)
    cache.store("ab" * 32, [TextDelta("x"), Done("stop")], [])
    writer.flush()
    shutil.rmtree(tmp_path / "c")  # what a user (or a benchmark) does between runs
    cache.store("ab" * 32, [TextDelta("y"), Done("stop")], [])
    writer.flush()
    assert writer.problem is None and len(on_disk(tmp_path / "c")) == 1


def test_the_entry_is_encoded_when_stored_not_when_written(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path, writer=CacheWriter())
    conversation = [{"role": "assistant", "content": "before"}]
    cache.store("ab" * 32, [TextDelta("x"), Done("stop")], conversation)
    conversation[0]["content"] = "changed later"
    cache.flush()
    hit = ResponseCache(tmp_path, writer=CacheWriter()).load("ab" * 32)
    assert hit is not None and hit.conversation[0]["content"] == "before"


def test_a_failed_write_is_one_notice_and_never_an_exception(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder should be")
    writer = CacheWriter()
    ResponseCache(blocked, writer=writer).store("cd" * 32, [TextDelta("x"), Done("stop")], [])  # returns
    writer.flush()
    cache = ResponseCache(tmp_path / "next-turn", writer=writer)  # the next turn's lookup says it
    assert cache.load("ef" * 32) is None
    assert cache.problem is not None and cache.problem.startswith("Could not write a response-cache entry")
    assert cache.load("ef" * 32) is None and cache.problem is None  # said once


def test_a_slow_disk_holds_back_at_most_max_bytes(tmp_path: Path) -> None:
    """The queue is bounded: past max_bytes a store waits for the writer, so nothing is
    dropped and memory stays bounded."""
    writer = CacheWriter(max_bytes=1)
    cache = ResponseCache(tmp_path, writer=writer)
    for i in range(50):
        cache.store(request_key({"i": i}), [TextDelta("y" * 1000), Done("stop")], [])
    writer.flush()
    assert len(on_disk(tmp_path)) == 50


def _label(messages: list[dict]) -> Reply:
    return Reply(text="positive" if "good" in messages[-1]["content"] else "negative")


def test_every_row_is_on_disk_when_map_returns(kimi_sim_env) -> None:
    kimi_sim_env.on(r"Label", _label)
    rows = [f"item {i} {'good' if i % 2 else 'bad'}" for i in range(200)]
    out = kimi_jupyter.map("Label: {value}", rows, thinking=False, progress=False, concurrency=32)
    assert out.summary.done == 200
    assert len(on_disk(Path(".kimi-cache"))) == 200  # no flush by the test: the run flushed
    sent = len(kimi_sim_env.chat_requests)
    again = kimi_jupyter.map("Label: {value}", rows, thinking=False, progress=False, concurrency=32)
    assert again.summary.cached == 200 and len(kimi_sim_env.chat_requests) == sent


def test_a_stopped_run_has_every_finished_row_on_disk(kimi_sim_env) -> None:
    kimi_sim_env.on(r"slow", Reply(text="x" * 40, chunk_chars=1, chunk_delay=0.02))
    rows = [f"fast {i}" for i in range(20)] + [f"slow {i}" for i in range(40)]
    from kimi_jupyter.rows import run as run_module

    original = run_module._drive_in_thread

    def stop_soon(run, view):  # what a notebook's Stop button does
        timer = threading.Timer(0.8, run.stop.set)
        timer.start()
        try:
            original(run, view)
        finally:
            timer.cancel()

    run_module._drive_in_thread = stop_soon
    try:
        out = kimi_jupyter.map("Answer: {value}", rows, thinking=False, progress=False, concurrency=4)
    finally:
        run_module._drive_in_thread = original
    assert out.summary.not_run > 0 and out.summary.done >= 20
    assert len(on_disk(Path(".kimi-cache"))) == out.summary.done


def test_a_cancelled_amap_has_every_finished_row_on_disk(kimi_sim_env) -> None:
    """An interrupt (the task cancelled, as Ctrl-C does to an awaited run)."""
    kimi_sim_env.on(r"slow", Reply(text="x" * 40, chunk_chars=1, chunk_delay=0.02))
    rows = [f"fast {i}" for i in range(20)] + [f"slow {i}" for i in range(40)]

    async def main() -> object:
        task = asyncio.ensure_future(amap("Answer: {value}", rows, thinking=False, progress=False,
                                          concurrency=4))
        await asyncio.sleep(0.8)
        task.cancel()
        try:
            return await task
        except asyncio.CancelledError:
            return None

    asyncio.run(main())  # the run's task is cancelled too (amap's own, or asyncio.run's at the end)
    entries = len(on_disk(Path(".kimi-cache")))
    assert entries >= 20  # the fast rows at least
    flush_writes()
    assert len(on_disk(Path(".kimi-cache"))) == entries  # nothing was still waiting


def test_a_cached_cell_leaves_its_entry_on_disk(kimi_sim_env) -> None:
    for i in range(3):
        kimi_jupyter.ask(f"question {i}", display="none", use_cache=True, history=False)
        assert len(on_disk(Path(".kimi-cache"))) == i + 1  # a synchronous turn waits for its entry
