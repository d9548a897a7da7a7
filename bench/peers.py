"""Against what a user would pick instead (issue 28): the openai SDK and jupyter-ai-magics.

Every row runs in real ipykernels (jupyter_client), one kernel per side, all of the same
interpreter, against one simulator process (``python -m kimi_jupyter.testing --script``):

* **kimi**: ``%load_ext kimi_jupyter``, then ``%%kimi --new`` cells with the default
  display (the live view: one output updated in place, then the static bundle);
  ``--new`` so that both sides send the same one-message request;
* **openai SDK**: ``OpenAI(base_url=..., api_key=...)`` made once, then the SDK README's
  streaming loop in a cell (``create(stream=True)``, ``print(delta or "", end="")``);
* **jupyter-ai-magics** (where it installs beside the project): ``%%ai
  openai-chat-custom:kimi-k2.5`` (LangChain's ChatOpenAI; it does not stream; its default
  Markdown output).

The answers: short (30 chunks) and long (2,000 chunks), each unpaced (as fast as the
simulator writes) and paced (``--rate`` chunks a second, a real model's token rate). Each
measured cell is bracketed by two empty cells whose ``user_expressions`` read
``time.process_time()`` in the kernel (every thread of the kernel process, nanosecond
resolution): kernel CPU = after - before, so work the cell leaves to background threads
(iopub, the cache writer) is counted too. Wall = execute request sent -> kernel idle.

``map()`` rows: 2,000 rows, concurrency 32, defaults (the response cache on, in a fresh
folder each run, so every row is sent and written to disk; the progress view a kernel
shows), against ``AsyncOpenAI`` + ``asyncio.Semaphore(32)`` + ``gather`` of non-streamed
``create()`` calls (what a user writes; it writes nothing to disk, shows nothing). A second
row runs ``map(..., use_cache=False)``.

``%load_ext`` row: a fresh kernel per sample; kernel CPU from before ``%load_ext`` until the
warm-up thread it starts has finished (``kimi-warmup``), against ``%load_ext
jupyter_ai_magics`` in its own fresh kernel.

Ratios are medians of per-pair ratios, the sides interleaved (their order alternates pair
by pair), so load from other processes on a shared machine hits both sides alike. No
number here is compared with a number from another run.

Run it with an interpreter that has ``openai`` (the ``bench`` extra) and, optionally,
``jupyter-ai-magics`` installed: ``python -m bench.peers`` (``--pairs``, ``--rate``,
``--json``). Sides whose package does not import are reported as not available.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from .common import (
    API_KEY,
    REPO,
    Log,
    Result,
    describe_machine,
    machine,
    median,
    reply_rule,
    simulator_process,
    text_chunks,
    unavailable,
)

MODEL = "kimi-k2.5"
SHORT, LONG = 30, 2_000
ROWS, CONCURRENCY = 2_000, 32

CPU = "__import__('time').process_time()"

SDK_SETUP = """\
from openai import OpenAI, AsyncOpenAI
client = OpenAI(base_url={base!r}, api_key={key!r})
aclient = AsyncOpenAI(base_url={base!r}, api_key={key!r})
"""
SDK_CELL = """\
stream = client.chat.completions.create(
    model={model!r}, messages=[{{"role": "user", "content": {prompt!r}}}], stream=True)
for chunk in stream:
    if chunk.choices:
        print(chunk.choices[0].delta.content or "", end="")
"""
KIMI_CELL = "%%kimi --new\n{prompt}"
JAI_CELL = "%%ai openai-chat-custom:{model}\n{prompt}"

GATHER_CELL = """\
import asyncio
async def _one(sem, i):
    async with sem:
        r = await aclient.chat.completions.create(
            model={model!r}, messages=[{{"role": "user", "content": f"Label row {{i}}: good or bad?"}}])
        return r.choices[0].message.content
async def _all():
    sem = asyncio.Semaphore({concurrency})
    return await asyncio.gather(*(_one(sem, i) for i in range({rows})))
answers = await _all()
assert len(answers) == {rows} and all(answers), "missing answers"
"""
MAP_CELL = """\
import kimi_jupyter
out = kimi_jupyter.map("Label row {{value}}: good or bad?", list(range({rows})), concurrency={concurrency},
                       {cache})
assert out.summary.done == {rows}, out.summary
"""


class Kernel:
    """One ipykernel of ``python`` with ``env``; `cell` runs code and measures it."""

    def __init__(self, python: str, env: dict[str, str], cwd: str) -> None:
        from jupyter_client.manager import KernelManager

        self.manager = KernelManager(kernel_name="python3")
        self.manager.kernel_spec.argv[0] = python
        self.manager.start_kernel(env={**os.environ, **env}, cwd=cwd)
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=120)

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)

    def execute(self, code: str, timeout: float = 300) -> tuple[float, dict[str, Any], list[dict[str, Any]]]:
        """wall seconds to idle, the reply content, the iopub messages (the cell must succeed)."""
        start = time.perf_counter()
        msg_id = self.client.execute(code, user_expressions={"cpu": CPU})
        deadline = time.monotonic() + timeout
        messages: list[dict[str, Any]] = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"the cell did not finish within {timeout} s: {code[:60]!r}")
            try:
                msg = self.client.get_iopub_msg(timeout=remaining)
            except queue.Empty:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
            messages.append(msg)
        wall = time.perf_counter() - start
        while True:
            reply = self.client.get_shell_msg(timeout=max(1.0, deadline - time.monotonic()))
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        content = reply["content"]
        errors = [m["content"] for m in messages if m["msg_type"] == "error"]
        if content["status"] != "ok" or errors:
            detail = errors[0] if errors else content
            raise RuntimeError(f"cell failed: {code[:60]!r}: {detail.get('ename')}: {detail.get('evalue')}")
        return wall, content, messages

    def cpu_now(self) -> float:
        _, content, _ = self.execute("")
        return float(content["user_expressions"]["cpu"]["data"]["text/plain"])

    def measure(self, code: str) -> dict[str, Any]:
        before = self.cpu_now()
        wall, _, messages = self.execute(code)
        cpu = self.cpu_now() - before
        kinds: dict[str, int] = {}
        for m in messages:
            kinds[m["msg_type"]] = kinds.get(m["msg_type"], 0) + 1
        return {"wall": wall, "cpu": cpu, "iopub": kinds}


@contextlib.contextmanager
def kernels(python: str, specs: dict[str, dict[str, str]], cwd: str) -> Iterator[dict[str, Kernel]]:
    started: dict[str, Kernel] = {}
    try:
        for name, env in specs.items():
            started[name] = Kernel(python, env, cwd)
        yield started
    finally:
        for kernel in started.values():
            with contextlib.suppress(Exception):
                kernel.close()


def has_modules(python: str, *modules: str) -> bool:
    import subprocess

    probe = "import importlib.util, sys; sys.exit(any(importlib.util.find_spec(m) is None for m in sys.argv[1:]))"
    return subprocess.run([python, "-c", probe, *modules], capture_output=True, timeout=120).returncode == 0


def paired(samples: dict[str, list[dict[str, Any]]], ours: str, base: str, key: str) -> tuple[float, float, float]:
    """(median ours, median baseline, median of per-pair ratios) of ``key``."""
    a = [s[key] for s in samples[ours]]
    b = [s[key] for s in samples[base]]
    return median(a), median(b), median([x / y for x, y in zip(a, b, strict=True) if y > 0])


def interleave(pairs: int, sides: list[str], run: Any, log: Log, label: str) -> dict[str, list[dict[str, Any]]]:
    samples: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    for r in range(pairs):
        order = sides if r % 2 == 0 else list(reversed(sides))
        for side in order:
            samples[side].append(run(side, r))
    log(f"peers: {label}: {pairs} interleaved pairs of {', '.join(sides)}")
    return samples


def run(quick: bool, log: Log, *, python: str | None = None, pairs: int = 15, rate: float = 250.0) -> list[Result]:
    python = python or sys.executable
    if quick:
        pairs = 3
    if not has_modules(python, "openai", "ipykernel"):
        why = f"openai is not installed for {python} (pip install 'kimi-jupyter[bench]')"
        return [unavailable("short %%kimi vs openai SDK", why, "openai SDK streaming in a cell", "<= 1.0x")]
    jai = has_modules(python, "jupyter_ai_magics", "langchain_openai")
    short, long_ = text_chunks(SHORT), text_chunks(LONG)
    rules = [
        reply_rule(short, None, "^short fast"),
        reply_rule(short, 1.0 / rate, "^short paced"),
        reply_rule(long_, None, "^long fast"),
        reply_rule(long_, 1.0 / rate, "^long paced"),
        reply_rule(["good"], None, "^Label row"),
        reply_rule(["Hello."], None, "."),
    ]
    results: list[Result] = []
    with simulator_process(rules) as base, tempfile.TemporaryDirectory(prefix="kimi-bench-peers-") as cwd:
        common = {"PYTHONPATH": str(REPO), "MPLBACKEND": "Agg", "KIMI_BENCH": "1"}
        kimi_env = {**common, "MOONSHOT_API_KEY": API_KEY, "KIMI_BASE_URL": base, "KIMI_PROVIDER": "moonshot",
                    "KIMI_MODEL": MODEL}
        peer_env = {**common, "OPENAI_API_KEY": API_KEY, "OPENAI_BASE_URL": base, "OPENAI_API_BASE": base}
        specs = {"kimi": kimi_env, "sdk": peer_env}
        if jai:
            specs["jai"] = peer_env
        with kernels(python, specs, cwd) as k:
            k["kimi"].execute("%load_ext kimi_jupyter")
            k["sdk"].execute(SDK_SETUP.format(base=base, key=API_KEY))
            if jai:
                k["jai"].execute("%load_ext jupyter_ai_magics")
            cells = {
                "kimi": lambda prompt: KIMI_CELL.format(prompt=prompt),
                "sdk": lambda prompt: SDK_CELL.format(model=MODEL, prompt=prompt),
                "jai": lambda prompt: JAI_CELL.format(model=MODEL, prompt=prompt),
            }
            for side in specs:  # warm-up: first-use imports, connections
                for prompt in ("short fast: warm", "long fast: warm"):
                    k[side].execute(cells[side](prompt))
            shown = k["kimi"].execute("print(len(_kimi.text))")[2]
            got = "".join(m["content"].get("text", "") for m in shown if m["msg_type"] == "stream").strip()
            if got != str(len("".join(long_))):  # the rules matched: the answer is the scripted one
                raise RuntimeError(f"%%kimi got {got} chars, expected {len(''.join(long_))}")
            scenarios = [("short", "fast"), ("short", "paced"), ("long", "fast"), ("long", "paced")]
            for size, pace in scenarios:
                sides = ["kimi", "sdk"] + (["jai"] if jai and size == "short" else [])
                prompt = f"{size} {pace}: summarise the sales data"
                samples = interleave(pairs, sides, lambda side, r, p=prompt: k[side].measure(cells[side](p)), log,
                                     f"{size}/{pace}")
                n = SHORT if size == "short" else LONG
                what = f"{n:,}-chunk answer, {'paced ' + format(rate, 'g') + '/s' if pace == 'paced' else 'unpaced'}"
                target = size == "short"
                for key, label in (("cpu", "kernel CPU"), ("wall", "wall")):
                    ours, theirs, ratio = paired(samples, "kimi", "sdk", key)
                    passed = ratio <= 1.0 if target else None
                    results.append(Result(
                        f"%%kimi {what}: {label}", ours * 1000, theirs * 1000, "ms",
                        "openai SDK stream+print in a cell", "<= 1.0x" if target else "info", passed,
                        details={"kimi": samples["kimi"], "sdk": samples["sdk"]}, paired_ratio=ratio))
                if "jai" in sides:
                    for key, label in (("cpu", "kernel CPU"), ("wall", "wall")):
                        ours, theirs, ratio = paired(samples, "kimi", "jai", key)
                        # %%ai does not stream, and the simulator answers a non-streamed request
                        # at once: only the unpaced rows compare like with like.
                        target_here = key == "cpu" and pace == "fast"
                        results.append(Result(
                            f"%%kimi {what} vs %%ai: {label}", ours * 1000, theirs * 1000, "ms",
                            "jupyter-ai-magics %%ai (not streamed)", "<= 1.0x" if target_here else "info",
                            ratio <= 1.0 if target_here else None, details={"jai": samples["jai"]},
                            paired_ratio=ratio))
            if not jai:
                results.append(unavailable("%%kimi short vs %%ai: kernel CPU",
                                           "jupyter-ai-magics (with langchain-openai) does not import here",
                                           "jupyter-ai-magics %%ai", "<= 1.0x"))
            results += _rows(k, pairs if not quick else 2, 200 if quick else ROWS, log)
        results += _load_ext(python, kimi_env, peer_env, jai, cwd, 3 if quick else pairs, log)
    return results


def _rows(k: dict[str, Kernel], pairs: int, rows: int, log: Log) -> list[Result]:
    results = []
    for cache in (True, False):
        def one(side: str, r: int, cache: bool = cache) -> dict[str, Any]:
            if side == "sdk":
                code = GATHER_CELL.format(model=MODEL, concurrency=CONCURRENCY, rows=rows)
            else:
                option = f"cache_dir='rows-cache-{r}'" if cache else "use_cache=False"
                code = MAP_CELL.format(rows=rows, concurrency=CONCURRENCY, cache=option)
            return k[side].measure(code)

        label = "cache on, fresh folder (disk writes)" if cache else "cache off"
        samples = interleave(pairs, ["kimi", "sdk"], one, log, f"map {label}")
        for key, name in (("wall", "wall"), ("cpu", "kernel CPU")):
            ours, theirs, ratio = paired(samples, "kimi", "sdk", key)
            target = "<= 1.0x" if cache and key == "wall" else ("keep (0.84x)" if key == "wall" else "info")
            passed = ratio <= 1.0 if cache and key == "wall" else None
            results.append(Result(
                f"map() {rows:,} rows x{CONCURRENCY}, {label}: {name}", ours * 1000, theirs * 1000, "ms",
                f"AsyncOpenAI + Semaphore({CONCURRENCY}) + gather, no disk, no display", target, passed,
                details={"kimi": samples["kimi"], "sdk": samples["sdk"]}, paired_ratio=ratio))
    return results


JOIN_WARMUP = ("import threading\n"
               "for _t in threading.enumerate():\n"
               "    if _t.name == 'kimi-warmup':\n"
               "        _t.join()\n")


def _load_ext(python: str, kimi_env: dict[str, str], peer_env: dict[str, str], jai: bool, cwd: str, pairs: int,
              log: Log) -> list[Result]:
    if not jai:
        return [unavailable("%load_ext in a kernel vs jupyter-ai-magics", "jupyter-ai-magics does not import here",
                            "%load_ext jupyter_ai_magics", "keep (0.14x)")]

    def one(side: str, r: int) -> dict[str, Any]:
        kernel = Kernel(python, kimi_env if side == "kimi" else peer_env, cwd)
        try:
            before = kernel.cpu_now()
            wall, _, _ = kernel.execute("%load_ext " + ("kimi_jupyter" if side == "kimi" else "jupyter_ai_magics"))
            kernel.execute(JOIN_WARMUP)  # the background imports are part of the cost
            return {"wall": wall, "cpu": kernel.cpu_now() - before}
        finally:
            kernel.close()

    samples = interleave(pairs, ["kimi", "jai"], one, log, "%load_ext, a fresh kernel each")
    ours, theirs, ratio = paired(samples, "kimi", "jai", "cpu")
    return [Result("%load_ext in a kernel (with the warm-up thread): CPU", ours * 1000, theirs * 1000, "ms",
                   "%load_ext jupyter_ai_magics in a kernel", "keep (0.14x)", ratio <= 0.2,
                   details={"kimi": samples["kimi"], "jai": samples["jai"]}, paired_ratio=ratio)]


def main(argv: list[str] | None = None) -> int:
    from .run import table

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--pairs", type=int, default=15)
    parser.add_argument("--rate", type=float, default=250.0, help="paced answers: chunks (tokens) a second")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    m = machine()
    print(describe_machine(m), flush=True)
    results = run(args.quick, lambda s: print(s, file=sys.stderr, flush=True), pairs=args.pairs, rate=args.rate)
    print(table(results, args.quick))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": m, "results": [r.as_dict() for r in results]}, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
