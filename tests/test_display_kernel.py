"""The live view in a real ipykernel, through nbclient, and the saved bundle through nbconvert."""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbconvert import HTMLExporter

REPO = Path(__file__).resolve().parents[1]
KERNEL = "kimi-display-test"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
EXPECTED = "".join(f"w{i} " for i in range(5000)).strip()

STREAM_CODE = """
import time
from kimi_jupyter.display import TurnMeta, choose_renderer
from kimi_jupyter.events import Done, ReasoningDelta, TextDelta, Usage
from kimi_jupyter.response import Response

renderer = choose_renderer("widget")
response = Response(keep_events=False)
events = [ReasoningDelta(f"r{{i}} ") for i in range(300)] + [TextDelta(f"w{{i}} ") for i in range(5000)]
events += [Usage(prompt=10, completion=5000, reasoning=300, total=5010, cost=0.01, currency="CNY"), Done("stop")]
t0 = time.monotonic()
renderer.start(TurnMeta(model="kimi-k2.5", thinking=True, context_window=262144))
for k, event in enumerate(events):
    while {pace} and time.monotonic() < t0 + k * {pace}:  # spread the stream over a known time
        pass
    response.feed(event)
    renderer.handle(event)
renderer.finish(response)
elapsed = time.monotonic() - t0
"""


@pytest.fixture(scope="module")
def kernel_name(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A kernelspec that runs this interpreter with this checkout importable."""
    root = tmp_path_factory.mktemp("jupyter")
    spec_dir = root / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "kimi display test",
        "language": "python",
        "env": {"PYTHONPATH": str(REPO), "IPYTHONDIR": str(root / "ipython")},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(root))
        yield KERNEL


@pytest.fixture(scope="module")
def kernel(kernel_name: str) -> Iterator[Any]:
    manager = KernelManager(kernel_name=kernel_name)
    manager.start_kernel()
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        yield client
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def execute(client: Any, code: str, timeout: float = 60) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run ``code``; return every iopub message it caused and the evaluated ``elapsed``."""
    msg_id = client.execute(code, user_expressions={"elapsed": "elapsed"})
    messages = []
    deadline = time.monotonic() + timeout
    while True:
        message = client.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
        if message["parent_header"].get("msg_id") != msg_id:
            continue
        messages.append(message)
        if message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
            break
    reply = client.get_shell_msg(timeout=timeout)
    while reply["parent_header"].get("msg_id") != msg_id:  # e.g. a late kernel_info_reply
        reply = client.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
    assert reply["content"]["status"] == "ok", reply["content"]
    return messages, reply["content"]["user_expressions"]


def repaints(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if m["msg_type"] in ("display_data", "update_display_data")]


@pytest.mark.parametrize("pace", [0.0, 0.0003], ids=["full-speed", "paced-1.6s"])
def test_live_view_in_a_kernel_sends_few_updates_and_ends_static(
    kernel: Any, pace: float, capsys: Any
) -> None:
    messages, expressions = execute(kernel, STREAM_CODE.format(pace=pace))
    errors = [m["content"] for m in messages if m["msg_type"] == "error"]
    assert not errors, errors
    elapsed = float(expressions["elapsed"]["data"]["text/plain"])
    updates = repaints(messages)
    kinds = [m["msg_type"] for m in messages]
    with capsys.disabled():
        print(f"\n[{pace=}] elapsed {elapsed:.2f} s: {len(updates)} display messages, {kinds.count('comm_open')} comms")
    assert len(updates) <= elapsed * 5 + 3
    # one output, updated in place: no widget, no comm
    assert not any(kind.startswith("comm_") for kind in kinds)
    shown, final = updates[0], updates[-1]
    assert shown["msg_type"] == "display_data" and WIDGET_VIEW not in shown["content"]["data"]
    assert kinds.count("display_data") == 1
    if pace:  # the stream outlasts the first interval: live repaints, then the final bundle in place
        assert len(updates) > 2 and final["msg_type"] == "update_display_data"
        assert final["content"]["transient"]["display_id"] == shown["content"]["transient"]["display_id"]
    else:  # over before the first repaint was due: the final bundle is the one output
        assert updates == [shown]
    data = final["content"]["data"]
    assert data["text/plain"].startswith(EXPECTED + "\n\n[reasoning: ")
    assert f"<p>{EXPECTED}</p>" in data["text/html"]
    assert '<details class="kimi-reasoning"' in data["text/html"]


def _run_notebook(kernel_name: str, tmp_path: Path, *sources: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    client = NotebookClient(
        nb, timeout=60, kernel_name=kernel_name, resources={"metadata": {"path": str(tmp_path)}}
    )
    return client.execute()


def test_saved_notebook_keeps_only_the_static_bundle(kernel_name: str, tmp_path: Path) -> None:
    nb = _run_notebook(kernel_name, tmp_path, STREAM_CODE.format(pace=0.0001))
    outputs = nb.cells[0].outputs
    assert [o.output_type for o in outputs] == ["display_data"]
    assert set(outputs[0].data) == {"application/vnd.kimi.response+json", "text/html", "text/markdown", "text/plain"}
    assert outputs[0].data["text/plain"].startswith(EXPECTED)
    saved = nbformat.writes(nb)
    assert WIDGET_VIEW not in json.dumps([cell.get("outputs", []) for cell in nb.cells])
    assert "<script" not in saved


BUNDLE_CODE = """
from IPython.display import display
from kimi_jupyter.display import TurnMeta, final_bundle
from kimi_jupyter.events import Done, ReasoningDelta, TextDelta, Usage
from kimi_jupyter.response import Response

response = Response().feed_all([
    ReasoningDelta("First I look at the <columns>."),
    TextDelta("Use `df.describe()`:\\n\\n```python\\ndf.describe()\\n```\\n"),
    Usage(prompt=120, cached=100, completion=40, reasoning=12, total=160, cost=0.0004, currency="CNY"),
    Done("stop"),
])
display(final_bundle(response, TurnMeta("kimi-k2.5", True, context_window=262144)), raw=True)
"""


def test_nbconvert_html_keeps_reasoning_details_and_usage_table(kernel_name: str, tmp_path: Path) -> None:
    nb = _run_notebook(kernel_name, tmp_path, BUNDLE_CODE)
    body, _ = HTMLExporter().from_notebook_node(nb)
    reasoning = re.search(r'<details class="kimi-reasoning"[^>]*>.*?</details>', body, re.S)
    assert reasoning and "First I look at the &lt;columns&gt;." in reasoning.group(0)
    assert '<table class="kimi-usage"' in body
    assert ">¥0.0004</td>" in body and ">100</td>" in body
    # The fenced code: highlighted (inline Pygments colours), no band behind each line.
    block = re.search(r'<code class="language-python" style="background:none[^"]*">(.*?)</code>', body, re.S)
    assert block and re.sub(r"<[^>]+>", "", block.group(1)).rstrip("\n") == "df.describe()"
    assert '<span style="color:' in block.group(1)
