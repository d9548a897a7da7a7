"""Files leave only when the user named them: row values are text, links are not followed.

Against the real simulator on 127.0.0.1 (moonshot preset, so documents would be uploaded
through its Files API); ``%%kimi`` and ``--each`` in a real kernel.
"""

from __future__ import annotations

import json

import pytest

from kimi_jupyter.testing import KimiSimulator, Reply
from kimi_jupyter.testing.pytest_plugin import SIMULATOR_API_KEY

from ..kernels import run, running_kernel, text_of

pytestmark = pytest.mark.timeout(240)

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6360000002"
    "0000050001e226059b0000000049454e44ae426082")


def bodies(sim: KimiSimulator) -> str:
    return "\n".join(json.dumps(r.json) for r in sim.requests if r.json is not None)


@pytest.fixture
def private(tmp_path):
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "notes.md").write_text("PRIVATE-NOTES: the safe code is 4711\n")
    (tmp_path / "passport.png").write_bytes(PNG)
    (tmp_path / "big.txt").write_bytes(b"BIGFILE " * (4 * 1024 * 1024))
    return tmp_path


def test_row_values_that_name_files_are_sent_as_text(kimi_sim_env, private):
    import kimi_jupyter

    kimi_sim_env.on(r"Describe", Reply(text="ok"))
    rows = ["home/notes.md", str(private / "passport.png"), "big.txt", str(private / "home" / "notes.md")]
    out = kimi_jupyter.map("Describe: {value}", rows, progress=False)
    assert list(out) == ["ok"] * 4, out.errors
    sent = bodies(kimi_sim_env)
    assert "Describe: home/notes.md" in sent and "passport.png" in sent
    assert "PRIVATE-NOTES" not in sent and "BIGFILE" not in sent and "image_url" not in sent
    assert not kimi_sim_env.files.all()  # nothing uploaded


def test_a_dataframe_column_of_paths_is_text_unless_named_in_files(kimi_sim_env, private):
    import pandas as pd

    import kimi_jupyter

    kimi_sim_env.on(r"Summarise", Reply(text="summary"))
    df = pd.DataFrame({"doc": [str(private / "home" / "notes.md")]})
    out = kimi_jupyter.map("Summarise {doc}", df, progress=False, use_cache=False)
    assert out["answer"].tolist() == ["summary"]
    assert "PRIVATE-NOTES" not in bodies(kimi_sim_env) and not kimi_sim_env.files.all()
    out = kimi_jupyter.map("Summarise {doc}", df, progress=False, use_cache=False, files=["doc"])
    assert out["answer"].tolist() == ["summary"]
    assert [f.purpose for f in kimi_sim_env.files.all()] == ["file-extract"]  # asked for by name
    assert "PRIVATE-NOTES" in bodies(kimi_sim_env)


def test_files_must_name_a_column_the_template_uses(kimi_sim_env):
    import kimi_jupyter
    from kimi_jupyter.rows.data import RowsError

    with pytest.raises(RowsError, match="files= names 'path'"):
        kimi_jupyter.map("Say {value}", ["a"], files=["path"], progress=False)
    assert not kimi_sim_env.requests


@pytest.fixture(scope="module")
def sim():
    with KimiSimulator(api_key=SIMULATOR_API_KEY) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def kernel(sim, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("named")
    outside = tmp_path_factory.mktemp("outside") / "passwd.txt"
    outside.write_text("root:x:0:0:SECRET-ACCOUNT\n")
    (workdir / "report.txt").symlink_to(outside)
    (workdir / "notes.md").write_text("PRIVATE-NOTES\n")
    env = {"MOONSHOT_API_KEY": SIMULATOR_API_KEY, "KIMI_BASE_URL": sim.base_url, "KIMI_PROVIDER": "moonshot"}
    with running_kernel(env, workdir) as (_, client):
        reply, _ = run(client, "%load_ext kimi_jupyter\nimport pandas as pd")
        assert reply["status"] == "ok"
        yield client


def test_a_named_path_that_is_a_symlink_is_not_followed(sim, kernel):
    sim.reset()
    sim.queue(Reply(text="Read it."))
    run(kernel, "report = 'report.txt'")
    _, msgs = run(kernel, "%%kimi --display text --new\nSummarise {report}")
    shown = text_of(msgs)
    assert "symbolic link" in shown and "Traceback" not in shown, shown
    assert "SECRET-ACCOUNT" not in bodies(sim) and not sim.chat_requests and not sim.files.all()


def test_each_sends_a_column_of_paths_as_text(sim, kernel):
    sim.reset()
    sim.on(r"Label", Reply(text="label"))
    run(kernel, "df = pd.DataFrame({'text': ['notes.md', '~/notes.md']})")
    reply, msgs = run(kernel, "%%kimi --each df --into label\nLabel {text}")
    assert reply["status"] == "ok", text_of(msgs)
    assert len(sim.chat_requests) == 2
    assert "PRIVATE-NOTES" not in bodies(sim) and not sim.files.all()
