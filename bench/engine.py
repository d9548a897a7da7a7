"""5. The turn engine's own cost: long sessions, concurrency, image turns, memory (issue 14).

Every row runs in a fresh child interpreter (``python -m bench.engine SPEC``), so the
IPython shell, the session, the pooled clients and tracemalloc of one row never touch
another. Each child talks to the package's simulator in a third process
(``bench._sim_child``), so the server's work (parsing the body, validating images,
writing chunks) never shares the measured interpreter or its GIL, and costs both sides of
a ratio the same.

How the client's own cost is measured (rows 1 and 3): after one of our turns, the child
asks the simulator for the body of the chat request it just received (its request log),
re-encoded as compact UTF-8 JSON (what httpx writes for ``json=`` and our client's orjson
encoder writes too; the byte count is checked against the request's ``Content-Length``),
and re-sends those very bytes with a raw ``httpx.Client`` to the same
server (same reply; like our client, it stops reading at ``[DONE]``), consuming the SSE stream with the minimal
correct loop (``common.sse_texts``). That re-send is everything a turn cannot avoid:
transport, the server, reading the answer. The turn's wall time over it is the ratio; the
difference, in the JSON details, is the client's overhead in ms (building the content, the
message list and the body, guarding, parsing, committing).

1. **Per-turn cost in a long session**: 300 turns of ``%%kimi --display none`` in an
   IPython shell (``run_cell``, the real magic; settings by ``%config``), and 300 turns of
   ``ask(history=True, display="none")``, each answered with ~1.4 KB of Markdown in 240
   chunks, so the history reaches the default ``history_budget`` (100k tokens) near turn
   260 and is trimmed from then on. The session is run five times (``--quick``: once, 30
   turns) and the (ours, raw) pairs of turns 11-20 ("early") and of turns 291-300 ("late",
   turn 300 and the nine before it) are pooled; each ratio is the median of its 50
   per-turn ratios, so one slow moment of a shared machine moves one pair, not the row
   (turn 300's own ratios are in the details, and so is each side's client CPU time, which
   the machine's load moves much less than wall time). Targets: late <= 2x, late / early
   <= 1.3x.
2. **Concurrency**: 40 concurrent ``aask()`` (a 2,000-chunk answer each, every answer
   checked) against 40 concurrent raw streams of the same body size on one shared
   ``httpx.AsyncClient``, interleaved round by round on one event loop; the ratio is the
   median of the per-round ratios. Target <= 1.3x.
3. **An image turn after 30 image turns**: 30 ``ask(photo, history=True)`` turns with a
   distinct ~4 MB JPEG each (noise, so it does not compress; sent as is, it fits the
   default ``image_max_size``), then 11 more image turns, each timed against the raw
   re-send of its own request body (which carries every image the history budget still
   keeps: tens of MB). Target <= 1.2x (median over the measured turns).
4. **Memory after 30 turns with 4 MB photos**: tracemalloc's current traced memory after
   the turns minus before (as the user has it, with no forced ``gc.collect()``; the value
   after one is in the details, with the peak), against the sum of every photo's data
   URL ever sent and against one photo's. Passes when it is bounded by what the history
   budget keeps (at most ``history_budget // tokens per photo + 1`` photos, the latest
   exchange being kept whole) instead of growing with every photo sent. RSS growth is in
   the details (glibc returns large blocks to the OS, so it follows the same bound).
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .common import (
    API_KEY,
    REPO,
    Log,
    Result,
    asse_texts,
    reply_rule,
    simulator_process,
    sse_texts,
    text_chunks,
)

TURN_TARGET = 2.0
GROWTH_TARGET = 1.3
CONCURRENT_TARGET = 1.3
IMAGE_TARGET = 1.2
HEADERS = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json",
           "Accept": "text/event-stream, application/json"}


# -- the simulator with its request log ----------------------------------------------------

class RecordingSimulator:
    """``bench._sim_child`` in its own process: ``base_url``, ``last_body()``, ``clear()``."""

    def __init__(self, rules: list[dict[str, Any]], tmp: str) -> None:
        self._dir = Path(tmp)
        script = self._dir / "script.json"
        script.write_text(json.dumps(rules))
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "bench._sim_child", str(script)], cwd=tmp, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        self.base_url = self._say(None)
        if not self.base_url.startswith("http://127.0.0.1:"):
            self.close()
            raise RuntimeError(f"the simulator did not start (said {self.base_url!r})")

    def _say(self, command: str | None) -> str:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        if command is not None:
            self._proc.stdin.write(command + "\n")
            self._proc.stdin.flush()
        answer = self._proc.stdout.readline().strip()
        if command is not None and not answer.startswith("ok"):
            raise RuntimeError(f"simulator: {command!r} -> {answer!r}")
        return answer

    def last_body(self) -> bytes:
        """The last chat request's body, as sent (its length checked against Content-Length)."""
        path = self._dir / "last-body.json"
        _, size, sent = self._say(f"last {path}").split()
        if sent != "-" and size != sent:
            raise RuntimeError(f"re-encoded body is {size} bytes, the request had {sent}")
        data = path.read_bytes()
        path.unlink()
        return data

    def clear(self) -> None:
        self._say("clear")

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            assert self._proc.stdin is not None
            self._proc.stdin.write("quit\n")
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=5)
        if self._proc.stdout is not None:
            self._proc.stdout.close()


@contextlib.contextmanager
def recording_simulator(rules: list[dict[str, Any]]) -> Iterator[RecordingSimulator]:
    with tempfile.TemporaryDirectory(prefix="kimi-bench-engine-") as tmp:
        sim = RecordingSimulator(rules, tmp)
        try:
            yield sim
        finally:
            sim.close()


def _configure(base_url: str) -> None:
    from kimi_jupyter.session import get_session

    get_session().config.update(api_key=API_KEY, base_url=base_url, provider="moonshot", model="kimi-k2.5")


def _resend(client: Any, url: str, body: bytes, expected: str) -> tuple[float, float]:
    """Wall and CPU seconds of a raw httpx re-send of ``body``, its answer read and checked."""
    c0, t0 = time.process_time(), time.perf_counter()
    with client.stream("POST", url, content=body, headers=HEADERS) as resp:
        resp.raise_for_status()
        text = "".join(sse_texts(resp.iter_lines()))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if text != expected:
        raise RuntimeError(f"raw re-send got {len(text)} chars, expected {len(expected)}")
    return wall, cpu


def photo(target_bytes: int, seed: int) -> bytes:
    """A JPEG of about ``target_bytes`` that does not compress (noise, quality 95)."""
    import io

    import numpy as np
    from PIL import Image

    pixels = target_bytes / 1.17  # bytes per pixel of noise at quality 95
    width = int((pixels * 4 / 3) ** 0.5)
    height = width * 3 // 4
    array = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "JPEG", quality=95)
    return buf.getvalue()


# -- row 1: per-turn cost in a long session ---------------------------------------------------

def turns_child(spec: dict[str, Any]) -> dict[str, Any]:
    import httpx

    driver, n, early, late = spec["driver"], spec["turns"], spec["early"], spec["late"]
    chunks = text_chunks(240)
    expected = "".join(chunks)
    with recording_simulator([reply_rule(chunks)]) as sim:
        if driver == "magic":
            with tempfile.TemporaryDirectory(prefix="kimi-bench-ipython-") as ipdir:
                os.environ["IPYTHONDIR"] = ipdir
                from IPython.core.interactiveshell import InteractiveShell
                from traitlets.config import Config

                config = Config()
                config.HistoryManager.hist_file = ":memory:"
                shell = InteractiveShell.instance(config=config)
                shell.run_line_magic("load_ext", "kimi_jupyter")
                shell.run_line_magic("config", f"Kimi.base_url = {sim.base_url!r}")
                shell.run_line_magic("config", f"Kimi.api_key = {API_KEY!r}")
                shell.run_line_magic("config", "Kimi.provider = 'moonshot'")

                def turn(i: int) -> str:
                    result = shell.run_cell(f"%%kimi --display none\nQuestion {i}: how do sales compare by "
                                            "region this month, and what changed since the last answer?")
                    if not result.success:
                        raise RuntimeError(f"%%kimi turn {i} failed: {result.error_in_exec!r}")
                    return shell.user_ns["_kimi"].text

                return _turns(turn, sim, httpx, n, early, late, expected, spec["sessions"])
        from kimi_jupyter import ask

        _configure(sim.base_url)

        def turn(i: int) -> str:
            r = ask(f"Question {i}: how do sales compare by region this month, and what changed since the "
                    "last answer?", history=True, display="none")
            if r.error:
                raise RuntimeError(f"ask turn {i} failed: {r.error}")
            return r.text

        return _turns(turn, sim, httpx, n, early, late, expected, spec["sessions"])


def _turns(turn: Any, sim: RecordingSimulator, httpx: Any, n: int, early: list[int], late: list[int],
           expected: str, sessions: int) -> dict[str, Any]:
    """``sessions`` sessions of ``n`` turns; per-turn (ours, raw) pairs of the two windows, pooled."""
    from kimi_jupyter.session import get_session

    windows = {"early": range(early[0], early[1] + 1), "late": range(late[0], late[1] + 1)}
    which = {i: name for name, turns in windows.items() for i in turns}
    pairs: dict[str, list[tuple[float, float]]] = {"early": [], "late": []}
    cpu: dict[str, list[tuple[float, float]]] = {"early": [], "late": []}
    sizes: dict[str, int] = {}
    walls: list[float] = []
    last_turn: list[float] = []
    with httpx.Client(timeout=60) as client:
        url = sim.base_url + "/chat/completions"
        for _ in range(sessions):
            get_session().reset()
            for i in range(1, n + 1):
                sim.clear()
                c0, t0 = time.process_time(), time.perf_counter()
                text = turn(i)
                wall, used = time.perf_counter() - t0, time.process_time() - c0
                walls.append(wall)
                if text != expected:
                    raise RuntimeError(f"turn {i} got {len(text)} chars, expected {len(expected)}")
                if i in which:
                    body = sim.last_body()
                    sim.clear()
                    raw_wall, raw_cpu = _resend(client, url, body, expected)
                    pairs[which[i]].append((wall, raw_wall))
                    cpu[which[i]].append((used, raw_cpu))
                    sizes[which[i]] = len(body)
                    if i == n:
                        last_turn.append(wall / raw_wall)
    conversation = get_session().conversation

    def ratio(name: str) -> float:
        return statistics.median(o / r for o, r in pairs[name])

    def ms(values: list[tuple[float, float]], side: int) -> float:
        return statistics.median(v[side] for v in values) * 1000

    return {
        "early_ratio": ratio("early"), "late_ratio": ratio("late"),
        "early_ours_ms": ms(pairs["early"], 0), "early_raw_ms": ms(pairs["early"], 1),
        "late_ours_ms": ms(pairs["late"], 0), "late_raw_ms": ms(pairs["late"], 1),
        "early_overhead_ms": round(statistics.median(o - r for o, r in pairs["early"]) * 1000, 2),
        "late_overhead_ms": round(statistics.median(o - r for o, r in pairs["late"]) * 1000, 2),
        "early_client_cpu_ms": {"ours": ms(cpu["early"], 0), "raw": ms(cpu["early"], 1)},
        "late_client_cpu_ms": {"ours": ms(cpu["late"], 0), "raw": ms(cpu["late"], 1)},
        "turn_n_ratio_per_session": [round(x, 3) for x in last_turn],
        "early_body_bytes": sizes["early"], "late_body_bytes": sizes["late"],
        "turns": n, "sessions": sessions, "pairs_per_window": len(pairs["late"]),
        "stored_messages": len(conversation), "stored_tokens": conversation.tokens,
        "turn_wall_ms_every_10th_last_session": [round(w * 1000, 1) for w in walls[-n:][9::10]],
    }


# -- row 2: concurrent aask --------------------------------------------------------------------

def concurrent_child(spec: dict[str, Any]) -> dict[str, Any]:
    import asyncio

    import httpx

    from kimi_jupyter import aask

    n, size, rounds = spec["concurrent"], spec["chunks"], spec["rounds"]
    chunks = [f"w{i} " for i in range(size)]
    expected = "".join(chunks)
    with simulator_process([reply_rule(chunks)]) as base_url:
        _configure(base_url)
        url = base_url + "/chat/completions"
        body = json.dumps({"model": "kimi-k2.5", "stream": True, "stream_options": {"include_usage": True},
                           "messages": [{"role": "user", "content": "Stream the long answer."}]}).encode()

        async def main() -> tuple[list[float], list[float]]:
            async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=None,
                                                                          max_keepalive_connections=n)) as client:
                async def raw_one() -> str:
                    async with client.stream("POST", url, content=body, headers=HEADERS) as resp:
                        resp.raise_for_status()
                        return "".join(await asse_texts(resp.aiter_lines()))

                async def ours_one() -> str:
                    r = await aask("Stream the long answer.")
                    if r.error:
                        raise RuntimeError(f"aask failed: {r.error}")
                    return r.text

                async def batch(one: Any) -> float:
                    t0 = time.perf_counter()
                    texts = await asyncio.gather(*(one() for _ in range(n)))
                    wall = time.perf_counter() - t0
                    if any(t != expected for t in texts):
                        raise RuntimeError("a concurrent stream lost part of its answer")
                    return wall

                await batch(ours_one)  # warm-up: connections, the pooled client, imports
                await batch(raw_one)
                ours, raw = [], []
                for r in range(rounds):
                    pair = [(ours_one, ours), (raw_one, raw)]
                    for one, into in pair if r % 2 == 0 else pair[::-1]:
                        into.append(await batch(one))
                return ours, raw

        ours, raw = asyncio.run(main())
    return {
        "ratio": statistics.median(o / r for o, r in zip(ours, raw, strict=True)),
        "ours_ms": statistics.median(ours) * 1000, "raw_ms": statistics.median(raw) * 1000,
        "ours_ms_samples": [round(x * 1000, 1) for x in ours], "raw_ms_samples": [round(x * 1000, 1) for x in raw],
        "concurrent": n, "chunks": size, "rounds": rounds,
    }


# -- rows 3 and 4: image turns --------------------------------------------------------------------

def image_child(spec: dict[str, Any]) -> dict[str, Any]:
    import httpx

    from kimi_jupyter import ask

    before, measured, size = spec["before"], spec["measured"], spec["photo_bytes"]
    chunks = text_chunks(40)
    expected = "".join(chunks)
    photos = [photo(size, seed) for seed in range(before + measured)]
    with recording_simulator([reply_rule(chunks)]) as sim:
        _configure(sim.base_url)

        def turn(i: int) -> None:
            r = ask(f"Photo {i}: what is in this picture?", photos[i], history=True, display="none")
            if r.error or r.text != expected:
                raise RuntimeError(f"image turn {i} failed: {r.error or len(r.text)}")

        for i in range(before):
            turn(i)
            sim.clear()
        ours, raw, bodies, ours_cpu, raw_cpu = [], [], [], [], []
        with httpx.Client(timeout=120) as client:
            for i in range(before, before + measured):
                c0, t0 = time.process_time(), time.perf_counter()
                turn(i)
                ours.append(time.perf_counter() - t0)
                ours_cpu.append(time.process_time() - c0)
                body = sim.last_body()
                sim.clear()
                bodies.append(len(body))
                wall, cpu = _resend(client, sim.base_url + "/chat/completions", body, expected)
                raw.append(wall)
                raw_cpu.append(cpu)
                sim.clear()
        # What the turn's own content costs (checking and encoding the new photo), for the record.
        from kimi_jupyter.context import image_part

        t0 = time.perf_counter()
        image_part(photos[-1])
        compose_ms = (time.perf_counter() - t0) * 1000
    return {
        "ratio": statistics.median(o / r for o, r in zip(ours, raw, strict=True)),
        "ours_ms": statistics.median(ours) * 1000, "raw_ms": statistics.median(raw) * 1000,
        "ours_ms_samples": [round(x * 1000, 1) for x in ours], "raw_ms_samples": [round(x * 1000, 1) for x in raw],
        "overhead_ms": round(statistics.median(o - r for o, r in zip(ours, raw, strict=True)) * 1000, 1),
        "client_cpu_ms": {"ours": statistics.median(ours_cpu) * 1000, "raw": statistics.median(raw_cpu) * 1000},
        "new_photo_image_part_ms": round(compose_ms, 1),
        "body_bytes": bodies, "photo_bytes": len(photos[0]), "turns_before": before,
    }


def memory_child(spec: dict[str, Any]) -> dict[str, Any]:
    import tracemalloc

    from kimi_jupyter import ask
    from kimi_jupyter.context import image_part
    from kimi_jupyter.conversation import estimate_message_tokens
    from kimi_jupyter.session import get_session

    n, size = spec["turns"], spec["photo_bytes"]
    chunks = text_chunks(40)
    photos = [photo(size, seed) for seed in range(n + 1)]
    with recording_simulator([reply_rule(chunks)]) as sim:
        _configure(sim.base_url)
        warm = ask("Warm-up: what is in this picture?", photos[n], display="none")  # imports, pooled client
        if warm.error:
            raise RuntimeError(warm.error)
        sim.clear()
        url_sizes = [len(image_part(p)["image_url"]["url"]) for p in photos[:n]]
        sent, one_url = sum(url_sizes), max(url_sizes)
        per_photo_tokens = estimate_message_tokens({"role": "user", "content": [image_part(photos[0])]})
        budget = get_session().settings().history_budget
        gc.collect()
        rss0 = _rss()
        tracemalloc.start()
        current0, _ = tracemalloc.get_traced_memory()
        for i in range(n):
            r = ask(f"Photo {i}: what is in this picture?", photos[i], history=True, display="none")
            if r.error:
                raise RuntimeError(f"photo turn {i} failed: {r.error}")
            sim.clear()
        current, peak = tracemalloc.get_traced_memory()  # as the user has it: no forced collection
        rss1 = _rss()
        gc.collect()
        collected, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    conversation = get_session().conversation
    kept_urls = [p["image_url"]["url"] for m in conversation.messages if isinstance(m.get("content"), list)
                 for p in m["content"] if p.get("type") == "image_url"]
    allowed = budget // per_photo_tokens + 1
    retained = current - current0
    return {
        "retained_bytes": retained, "sent_bytes": sent, "one_photo_url_bytes": one_url,
        "peak_bytes": peak - current0, "retained_after_gc_collect_bytes": collected - current0, "allowed_photos": allowed, "allowed_bytes": allowed * one_url,
        "photos_kept_in_history": len(kept_urls), "history_url_bytes": sum(map(len, kept_urls)),
        "rss_growth_bytes": (rss1 - rss0) if rss0 and rss1 else None,
        "turns": n, "photo_bytes": len(photos[0]), "history_budget": budget, "tokens_per_photo": per_photo_tokens,
    }


def _rss() -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return None


CHILDREN = {"turns": turns_child, "concurrent": concurrent_child, "image": image_child, "memory": memory_child}


# -- the parent: specs, children, rows -----------------------------------------------------------

def _child(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="kimi-bench-engine-run-") as tmp:
        proc = subprocess.run([sys.executable, "-m", "bench.engine", json.dumps(spec)], cwd=tmp, text=True,
                              capture_output=True, timeout=timeout,
                              env={**os.environ, "PYTHONPATH": str(REPO), "KIMI_API_KEY": "", "MOONSHOT_API_KEY": ""})
    if proc.returncode != 0 or not proc.stdout.strip():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"{spec['row']} child failed: {' | '.join(tail)}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(quick: bool, log: Log) -> list[Result]:
    rows: list[Result] = []
    n = 30 if quick else 300
    early, late = (11, 15) if quick else (11, 20), (n - 4, n) if quick else (n - 9, n)
    for driver, label in (("magic", "%%kimi"), ("ask", "ask(history=True)")):
        d = _child({"row": "turns", "driver": driver, "turns": n, "early": early, "late": late,
                    "sessions": 1 if quick else 5}, 900)
        log(f"engine: {label} {n} turns, late/early {d['late_ratio'] / d['early_ratio']:.2f}")
        span = f"turns {late[0]}-{late[1]}"
        rows.append(Result(f"{label} turn {n}: ours vs raw re-send", d["late_ours_ms"], d["late_raw_ms"], "ms",
                           f"raw httpx, same body ({span})", f"<= {TURN_TARGET:.1f}x",
                           d["late_ratio"] <= TURN_TARGET, details=d, paired_ratio=d["late_ratio"]))
        growth = d["late_ratio"] / d["early_ratio"]
        rows.append(Result(f"{label} turn {n} vs turns {early[0]}-{early[1]}: ratio growth", d["late_ratio"],
                           d["early_ratio"], "x", f"ratio at turns {early[0]}-{early[1]}",
                           f"<= {GROWTH_TARGET:.1f}x", growth <= GROWTH_TARGET))

    spec = {"row": "concurrent", "concurrent": 8, "chunks": 200, "rounds": 3} if quick else \
        {"row": "concurrent", "concurrent": 40, "chunks": 2000, "rounds": 9}
    d = _child(spec, 600)
    log(f"engine: {spec['concurrent']} concurrent aask x {spec['chunks']} chunks, {d['ratio']:.2f}x")
    rows.append(Result(f"{spec['concurrent']} concurrent aask x {spec['chunks']:,} chunks", d["ours_ms"], d["raw_ms"],
                       "ms", "raw streams, one AsyncClient", f"<= {CONCURRENT_TARGET:.1f}x",
                       d["ratio"] <= CONCURRENT_TARGET, details=d, paired_ratio=d["ratio"]))

    size = 500_000 if quick else 4_000_000
    before = 5 if quick else 30
    d = _child({"row": "image", "before": before, "measured": 1 if quick else 11, "photo_bytes": size}, 900)
    log(f"engine: image turn after {before} image turns, {d['ratio']:.2f}x")
    rows.append(Result(f"image turn after {before} image turns", d["ours_ms"], d["raw_ms"], "ms",
                       "raw re-send of its body", f"<= {IMAGE_TARGET:.1f}x", d["ratio"] <= IMAGE_TARGET,
                       details=d, paired_ratio=d["ratio"]))

    d = _child({"row": "memory", "turns": before, "photo_bytes": size}, 900)
    mb = 1e6
    log(f"engine: memory after {before} photo turns: {d['retained_bytes'] / mb:.1f} MB retained")
    bounded = d["retained_bytes"] <= d["allowed_bytes"] * 1.1
    label = f"{size // 1_000_000} MB" if size >= 1_000_000 else f"{size // 1000} kB"
    rows.append(Result(f"memory after {before} turns with {label} photos", d["retained_bytes"] / mb,
                       d["sent_bytes"] / mb, "MB", "all photos sent",
                       f"<= {d['allowed_photos']} photos (budget)", bounded, details=d))
    rows.append(Result(f"memory after {before} photo turns vs one photo", d["retained_bytes"] / mb,
                       d["one_photo_url_bytes"] / mb, "MB", "one photo's data URL",
                       f"<= {d['allowed_photos']}x", bounded))
    return rows


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    result = CHILDREN[spec["row"]](spec)
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
