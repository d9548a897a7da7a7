"""Issue 15: a response-cache entry is untrusted input.

Planted or damaged entries (``[]``, ``null``, wrong types, unknown events, a FIFO or a
directory in place of the file, a huge file) are a miss with a one-line notice, never a
crash or a hang; a replay never shows a tool step or an approval as if it happened now.
The in-kernel checks run the real ``%%kimi`` magic against the real simulator.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from kimi_jupyter.cache import MAX_ENTRY_BYTES, ResponseCache, replay_events
from kimi_jupyter.events import (
    ApprovalRequested,
    ApprovalResolved,
    Done,
    Notice,
    TextDelta,
    ToolCallFinished,
    ToolCallRequested,
    ToolCallStarted,
    event_to_json,
)
from kimi_jupyter.testing import Reply

pytestmark = pytest.mark.timeout(60)

KEY = "ab" * 32
GOOD = {"format": 1, "events": [event_to_json(TextDelta("hi")), event_to_json(Done("stop"))],
        "conversation": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "hi"}]}


def plant(cache: ResponseCache, content: object) -> Path:
    path = cache._path(KEY)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_a_good_entry_loads(tmp_path):
    cache = ResponseCache(tmp_path)
    plant(cache, GOOD)
    hit = cache.load(KEY)
    assert hit is not None and hit.events == [TextDelta("hi"), Done("stop")] and cache.problem is None
    assert cache.load("cd" * 32) is None and cache.problem is None  # a plain miss says nothing


@pytest.mark.parametrize("content", [
    [], None, 3, "text", {"format": 1}, {"format": 2, "events": [], "conversation": []},
    {"format": 1, "events": {}, "conversation": []},
    {"format": 1, "events": [None], "conversation": []},
    {"format": 1, "events": [{"type": "NoSuchEvent"}], "conversation": []},
    {"format": 1, "events": [{"type": "TextDelta", "text": 5}], "conversation": []},
    {"format": 1, "events": [{"type": "TextDelta"}], "conversation": []},
    {"format": 1, "events": [{"type": "ApprovalResolved", "id": "x", "approved": "yes"}], "conversation": []},
    {"format": 1, "events": [{"type": "Usage", "prompt": "many"}], "conversation": []},
    {"format": 1, "events": [], "conversation": [None]},
    {"format": 1, "events": [], "conversation": [{"role": "hacker", "content": "x"}]},
    {"format": 1, "events": [], "conversation": [{"role": "user", "content": 5}]},
    {"format": 1, "events": [], "conversation": [{"role": "user", "content": [5]}]},
    {"format": 1, "events": [], "conversation": [{"role": "assistant", "tool_calls": "x"}]},
    "{not json", "[" * 100_000,
], ids=lambda c: repr(c)[:40])
def test_a_damaged_entry_is_a_miss_with_a_notice(tmp_path, content):
    cache = ResponseCache(tmp_path)
    plant(cache, content)
    assert cache.load(KEY) is None
    assert cache.problem and cache.problem.startswith("Ignored a damaged response-cache entry")
    assert "\n" not in cache.problem


def test_a_fifo_in_place_of_an_entry_neither_hangs_nor_is_read(tmp_path):
    cache = ResponseCache(tmp_path)
    path = cache._path(KEY)
    path.parent.mkdir(parents=True)
    os.mkfifo(path)
    done = threading.Event()
    result: list[object] = []

    def load() -> None:
        result.append(cache.load(KEY))
        done.set()

    threading.Thread(target=load, daemon=True).start()
    assert done.wait(5), "loading a FIFO entry blocked"
    assert result == [None] and "not a regular file" in (cache.problem or "")


def test_a_directory_or_a_huge_file_is_a_miss(tmp_path):
    cache = ResponseCache(tmp_path)
    path = cache._path(KEY)
    path.mkdir(parents=True)
    assert cache.load(KEY) is None and cache.problem
    path.rmdir()
    with open(path, "wb") as f:
        f.truncate(MAX_ENTRY_BYTES + 1)  # sparse: no real disk use
    assert cache.load(KEY) is None and "too large" in (cache.problem or "")


def test_storing_never_opens_a_planted_temporary_file(tmp_path):
    cache = ResponseCache(tmp_path)
    path = cache._path(KEY)
    path.parent.mkdir(parents=True)
    os.mkfifo(path.with_suffix(".tmp"))  # where an older version wrote its temporary file
    done = threading.Event()
    threading.Thread(target=lambda: (cache.store(KEY, [TextDelta("hi"), Done("stop")], []), done.set()),
                     daemon=True).start()
    assert done.wait(5), "storing blocked on a FIFO"
    assert cache.load(KEY).events == [TextDelta("hi"), Done("stop")]
    cache.flush()  # the writer thread has put the entry on disk
    assert sorted(p.name for p in path.parent.iterdir()) == sorted([path.name, path.with_suffix(".tmp").name])


def test_a_replay_marks_tool_steps_and_approvals_as_recorded():
    recorded = [
        ToolCallRequested("c1", "run_python", '{"code": "1"}'),
        ApprovalRequested("c1", "run_python", "1"),
        ApprovalResolved("c1", True, "user"),
        ToolCallStarted("c1", "run_python", '{"code": "1"}'),
        ToolCallFinished("c1", "ran fine", None, 0.5),
        TextDelta("done"),
        Done("stop"),
    ]
    shown = replay_events(recorded)
    assert not any(isinstance(e, (ApprovalRequested, ApprovalResolved, ToolCallStarted, ToolCallFinished))
                   for e in shown)
    notes = [e.text for e in shown if isinstance(e, Notice)]
    assert notes == [
        "The recorded run's run_python step was approved then; nothing was asked or run in this replay.",
        "Recorded tool step run_python: replayed, not run in this replay.",
        "Recorded result of run_python (not run in this replay): ran fine",
    ]
    assert shown[-2:] == [TextDelta("done"), Done("stop")]


# -- the magic with planted entries: a miss, one notice, the request is sent ------------------------

def test_planted_entries_in_the_magic_are_misses_and_never_crash(ip, kimi_sim_env, capsys):
    ip.run_line_magic("config", "Kimi.cache = True")
    try:
        kimi_sim_env.queue(Reply(text="first"))
        ip.run_cell_magic("kimi", "--display text --new", "cached question")
        entries = list(Path(".kimi-cache").rglob("*.json"))
        assert len(entries) == 1
        for planted in ("[]", "null", '{"format": 1, "events": [{"type": "ApprovalResolved", "id": "x", '
                                         '"approved": "yes"}], "conversation": []}'):
            entries[0].write_text(planted)
            kimi_sim_env.queue(Reply(text="sent again"))
            capsys.readouterr()
            ip.run_cell_magic("kimi", "--display text --new", "cached question")
            out = capsys.readouterr().out
            assert "Ignored a damaged response-cache entry" in out and "sent again" in out
        entries[0].unlink()
        os.mkfifo(entries[0])
        kimi_sim_env.queue(Reply(text="not blocked"))
        ip.run_cell_magic("kimi", "--display text --new", "cached question")
        assert "not blocked" in capsys.readouterr().out
    finally:
        ip.run_line_magic("config", "Kimi.cache = False")


@pytest.fixture
def ip(kimi_sim_env):
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.testing.globalipapp import start_ipython

    start_ipython()
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "kimi_jupyter")
    shell.config.pop("Kimi", None)
    yield shell
    shell.config.pop("Kimi", None)


@pytest.mark.parametrize("tools", [None, [{"type": "function", "function": {"name": "f", "parameters": {"minimum": 0.5}}}],
                                   [{"weight": 1e-05, "big": 2**70}]], ids=["plain", "a float", "odd numbers"])
def test_the_key_is_the_sha256_of_the_canonical_json(tools):
    """Keys are what they always were: the SHA-256 of ``json.dumps(sort_keys=True,
    ensure_ascii=False, separators=(",", ":"))`` of the shape, data URLs replaced by their
    digest; orjson writes it when that gives the same bytes."""
    import hashlib

    from kimi_jupyter.cache import FORMAT, request_key

    photo = "data:image/png;base64," + "QUJD" * 200
    shape = {"provider": "moonshot", "model": "kimi-k2.5", "thinking": True, "max_tokens": None,
             "messages": [{"role": "user", "content": [{"type": "text", "text": "héllo \u2028 \"quoted\"\n"},
                                                       {"type": "image_url", "image_url": {"url": photo}}]}],
             "tools": tools, "response_format": None, "mode": {}}
    digest = hashlib.sha256(photo.partition(",")[2].encode()).hexdigest()
    expected = json.loads(json.dumps(shape))
    expected["messages"][0]["content"][1]["image_url"]["url"] = f"data:image/png;base64,sha256:{digest}"
    canonical = json.dumps(expected, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert request_key(shape) == hashlib.sha256(f"kimi-cache-v{FORMAT}\n{canonical}".encode()).hexdigest()
