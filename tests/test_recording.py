"""Recordings in one process: the modes, what is written, and bad recordings refused entry
by entry (the simulator on 127.0.0.1 answers live turns; tests/test_recording_kernel.py runs
whole notebooks under nbclient)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kimi_jupyter import ask
from kimi_jupyter.errors import ConfigError
from kimi_jupyter.recording import RecordingError, open_recording, record_command, stop_recording
from kimi_jupyter.session import get_session
from kimi_jupyter.settings import resolve_settings

KEY = "sk-test-simulator"


@pytest.fixture
def sim(kimi_sim_env, monkeypatch):
    kimi_sim_env.on("2\\+2", {"reasoning": "Add.", "text": "Four."})
    kimi_sim_env.on("colour", "Teal.")
    kimi_sim_env.on("secret", "I will not repeat it.")
    monkeypatch.delenv("KIMI_REPLAY", raising=False)
    return kimi_sim_env


def _record(path: str = "rec.jsonl") -> None:
    session = get_session()
    record_command(session, session.settings().replay, path)


def _go_offline(monkeypatch) -> None:
    """No key, a base URL nobody listens on, replay only."""
    monkeypatch.delenv("MOONSHOT_API_KEY")
    monkeypatch.setenv("KIMI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("KIMI_REPLAY", "only")


def _lines(path: str = "rec.jsonl") -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def test_replay_setting_takes_off_auto_only_from_env_or_config(monkeypatch) -> None:
    assert resolve_settings(environ={}).replay == "off"
    assert resolve_settings(environ={"KIMI_REPLAY": "ONLY"}).replay == "only"
    assert resolve_settings(config={"replay": "auto"}, environ={"KIMI_REPLAY": "only"}).replay == "auto"
    with pytest.raises(ConfigError, match="use one of off, auto, only"):
        resolve_settings(environ={"KIMI_REPLAY": "sometimes"})


def test_off_sends_and_records_rerecording_replaces_in_place(sim) -> None:
    _record()
    ask("What is 2+2?", display="none")
    ask("Name a colour.", display="none")
    ask("What is 2+2?", display="none")  # sent again; its entry is replaced, not appended
    assert len(sim.chat_requests) == 3
    header, *entries = _lines()
    assert [e["answer"] for e in entries] == ["Four.", "Teal."]
    assert all(e["recording"] == header["id"] for e in entries)


def test_only_replays_without_a_key_and_fails_an_unrecorded_turn_in_one_line(sim, monkeypatch) -> None:
    _record()
    first = ask("What is 2+2?", display="none")
    sent = len(sim.chat_requests)
    monkeypatch.setattr("kimi_jupyter.session._SESSION", None)
    _go_offline(monkeypatch)
    _record()
    again = ask("What is 2+2?", display="none")
    assert (again.text, again.reasoning, again.error) == (first.text, first.reasoning, None)
    assert again.provenance.origin == "replayed" and again.provenance.entry == first.provenance.entry
    missing = ask("What is 2+2, twice?", display="none")
    assert missing.error.startswith("This turn is not in the recording rec.jsonl")
    assert "the prompt changed" in missing.error and "\n" not in missing.error
    other = ask("What is 2+2?", display="none", model="kimi-k2-turbo-preview")
    assert "the model changed" in other.error and "prompt" not in other.error
    assert len(sim.chat_requests) == sent


def test_only_without_a_recording_fails_and_says_how_to_name_one(sim, monkeypatch) -> None:
    _go_offline(monkeypatch)
    response = ask("What is 2+2?", display="none")
    assert "no recording is named" in response.error and "%kimi record FILE" in response.error
    with pytest.raises(RecordingError, match="does not exist"):
        _record("missing.jsonl")


def test_auto_replays_what_is_recorded_and_records_what_is_new(sim, monkeypatch) -> None:
    _record()
    ask("What is 2+2?", display="none")
    monkeypatch.setenv("KIMI_REPLAY", "auto")
    replayed = ask("What is 2+2?", display="none")
    new = ask("Name a colour.", display="none")
    assert replayed.provenance.origin == "replayed" and new.provenance.origin == "live"
    assert len(sim.chat_requests) == 2
    assert [e["answer"] for e in _lines()[1:]] == ["Four.", "Teal."]


def test_the_key_never_reaches_the_recording(sim) -> None:
    _record()
    ask(f"Here is a secret: {KEY}. Do not repeat it.", display="none")
    ask("What is 2+2?", display="none", history=True)
    text = Path("rec.jsonl").read_text(encoding="utf-8")
    assert KEY not in text and "127.0.0.1" not in text


def _recorded_file(sim) -> list[str]:
    _record()
    ask("What is 2+2?", display="none")
    ask("Name a colour.", display="none")
    stop_recording(get_session())
    return Path("rec.jsonl").read_text(encoding="utf-8").splitlines()


@pytest.mark.parametrize("damage, reason", [
    (lambda line: line[:-20], "not valid JSON"),
    (lambda line: line.replace('"answer":"Four."', '"answer":"Five."'), "does not match its events"),
    (lambda line: line.replace('"type":"TextDelta"', '"type":"Exec"'), "unknown event type"),
    (lambda line: line.replace('"answer":"Four."', '"answer":5'), "answer is missing or of the wrong type"),
    (lambda line: json.dumps({**json.loads(line), "recording": "0123456789abcdef"}), "another recording"),
    (lambda line: "[1, 2, 3]", "not a JSON object"),
])
def test_a_damaged_or_planted_entry_is_refused_alone_with_one_line(sim, monkeypatch, damage, reason) -> None:
    header, first, second = _recorded_file(sim)
    Path("rec.jsonl").write_text("\n".join([header, damage(first), second]) + "\n", encoding="utf-8")
    monkeypatch.setattr("kimi_jupyter.session._SESSION", None)
    _go_offline(monkeypatch)
    said = record_command(get_session(), "only", "rec.jsonl")
    notice = said.splitlines()[-1]
    assert notice.startswith("Ignored 1 entry of the recording rec.jsonl (line 2: ") and reason in notice
    assert ask("Name a colour.", display="none").text == "Teal."  # the other entry still replays
    refused = ask("What is 2+2?", display="none")
    assert "not in the recording" in refused.error and "1 entry of it was refused" in refused.error


def test_a_recording_for_another_notebook_is_refused_entry_by_entry(sim, monkeypatch) -> None:
    header, first, second = _recorded_file(sim)
    data = json.loads(header)
    data["notebook"] = "other.ipynb"
    Path("rec.jsonl").write_text("\n".join([json.dumps(data), first, second]) + "\n", encoding="utf-8")
    monkeypatch.setenv("JPY_SESSION_NAME", "/home/me/this.ipynb")
    recording = open_recording(get_session(), "rec.jsonl")
    assert recording.entries == {}
    assert "Ignored 2 entries" in recording.notice() and "another notebook (other.ipynb)" in recording.notice()


def test_a_file_that_is_not_a_recording_is_neither_read_nor_overwritten(sim) -> None:
    Path("notes.txt").write_text("my notes\n", encoding="utf-8")
    with pytest.raises(RecordingError, match="not a kimi-jupyter recording"):
        _record("notes.txt")
    assert Path("notes.txt").read_text(encoding="utf-8") == "my notes\n"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_planted_as_the_recording_is_refused_without_blocking(sim) -> None:
    os.mkfifo("rec.jsonl")
    with pytest.raises(RecordingError, match="not a regular file"):
        _record()


def test_map_rows_replay_from_the_recording_and_count_as_not_sent(sim, monkeypatch) -> None:
    import kimi_jupyter

    sim.on("Capital of France", "Paris.")
    sim.on("Capital of Peru", "Lima.")
    _record()
    live = kimi_jupyter.map("Capital of {value}?", ["France", "Peru"], progress=False)
    sent = len(sim.chat_requests)
    assert list(live) == ["Paris.", "Lima."] and live.summary.requests == 2
    assert [e["source"] for e in _lines()[1:]] == ["rows", "rows"]
    monkeypatch.setattr("kimi_jupyter.session._SESSION", None)
    _go_offline(monkeypatch)
    _record()
    again = kimi_jupyter.map("Capital of {value}?", ["France", "Peru"], progress=False, use_cache=False)
    assert list(again) == ["Paris.", "Lima."]
    assert again.summary.requests == 0 and again.summary.cost == 0
    assert len(sim.chat_requests) == sent


class _Offers:
    """A strategy offering some tools (the agent offers notebook tools only where a
    JupyterLab frontend answers)."""

    def __init__(self, *names: str) -> None:
        self.names = names

    def tools(self, turn):
        return [{"type": "function", "function": {"name": n, "parameters": {}}} for n in self.names]

    def after_step(self, turn, step):
        return False

    def close(self):
        pass


def test_the_recording_key_of_an_agent_turn_does_not_depend_on_the_frontend(sim) -> None:
    from kimi_jupyter.turn import NullRenderer, Turn, TurnRequest

    session = get_session()
    settings = session.settings()

    def turn(strategy):
        request = TurnRequest(content="Which region?", settings=settings, mode={"agent": True}, strategy=strategy)
        return Turn(session, request, NullRenderer())

    in_lab, headless = turn(_Offers("run_python", "edit_cell")), turn(_Offers("run_python"))
    assert in_lab.cache_key() != headless.cache_key()  # the cache keys what was offered
    assert in_lab.cache_key(own_tools=True) == headless.cache_key(own_tools=True)


def test_record_command_names_shows_and_stops(sim) -> None:
    session = get_session()
    assert record_command(session, "off", "").startswith("No recording is named")
    assert record_command(session, "off", "rec.jsonl").startswith("Recording: rec.jsonl")
    assert "Kimi.replay = 'auto': recorded turns are replayed" in record_command(session, "auto", "")
    assert record_command(session, "off", "--stop") == "Stopped using the recording rec.jsonl."
    ask("What is 2+2?", display="none")  # no recording now: nothing written
    assert len(_lines()) == 1
    with pytest.raises(RecordingError, match="%kimi record: "):
        record_command(session, "off", "--bogus")


def test_a_turn_answered_by_the_response_cache_is_recorded_too(sim, monkeypatch) -> None:
    monkeypatch.setenv("KIMI_REPLAY", "off")
    ask("What is 2+2?", display="none", use_cache=True)  # sent, cached (no recording yet)
    _record()
    cached = ask("What is 2+2?", display="none", use_cache=True)
    assert cached.provenance.origin == "cache" and len(sim.chat_requests) == 1
    (entry,) = _lines()[1:]
    assert entry["answer"] == "Four." and entry["fingerprint"].startswith(cached.provenance.entry)
    assert entry["events"][0]["text"].startswith("Replayed from the response cache")  # as it was shown


def test_a_changed_answer_replaces_its_entry_in_place(sim) -> None:
    _record()
    ask("What is 2+2?", display="none")
    ask("Name a colour.", display="none")
    sim.reset()
    sim.on("2\\+2", "4.")
    ask("What is 2+2?", display="none")
    _header, *entries = _lines()
    assert [e["answer"] for e in entries] == ["4.", "Teal."]  # same place, new answer


def test_the_sidebar_chat_is_not_part_of_the_notebooks_recording(sim) -> None:
    _record()
    ask("Name a colour.", display="none", source="sidebar")
    ask("What is 2+2?", display="none")
    assert [e["answer"] for e in _lines()[1:]] == ["Four."]


def test_an_entry_is_appended_on_its_own_line_after_a_hand_edited_file(sim) -> None:
    header, first, _second = _recorded_file(sim)
    Path("rec.jsonl").write_text(header + "\n" + first, encoding="utf-8")  # no final newline
    _record()
    ask("Name a colour.", display="none")
    assert [e["answer"] for e in _lines()[1:]] == ["Four.", "Teal."]


def test_files_api_uploads_are_recorded_and_replayed_without_a_key(sim, monkeypatch) -> None:
    from PIL import Image

    sim.on("Summarise", "A short summary.")
    Path("notes.md").write_text("# Notes\n\nSales rose 4% in March.\n", encoding="utf-8")
    Image.new("RGB", (600, 600), (10, 200, 30)).save("big.png")
    _record()
    document = ask("Summarise {doc}", namespace={"doc": "notes.md"}, display="none")
    picture = ask("Summarise this picture {img}", namespace={"img": "big.png"}, display="none",
                  upload_threshold=1000)
    assert document.error is None and picture.error is None
    uploads = [row for row in _lines()[1:] if row.get("kind") == "upload"]
    assert [(u["purpose"], u["name"]) for u in uploads] == [("file-extract", "notes.md"), ("image", "img.png")]
    assert "Sales rose 4% in March." in uploads[0]["text"]
    sent = len(sim.requests)  # chat requests and uploads alike
    monkeypatch.setattr("kimi_jupyter.session._SESSION", None)
    _go_offline(monkeypatch)
    _record()
    again = ask("Summarise {doc}", namespace={"doc": "notes.md"}, display="none")
    seen = ask("Summarise this picture {img}", namespace={"img": "big.png"}, display="none", upload_threshold=1000)
    assert (again.text, again.provenance.origin) == (document.text, "replayed")
    assert (seen.text, seen.provenance.origin) == (picture.text, "replayed")
    Path("other.md").write_text("Something else.", encoding="utf-8")
    other = ask("Summarise {doc}", namespace={"doc": "other.md"}, display="none")
    assert "other.md is not in the recording rec.jsonl (replay only: nothing was uploaded)" in other.error
    assert len(sim.requests) == sent


def test_a_planted_upload_row_is_refused_alone(sim) -> None:
    header, first, second = _recorded_file(sim)
    planted = {"kind": "upload", "recording": json.loads(header)["id"], "sha256": "0" * 64, "purpose": "image",
               "name": "x.png", "file_id": "../../etc/passwd", "bytes": 1, "text": None, "pages": None, "unit": None}
    Path("rec.jsonl").write_text("\n".join([header, json.dumps(planted), first, second]) + "\n", encoding="utf-8")
    recording = open_recording(get_session(), "rec.jsonl")
    assert recording.uploads == {} and len(recording.entries) == 2
    assert "line 2: an upload without a valid file id" in recording.notice()
