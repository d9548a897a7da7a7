"""One egress: the key (and any piece of it) leaves in no body, upload, batch file or export.

Each attack of issue 26 that got the key to the model, run against the real simulator on
127.0.0.1; where IPython is involved, in a real kernel (``tests/kernels.py``). Every body the
simulator recorded and every file it stored is searched for the key and for the pieces a
cut leaves (its first 12 and its last 10 characters).
"""

from __future__ import annotations

import json

import pytest

from kimi_jupyter.testing import KimiSimulator, Reply

from ..kernels import run, running_kernel, text_of

pytestmark = pytest.mark.timeout(300)

KEY = "sk-egress-0123456789ABCDEFGHIJklmnopQRSTuvwx"
PIECES = (KEY, KEY[:12], KEY[-10:], KEY[3:-3])


def assert_clean(text: str, where: str) -> None:
    for piece in PIECES:
        assert piece not in text, f"{piece!r} in {where}: ...{text[max(0, text.find(piece) - 80):][:200]}"


def sent(sim: KimiSimulator) -> str:
    return "\n".join(json.dumps(r.json, ensure_ascii=False) for r in sim.requests if r.json is not None)


@pytest.fixture
def sim(monkeypatch):
    with KimiSimulator(api_key=KEY, batch_speed=20000) as simulator:
        monkeypatch.setenv("KIMI_BASE_URL", simulator.base_url)
        monkeypatch.setenv("MOONSHOT_API_KEY", KEY)
        monkeypatch.setenv("KIMI_PROVIDER", "moonshot")
        yield simulator


def test_a_chat_body_carries_no_piece_of_the_key(sim):
    """ask() with the key cut at its start and at its end (a clipped value, a window)."""
    import kimi_jupyter

    sim.queue(Reply(text="ok"))
    prompt = f"head {KEY[:14]} | tail {KEY[-12:]} | json {json.dumps({'k': KEY})}"
    r = kimi_jupyter.ask(prompt, display="none")
    assert r.text == "ok" and r.error is None
    body = sent(sim)
    assert "head ***" in body and "***" in body
    assert_clean(body, "the chat body")
    assert sim.chat_requests[-1].json["messages"]  # still valid JSON once masked


def test_an_upload_that_holds_the_key_is_refused_and_nothing_is_sent(sim, tmp_path):
    from kimi_jupyter.client.egress import KeyInUploadError
    from kimi_jupyter.client.files import FilesClient
    from kimi_jupyter.session import get_session

    notes = tmp_path / "notes.md"
    notes.write_text("# notes\n" + "filler line\n" * 200_000 + f"token={KEY[:20]}\n")  # past the first block
    with FilesClient(get_session().settings()) as files:
        with pytest.raises(KeyInUploadError, match="contains your API key"):
            files.upload(notes, "file-extract")
        assert files.upload(b"no secret here", "file-extract", filename="ok.txt").id
    assert [f.filename for f in sim.files.all()] == ["ok.txt"]


def test_the_batch_jsonl_carries_no_piece_of_the_key(sim):
    import kimi_jupyter

    sim.on(r"Summarise", Reply(text="done"))
    rows = [f"row {i} with {KEY[-12:]}" for i in range(3)]
    out = kimi_jupyter.map("Summarise: {value}", rows, engine="batch", thinking=False, progress=False)
    assert list(out) == ["done"] * 3, out
    stored = b"\n".join(f.data for f in sim.files.all() if f.purpose == "batch").decode()
    assert stored.count('"method": "POST"') == 3 and stored.count("with ***") == 3
    assert_clean(stored, "the batch input file")
    assert_clean(sent(sim), "a Batch API body")


def test_the_export_cut_of_a_tool_result_leaves_no_piece_of_the_key(tmp_path):
    from kimi_jupyter.export import to_markdown, to_notebook
    from kimi_jupyter.transcript import Transcript, TurnRecord

    result = "x" * 3986 + KEY + "y" * 200  # a cut at 4,000 characters keeps the key's first 14
    step = {"name": "run_python", "state": "done", "arguments": '{"code": "print(env)"}', "result": result}
    transcript = Transcript([TurnRecord("magic", "show env", {"text": "done", "tool_steps": [step]})])
    for text in (to_markdown(transcript, [KEY]), to_notebook(transcript, [KEY])):
        assert "more characters cut" in text
        assert_clean(text, "the export")


@pytest.fixture(scope="module")
def module_sim():
    with KimiSimulator(api_key=KEY) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def kernel(module_sim, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("egress-kernel")
    (workdir / "notes.md").write_text(f"# Notes\n\nprod token: {KEY}\n")
    env = {"MOONSHOT_API_KEY": KEY, "KIMI_BASE_URL": module_sim.base_url, "KIMI_PROVIDER": "moonshot"}
    with running_kernel(env, workdir) as (_, client):
        reply, _ = run(client, "%load_ext kimi_jupyter\nimport os\ntoken = os.environ['MOONSHOT_API_KEY']\n"
                               "config = {'endpoint': 'x', 'token': token, 'head': token[:16]}")
        assert reply["status"] == "ok"
        yield client


def test_kimi_fix_sends_no_piece_of_the_key(module_sim, kernel):
    """Variable summaries, the traceback and the defining cells of a failing cell."""
    module_sim.reset()
    module_sim.queue(Reply(text="Use the right name."))
    reply, _ = run(kernel, "tail = token[-12:]\nhead = token[:13]\nraise ValueError(f'bad {token} {head} {tail}')")
    assert reply["status"] == "error"
    reply, msgs = run(kernel, "%kimi fix")
    shown = text_of(msgs)
    assert len(module_sim.chat_requests) == 1, shown
    body = sent(module_sim)
    assert "ValueError" in body and "config" in body
    assert_clean(body, "the %kimi fix request")


def test_a_document_that_holds_the_key_is_not_uploaded(module_sim, kernel):
    module_sim.reset()
    module_sim.queue(Reply(text="Summary."))
    run(kernel, "report = 'notes.md'")
    _, msgs = run(kernel, "%%kimi --display text --new\nSummarise {report}")
    shown = text_of(msgs)
    assert "contains your API key" in shown and "Traceback" not in shown, shown
    assert not module_sim.files.all()
    assert_clean(sent(module_sim), "a request")
    assert_clean(shown, "the cell's output")


def test_a_document_read_locally_reaches_the_model_masked(module_sim, kernel):
    """A provider without the Files API: the text is extracted here and sent in the chat body."""
    module_sim.reset()
    module_sim.queue(Reply(text="Summary."))
    run(kernel, f"%config Kimi.base_url = '{module_sim.url_for('vllm')}'\n%config Kimi.provider = 'vllm'\n"
                "%kimi trust-endpoint")
    _, msgs = run(kernel, "%%kimi --display text --new\nSummarise {report}")
    run(kernel, "get_ipython().config.Kimi.pop('base_url')\nget_ipython().config.Kimi.pop('provider')")
    shown = text_of(msgs)
    assert "Summary." in shown, shown
    body = sent(module_sim)
    assert "prod token: ***" in body
    assert_clean(body, "the chat body")




def _as_notebook(client, code: str, cells: list[dict], timeout: float = 90) -> tuple[dict, str]:
    """Run ``code`` as a cell of a notebook in JupyterLab: answer the kernel's notebook comm
    (``hello``, ``snapshot``) with ``cells``, as the extension does. Returns the reply and
    everything the cell showed."""
    import queue
    import time

    from kimi_jupyter.agent.frontend import TARGET

    def comm_msg(comm_id: str, data: dict) -> None:
        msg = client.session.msg("comm_msg", {"comm_id": comm_id, "data": data})
        client.shell_channel.send(msg)

    content = {"code": code, "silent": False, "store_history": True, "user_expressions": {},
               "allow_stdin": True, "stop_on_error": True}
    request = client.session.msg("execute_request", content, metadata={"cellId": "cell-under-test"})
    client.shell_channel.send(request)
    msg_id = request["header"]["msg_id"]
    shown: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            msg = client.get_iopub_msg(timeout=0.2)
        except queue.Empty:
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, body = msg["msg_type"], msg["content"]
        if kind == "comm_open" and body.get("target_name") == TARGET:
            comm_msg(body["comm_id"], {"type": "hello", "path": "attack.ipynb", "cells": len(cells)})
        elif kind == "comm_msg" and (body.get("data") or {}).get("action") == "snapshot":
            comm_msg(body["comm_id"], {"type": "snapshot", "id": body["data"]["id"], "cells": cells})
        elif kind == "status" and body["execution_state"] == "idle":
            break
        shown.append(msg)
    while True:
        reply = client.get_shell_msg(timeout=max(1.0, deadline - time.monotonic()))
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply["content"], text_of(shown)


def test_list_cells_read_cell_and_run_cell_send_no_piece_of_the_key(module_sim, kernel, tmp_path):
    """The notebook's cells (their source and saved outputs) and an approved run_cell's output."""
    from kimi_jupyter.testing import ToolCall

    module_sim.reset()
    cells = [
        {"id": "c1", "cell_type": "code", "source": f"token = '{KEY}'", "execution_count": 1,
         "outputs": f"{KEY[:16]}...", "has_error": False},
        {"id": "c2", "cell_type": "code", "source": "print('tail', token[-12:])", "execution_count": 2,
         "outputs": "", "has_error": False},
    ]
    module_sim.queue(
        Reply(reasoning="Read it.", text="Looking.", tool_calls=[ToolCall("list_cells", {}), ToolCall("read_cell", {"index": 1}),
                                           ToolCall("run_cell", {"index": 2})]),
        Reply(text="Seen the notebook."),
    )
    reply, shown = _as_notebook(kernel, "%%kimi --agent --yes --cache --display text --new\nwhat is in here?", cells)
    assert reply["status"] == "ok" and "Seen the notebook." in shown, shown
    results = [m for r in module_sim.chat_requests for m in (r.json or {}).get("messages", []) if m.get("role") == "tool"]
    assert len(results) == 3 and "tail ***" in results[2]["content"], results
    assert_clean(sent(module_sim), "a request body")
    assert_clean(shown, "the cell's output")
    reply, msgs = run(kernel, "import pathlib\nprint('\\n'.join(p.read_text() for p in "
                              "pathlib.Path('.kimi-cache').rglob('*.json')))")
    cache = text_of(msgs)
    assert "run_cell" in cache
    assert_clean(cache, "the response cache")
