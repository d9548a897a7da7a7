"""The sidebar's **Attach file** on the kernel side, against the simulator: a picked document
becomes a system message, a picked video goes through the Files API (sharing the session's
uploads with the cells), anything else is refused in one line."""

from __future__ import annotations

import json
from typing import Any

from kimi_jupyter.comm import SidebarChat, handle_message
from kimi_jupyter.testing import Reply
from kimi_jupyter.testing.samples import make_pdf


class Outbox:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def __call__(self, message: dict[str, Any]) -> None:
        json.dumps(message)
        self.messages.append(message)

    def events(self, name: str) -> list[dict[str, Any]]:
        return [m["event"] for m in self.messages if m["type"] == "event" and m["event"]["type"] == name]


def ask(prompt: str, attachments: list[dict[str, Any]]) -> Outbox:
    out = Outbox()
    handle_message({"action": "ask", "request_id": "r1", "prompt": prompt, "attachments": attachments},
                   out, SidebarChat(namespace={}))
    return out


def test_a_picked_pdf_is_sent_as_its_text(kimi_sim_env, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "plan.pdf").write_bytes(make_pdf(["Ship the sidebar on Friday."]))
    kimi_sim_env.queue(Reply(text="Friday."))
    out = ask("When do we ship?", [{"kind": "file", "path": "docs/plan.pdf", "label": "plan.pdf"}])
    assert out.messages[-1]["response"]["error"] is None
    messages = kimi_sim_env.chat_requests[-1].messages
    assert messages[0]["role"] == "system" and "Ship the sidebar on Friday." in messages[0]["content"]
    assert "[file attached from the notebook: plan.pdf]" in json.dumps(messages[-1]["content"])
    assert any(e["text"].startswith("Document plan.pdf: 1 pages / ") for e in out.events("Notice"))


def test_a_picked_video_goes_through_the_files_api(kimi_sim_env, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(2 * 1024 * 1024))
    monkeypatch.setenv("KIMI_BASE_URL", kimi_sim_env.base_url)
    from kimi_jupyter.session import get_session

    get_session().config["upload_threshold"] = 1024 * 1024
    kimi_sim_env.queue(Reply(text="a ball"))
    out = ask("What is this?", [{"kind": "file", "path": "clip.mp4"}])
    assert out.messages[-1]["response"]["error"] is None
    parts = kimi_sim_env.chat_requests[-1].messages[-1]["content"]
    (video,) = [p for p in parts if p["type"] == "video_url"]
    assert video["video_url"]["url"].startswith("ms://")
    assert [f.purpose for f in kimi_sim_env.files.all()] == ["video"]


def test_other_files_and_missing_paths_are_refused_in_one_line(kimi_sim_env, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.bin").write_bytes(b"\x00\x01")
    wrong = ask("look", [{"kind": "file", "path": "data.bin"}])
    assert "cannot be attached" in wrong.events("Failed")[0]["error"]
    missing = ask("look", [{"kind": "file", "path": "nope.pdf"}])
    assert "was not found from the kernel's working directory" in missing.events("Failed")[0]["error"]
    assert kimi_sim_env.chat_requests == []
