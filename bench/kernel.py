"""3. Kernel end to end: ``%%kimi`` in a real ipykernel on a paced 5,000-chunk stream.

The simulator runs in its own process (``python -m kimi_jupyter.testing --script``, so the
pacing never waits on this process's GIL) and paces the stream with ``chunk_delay`` so it
lasts about 3 s; its real per-chunk overhead is calibrated first on a short stream from a
throwaway server, so the requested duration is what the stream takes. A cell saying "Hi"
gets a one-chunk reply (the warm-up), every other request the paced stream.

For each run the stream's own duration is measured right before (the same reply consumed
by a raw httpx loop here: nothing can finish faster), then the cell runs in the kernel and
every iopub message whose parent is that cell is collected until the kernel is idle.

* wall: execute request sent -> kernel idle, against the stream's own duration (<= 1.2x;
  the widget view runs three times, the others twice or once: medians);
* updates/s: ``comm_msg``, ``update_display_data``, ``display_data``, ``clear_output`` and
  ``stream`` messages per second of cell wall time (target about 10/s); the one-off widget
  setup and teardown (``comm_open``/``comm_close``) is reported separately;
* baseline for updates/s: the naive renderer, a display handle updated on every chunk,
  run in the same kernel on the same stream;
* for context (no target): the same minimal SSE loop run inside the kernel without any
  display, which shows how much of the wall ratio is the kernel and the machine, not us.

The live widget view (``--display widget``) carries the targets; the Markdown handle
(``--display markdown``) is reported too.
"""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from .common import (
    API_KEY,
    Log,
    Result,
    chat_payload,
    median,
    reply_rule,
    simulator_process,
    sse_texts,
    text_chunks,
)

TARGET_UPDATES_PER_S = 10.0
UPDATE_TOLERANCE = 1.10  # "about 10/s": a 10% margin, as for the other ratios
TARGET_WALL_RATIO = 1.2
UPDATE_TYPES = {"comm_msg", "update_display_data", "display_data", "clear_output", "stream"}
SETUP_TYPES = {"comm_open", "comm_close"}

# The same minimal SSE loop as the stream-duration baseline, run inside the kernel; with
# SHOW it also repaints a display handle on every chunk (the naive renderer).
RAW_CELL = """\
import httpx as _h, json as _j
from IPython.display import display as _d
_show = {show!r}
_handle = _d({{"text/markdown": ""}}, raw=True, display_id=True) if _show else None
_parts = []
with _h.stream("POST", {url!r}, json={payload!r}, headers={{"Authorization": "Bearer {key}"}}, timeout=60) as _r:
    for _line in _r.iter_lines():
        if not _line.startswith("data:"):
            continue
        _data = _line[5:].strip()
        if _data == "[DONE]":
            break
        _c = _j.loads(_data).get("choices")
        if _c and (_c[0].get("delta") or {{}}).get("content"):
            _parts.append(_c[0]["delta"]["content"])
            if _show:
                _handle.update({{"text/markdown": "".join(_parts)}}, raw=True)
"""


@contextlib.contextmanager
def _kernel(env: dict[str, str], cwd: str) -> Iterator[Any]:
    """A python3 ipykernel of this interpreter with ``env``; always shut down."""
    from jupyter_client.manager import KernelManager

    manager = KernelManager(kernel_name="python3")
    manager.kernel_spec.argv[0] = sys.executable
    manager.start_kernel(env={**os.environ, **env}, cwd=cwd)
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        yield client
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def _execute(client: Any, code: str, timeout: float = 120) -> tuple[float, str, list[dict[str, Any]]]:
    """Run ``code``; wall seconds to idle, reply status, and the iopub messages it caused."""
    start = time.perf_counter()
    msg_id = client.execute(code)
    deadline = time.monotonic() + timeout
    messages: list[dict[str, Any]] = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"the cell did not finish within {timeout} s")
        try:
            msg = client.get_iopub_msg(timeout=remaining)
        except queue.Empty:
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
        messages.append(msg)
    wall = time.perf_counter() - start
    while True:
        reply = client.get_shell_msg(timeout=max(1.0, deadline - time.monotonic()))
        if reply["parent_header"].get("msg_id") == msg_id:
            return wall, reply["content"]["status"], messages


def _errors(messages: list[dict[str, Any]]) -> str:
    for msg in messages:
        if msg["msg_type"] == "error":
            return f"{msg['content']['ename']}: {msg['content']['evalue']}"
        if msg["msg_type"] == "stream" and msg["content"]["name"] == "stderr":
            return msg["content"]["text"].strip()
    return ""


def run(quick: bool, log: Log) -> list[Result]:
    import httpx

    n = 500 if quick else 5_000
    duration = 0.6 if quick else 3.0
    chunks = text_chunks(n)
    payload = chat_payload()
    headers = {"Authorization": f"Bearer {API_KEY}"}
    http = httpx.Client(timeout=60)

    def consume(base_url: str, expected: int) -> float:
        start = time.perf_counter()
        with http.stream("POST", base_url + "/chat/completions", json=payload, headers=headers) as resp:
            got = sse_texts(resp.iter_lines())
        if len(got) != expected:
            raise RuntimeError(f"paced stream: got {len(got)} chunks of {expected}")
        return time.perf_counter() - start

    try:
        nominal = duration / n
        probe = chunks[: max(200, n // 10)]
        with simulator_process([reply_rule(probe, nominal)]) as base_url:
            consume(base_url, len(probe))  # connection and server warm-up
            overhead = max(0.0, consume(base_url, len(probe)) / len(probe) - nominal)
        delay = max(0.0, nominal - overhead)
        rules = [reply_rule(["Hello."], match="^Hi$"), reply_rule(chunks, delay)]
        runs: dict[str, list[dict[str, Any]]] = {"widget": [], "markdown": [], "raw": [], "naive": []}
        with simulator_process(rules) as base_url, tempfile.TemporaryDirectory(prefix="kimi-bench-kernel-") as cwd:
            url = base_url + "/chat/completions"
            env = {"MOONSHOT_API_KEY": API_KEY, "KIMI_BASE_URL": base_url, "KIMI_PROVIDER": "moonshot",
                   "KIMI_MODEL": "kimi-k2.5", "MPLBACKEND": "Agg"}
            with _kernel(env, cwd) as client:
                _, status, messages = _execute(client, "%load_ext kimi_jupyter")
                if status != "ok":
                    raise RuntimeError(f"%load_ext kimi_jupyter failed: {_errors(messages)}")
                cold: dict[str, float] = {}
                for mode in ("widget", "markdown"):  # first use: imports ipywidgets, renderers, ...
                    cold[mode], status, messages = _execute(client, f"%%kimi --new --display {mode}\nHi")
                    if status != "ok" or _errors(messages):
                        raise RuntimeError(f"the first {mode} cell failed: {_errors(messages) or status}")
                plan = ["widget", "markdown", "raw", "naive"] if quick else \
                    ["widget", "markdown", "raw", "naive", "widget", "markdown", "widget"]
                for mode in plan:
                    own = consume(base_url, n)  # the stream's own duration, measured just before
                    if mode in ("raw", "naive"):
                        code = RAW_CELL.format(show=mode == "naive", url=url, payload=payload, key=API_KEY)
                    else:
                        code = f"%%kimi --new --display {mode}\nSummarise the sales data."
                    wall, status, messages = _execute(client, code)
                    problem = _errors(messages)
                    if status != "ok" or problem:
                        raise RuntimeError(f"the {mode} cell failed: {problem or status}")
                    counts = Counter(m["msg_type"] for m in messages)
                    runs[mode].append({
                        "wall": wall, "own": own, "counts": dict(counts),
                        "updates": sum(counts[t] for t in UPDATE_TYPES),
                        "setup": sum(counts[t] for t in SETUP_TYPES),
                        "total": sum(v for t, v in counts.items() if t not in ("status", "execute_input")),
                    })
                _, status, messages = _execute(client, "print(len(_kimi.text))")
                shown = "".join(m["content"].get("text", "") for m in messages if m["msg_type"] == "stream").strip()
                if shown != str(len("".join(chunks))):
                    raise RuntimeError(f"_kimi.text has {shown} chars, expected {len(''.join(chunks))}")
            log(f"kernel: {n:,} chunks paced over ~{duration:g} s (delay {delay * 1e3:.3f} ms, "
                f"calibrated overhead {overhead * 1e3:.3f} ms/chunk); runs {', '.join(plan)}")
    finally:
        http.close()

    def summary(mode: str) -> dict[str, float]:
        rs = runs[mode]
        return {
            "wall": median([r["wall"] for r in rs]),
            "own": median([r["own"] for r in rs]),
            "updates_per_s": median([r["updates"] / r["wall"] for r in rs]),
            "total_per_s": median([r["total"] / r["wall"] for r in rs]),
        }

    widget, markdown, raw, naive = (summary(mode) for mode in ("widget", "markdown", "raw", "naive"))
    label = f"{n:,} chunks/{duration:g} s"
    limit = TARGET_UPDATES_PER_S * UPDATE_TOLERANCE

    def details(mode: str) -> dict[str, Any]:
        data = {"runs": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()} for r in runs[mode]],
                "total_iopub_per_s": round(summary(mode)["total_per_s"], 1)}
        if mode in cold:
            data["first_turn_1_chunk_s"] = round(cold[mode], 3)  # the untimed warm-up, for the record
        return data

    rows = [
        Result(f"%%kimi widget {label}: iopub updates/s", widget["updates_per_s"], naive["updates_per_s"], "/s",
               "update per chunk", f"<= ~{TARGET_UPDATES_PER_S:g}/s", widget["updates_per_s"] <= limit,
               details=details("widget")),
        Result("%%kimi widget: wall vs stream duration", widget["wall"], widget["own"], "s", "stream's own duration",
               f"<= {TARGET_WALL_RATIO}x", widget["wall"] <= TARGET_WALL_RATIO * widget["own"],
               details={"vs_raw_loop_in_kernel": round(widget["wall"] / raw["wall"], 3)}),
        Result(f"%%kimi markdown {label}: iopub updates/s", markdown["updates_per_s"], naive["updates_per_s"], "/s",
               "update per chunk", f"<= ~{TARGET_UPDATES_PER_S:g}/s", markdown["updates_per_s"] <= limit,
               details=details("markdown")),
        Result("%%kimi markdown: wall vs stream duration", markdown["wall"], markdown["own"], "s",
               "stream's own duration", f"<= {TARGET_WALL_RATIO}x", markdown["wall"] <= TARGET_WALL_RATIO * markdown["own"],
               details={"vs_raw_loop_in_kernel": round(markdown["wall"] / raw["wall"], 3)}),
        Result("raw SSE loop in the kernel: wall vs stream", raw["wall"], raw["own"], "s", "stream's own duration",
               "info", None, details=details("raw")),
        Result("naive update-per-chunk: wall vs stream", naive["wall"], naive["own"], "s", "stream's own duration",
               "info", None, details=details("naive")),
    ]
    return rows
