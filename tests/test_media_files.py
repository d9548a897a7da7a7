"""Big media through the Files API, end to end against the simulator: the magic, ask() and
the sidebar's message builder share one upload per content hash; `%kimi files`; providers
without a Files API; interrupted uploads."""

from __future__ import annotations

import numpy as np
import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.testing.globalipapp import start_ipython

from kimi_jupyter import ask
from kimi_jupyter.comm import build_message
from kimi_jupyter.context.errors import ContextError
from kimi_jupyter.context.media import MediaSink, SessionUploads, uploads_for
from kimi_jupyter.session import get_session
from kimi_jupyter.settings import resolve_settings
from kimi_jupyter.testing import KimiSimulator, Reply

KEY = "sk-test-simulator"


def fake_mp4(path, size):
    with path.open("wb") as handle:
        handle.write(b"\x00\x00\x00\x18ftypmp42")
        handle.write(bytes(size - 12))
    return path


@pytest.fixture
def ip(kimi_sim_env):
    start_ipython()
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "kimi_jupyter")
    shell.config.pop("Kimi", None)
    shell.run_line_magic("config", "Kimi.upload_threshold = 100_000")
    yield shell
    shell.config.pop("Kimi", None)


def uploads(sim):
    return [r for r in sim.requests if r.method == "POST" and r.path.endswith("/files")]


def video_urls(request):
    return [p["video_url"]["url"] for m in request.messages if isinstance(m.get("content"), list)
            for p in m["content"] if p.get("type") == "video_url"]


def test_a_big_video_is_uploaded_once_and_shared_by_cells_ask_and_the_sidebar(ip, kimi_sim_env, tmp_path):
    clip = fake_mp4(tmp_path / "clip.mp4", 400_000)
    ip.user_ns["clip"] = str(clip)
    kimi_sim_env.queue(Reply(text="first"), Reply(text="second"), Reply(text="third"))
    ip.run_cell("%%kimi --new\nWhat happens in {clip}?")
    first = kimi_sim_env.chat_requests[-1]
    (url,) = video_urls(first)
    assert url.startswith("ms://") and first.status == 200
    stored = kimi_sim_env.files.all()
    assert [(f.purpose, f.filename, len(f.data)) for f in stored] == [("video", "clip.mp4", 400_000)]
    # The same file again, in another cell: no second upload, the same id.
    ip.run_cell("%%kimi\nAnd at the end of {clip}?")
    assert video_urls(kimi_sim_env.chat_requests[-1])[-1] == url
    # ask() in the same kernel session shares it too.
    response = ask("Describe {clip}", namespace={"clip": clip}, display="none")
    assert response.error is None and video_urls(kimi_sim_env.chat_requests[-1]) == [url]
    # ... and so does the sidebar's message builder.
    settings = get_session().settings()
    sink = MediaSink(settings, uploads_for(get_session()))
    parts = build_message("look at {clip}", [], {"clip": clip}, settings, media=sink)
    assert [p["video_url"]["url"] for p in parts if p.get("type") == "video_url"] == [url]
    assert len(uploads(kimi_sim_env)) == 1


def test_small_media_stay_inline(ip, kimi_sim_env, tmp_path):
    clip = fake_mp4(tmp_path / "tiny.mp4", 5_000)
    ip.user_ns["tiny"] = str(clip)
    kimi_sim_env.queue(Reply(text="ok"))
    ip.run_cell("%%kimi --new\n{tiny}")
    assert video_urls(kimi_sim_env.chat_requests[-1])[0].startswith("data:video/mp4;base64,")
    assert uploads(kimi_sim_env) == []


def test_a_big_image_goes_through_the_files_api(ip, kimi_sim_env):
    ip.run_line_magic("config", "Kimi.upload_threshold = 20_000")
    ip.user_ns["noise"] = (np.random.default_rng(1).random((300, 300, 3)) * 255).astype("uint8")
    kimi_sim_env.queue(Reply(text="noise"))
    ip.run_cell("%%kimi --new\nWhat is {noise}?")
    parts = kimi_sim_env.chat_requests[-1].messages[-1]["content"]
    (image,) = [p for p in parts if p["type"] == "image_url"]
    assert image["image_url"]["url"].startswith("ms://")
    (stored,) = kimi_sim_env.files.all()
    assert stored.purpose == "image" and stored.filename == "noise.png"
    assert kimi_sim_env.chat_requests[-1].status == 200


def test_percent_kimi_files_lists_quota_and_clears(ip, kimi_sim_env, tmp_path, capsys):
    clip = fake_mp4(tmp_path / "clip.mp4", 300_000)
    ip.user_ns["clip"] = str(clip)
    kimi_sim_env.add_file(b"x" * 1000, "other.jsonl", "batch")  # not this session's: listed in the quota only
    kimi_sim_env.queue(Reply(text="ok"))
    ip.run_cell("%%kimi --new\n{clip}")
    capsys.readouterr()
    ip.run_line_magic("kimi", "files")
    out = capsys.readouterr().out
    assert "1 file uploaded by this session" in out and "clip.mp4  video  0.3 MB  ms://" in out
    assert "Account quota: 2 of 1,000 files" in out
    ip.run_line_magic("kimi", "files clear")
    assert "Deleted 1 file" in capsys.readouterr().out
    assert [f.filename for f in kimi_sim_env.files.all()] == ["other.jsonl"]
    ip.run_line_magic("kimi", "files list")
    assert "This session has uploaded no files." in capsys.readouterr().out
    # After clearing, the next reference uploads again (the old id is gone on the server).
    kimi_sim_env.queue(Reply(text="again"))
    ip.run_cell("%%kimi\n{clip}")
    assert kimi_sim_env.chat_requests[-1].status == 200 and len(uploads(kimi_sim_env)) == 2


def test_providers_without_files_api_send_inline_and_say_when_too_big(tmp_path):
    with KimiSimulator(api_key=KEY) as sim:
        settings = resolve_settings(explicit={"base_url": sim.url_for("openrouter"), "api_key": KEY,
                                              "provider": "openrouter", "upload_threshold": 1000}, environ={})
        sink = MediaSink(settings, SessionUploads())
        small = fake_mp4(tmp_path / "small.mp4", 50_000)
        from kimi_jupyter.context import build_content

        parts = build_content("{v}", {"v": str(small)}, media=sink)
        assert parts[-1]["video_url"]["url"].startswith("data:video/mp4;base64,")
        huge = tmp_path / "huge.mp4"
        with huge.open("wb") as handle:
            handle.truncate(80 * 1024 * 1024)  # sparse: nothing is written or read
        with pytest.raises(ContextError, match="openrouter provider has no Files API"):
            build_content("{v}", {"v": str(huge)}, media=sink)
        assert [r for r in sim.requests if "/files" in r.path] == []


def test_an_interrupted_upload_registers_nothing(tmp_path):
    with KimiSimulator(api_key=KEY) as sim:
        settings = resolve_settings(explicit={"base_url": sim.base_url, "api_key": KEY, "provider": "moonshot"},
                                    environ={})
        session_uploads = SessionUploads()
        clip = fake_mp4(tmp_path / "clip.mp4", 3 * 1024 * 1024)

        def interrupt(sent, total):
            if sent > total // 3:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            session_uploads.upload(settings, clip, "video", clip.name, interrupt)
        assert session_uploads.listing() == [] and sim.files.all() == []
        done = session_uploads.upload(settings, clip, "video", clip.name)
        assert [f.id for f in sim.files.all()] == [done.file.id]
        session_uploads.close()



def test_big_uploads_show_progress_in_the_notebook(ip, kimi_sim_env, tmp_path, capsys):
    clip = fake_mp4(tmp_path / "long.mp4", 6 * 1024 * 1024)
    ip.user_ns["long"] = str(clip)
    kimi_sim_env.queue(Reply(text="ok"))
    capsys.readouterr()
    ip.run_cell("%%kimi --new\n{long}")
    out = capsys.readouterr().out
    assert "Uploading long.mp4: 0% of 6.0 MB" in out
    assert "Uploaded long.mp4 (6.0 MB) through the Files API" in out
    assert kimi_sim_env.chat_requests[-1].status == 200
