"""What every benchmark shares: the result row, timing helpers, the machine, the simulator.

A benchmark module exposes ``run(quick: bool, log) -> list[Result]``. Every ``Result``
compares a number of ours against a baseline measured in the same run (never against a
number remembered from another machine or another day); ``target`` says what passes.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
API_KEY = "sk-bench-simulator"
Log = Callable[[str], None]


@dataclass
class Result:
    """One table row. ``ratio`` is ours / baseline, or ``paired_ratio`` when the row measured
    both sides round by round (the median of the per-round ratios); ``passed`` is None when
    there is no target."""

    name: str
    ours: float | None
    baseline: float | None
    unit: str
    baseline_name: str = ""
    target: str = ""
    passed: bool | None = None
    note: str = ""  # "not available: ..." replaces the numbers when set and ours is None
    details: dict[str, Any] = field(default_factory=dict)
    paired_ratio: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.paired_ratio is not None:
            return self.paired_ratio
        if self.ours is None or not self.baseline:
            return None
        return self.ours / self.baseline

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ratio"] = self.ratio
        return data


def unavailable(name: str, why: str, baseline_name: str = "", target: str = "") -> Result:
    return Result(name, None, None, "", baseline_name, target, None, note=f"not available: {why}")


def median(values: list[float]) -> float:
    return statistics.median(values)


def cache_dir() -> Path:
    """Where optional peers (a jupyter-ai-magics venv) and bytecode caches live; never the repo."""
    root = os.environ.get("KIMI_BENCH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "kimi-jupyter-bench"
    )
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def machine() -> dict[str, Any]:
    """CPU model, cores, memory, OS, Python and the library versions that matter here."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gb = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = round(int(line.split()[1]) / 2**20, 1)
    versions = {}
    from importlib import metadata

    for dist in ("kimi-jupyter", "ipython", "ipykernel", "ipywidgets", "httpx", "openai", "pandas",
                 "numpy", "matplotlib", "pillow"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    try:
        load = round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        load = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": affinity,
        "memory_gb": mem_gb,
        "os": platform.platform(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "versions": versions,
        "load_average_1m_at_start": load,  # other work on the machine skews every timing
    }


def describe_machine(m: dict[str, Any]) -> str:
    mem = f", {m['memory_gb']} GB RAM" if m.get("memory_gb") else ""
    load = m.get("load_average_1m_at_start")
    busy = f"; load average {load} at start" if load is not None else ""
    return (f"{m['cpu']}, {m['cores']} cores{mem}, {m['os']}, "
            f"{m['implementation']} {m['python']}{busy}")


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Wall seconds of one call, and its value."""
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def text_chunks(n: int) -> list[str]:
    """``n`` streamed pieces of a plausible Markdown answer (words, sentences, paragraphs,
    a code block now and then), so renderers do their real work on it."""
    words = ("the", "frame", "shows", "a", "strong", "seasonal", "trend", "in", "sales", "and",
             "prices", "per", "region", "while", "returns", "stay", "flat")
    out: list[str] = []
    i = 0
    while len(out) < n:
        k = len(out)
        if k % 1000 == 999 and n - k > 8:
            out += ["\n\n```python\n", "df.groupby(", "'region')", "['sales']", ".sum()", "\n```\n\n"]
            continue
        word = words[i % len(words)]
        i += 1
        end = ".\n\n" if k % 120 == 119 else ". " if k % 12 == 11 else " "
        out.append(word + end)
    return out[:n]


def reply_rule(chunks: list[str], chunk_delay: float | None = None, match: str | None = None) -> dict[str, Any]:
    """A simulator script rule answering with exactly ``chunks`` (paced by ``chunk_delay``)."""
    reply: dict[str, Any] = {"chunks": chunks}
    if chunk_delay is not None:
        reply["chunk_delay"] = chunk_delay
    rule: dict[str, Any] = {"reply": reply}
    if match is not None:
        rule["match"] = match
    return rule


@contextlib.contextmanager
def simulator_process(rules: list[dict[str, Any]], *options: str) -> Iterator[str]:
    """The package's standalone simulator (``python -m kimi_jupyter.testing``) in its own
    process, answering by the script ``rules`` (see ``reply_rule``); yields its base URL.

    A separate process keeps the server's work (a JSON frame per chunk, the pacing) off the
    measuring interpreter and its GIL, as a real server would be.
    """
    with tempfile.TemporaryDirectory(prefix="kimi-bench-sim-") as tmp:
        script = Path(tmp) / "script.json"
        script.write_text(json.dumps(rules))
        proc = subprocess.Popen(
            [sys.executable, "-m", "kimi_jupyter.testing", "--host", "127.0.0.1", "--api-key", API_KEY,
             "--script", str(script), *options],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=tmp,
        )
        try:
            assert proc.stdout is not None
            base_url = proc.stdout.readline().strip()
            if not base_url.startswith("http://127.0.0.1:"):
                raise RuntimeError(f"the simulator did not start (said {base_url!r})")
            yield base_url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
            if proc.stdout is not None:
                proc.stdout.close()


def sse_texts(lines: Iterator[str]) -> list[str]:
    """The minimal correct SSE consumer: ``data:`` lines, ``json.loads``, delta content."""
    parts: list[str] = []
    for line in lines:
        if not line.startswith("data:"):
            continue
        text = delta_text(line[5:].strip())
        if text is None:
            break
        if text:
            parts.append(text)
    return parts


def delta_text(data: str) -> str | None:
    """One SSE ``data:`` payload's delta content ("" for none); None at ``[DONE]``."""
    if data == "[DONE]":
        return None
    choices = json.loads(data).get("choices")
    return ((choices[0].get("delta") or {}).get("content") or "") if choices else ""


async def asse_texts(lines: Any) -> list[str]:
    """`sse_texts` for an async iterator of lines (``resp.aiter_lines()``)."""
    parts: list[str] = []
    async for line in lines:
        if not line.startswith("data:"):
            continue
        text = delta_text(line[5:].strip())
        if text is None:
            break
        if text:
            parts.append(text)
    return parts


def chat_payload(stream: bool = True) -> dict[str, Any]:
    return {"model": "kimi-k2.5", "messages": [{"role": "user", "content": "Summarise the sales data."}],
            "stream": stream}
