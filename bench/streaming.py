"""2. Client streaming: a 20,000-chunk stream through ``KimiClient.stream_chat``.

The simulator runs in its own process (``common.simulator_process``) and answers every
request with the same 20,000 chunks. Three consumers read it over one kept-alive
connection each, interleaved round by round (order alternating), and every result is
checked to hold the whole answer:

* ours: ``KimiClient.stream_chat(messages)``, iterating every event (the ``Response`` it
  accumulates included);
* baseline: a raw httpx loop (``iter_lines``, ``json.loads`` of each ``data:`` line, delta
  content appended), the minimal correct SSE consumer;
* peer: the ``openai`` SDK (``chat.completions.create(stream=True)``), when installed; it is
  much slower per chunk, so it runs in fewer rounds.

Wall time is what the targets use. The ratio is the median of the per-round ratios (each
round times ours and the raw loop back to back, in alternating order), so a change in the
machine's load during the run moves both sides of a pair alike; the ms columns are each
consumer's median. The client process's CPU time per chunk is reported too
(the server is another process, so it is the client's own cost). When the client needs less
time per chunk than the simulator takes to write one, both consumers wait on the server and
the wall ratio sits near 1x with the machine's noise around it; the CPU row then shows how
much room is left.
"""

from __future__ import annotations

import time
from collections.abc import Callable
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
    unavailable,
)

TARGET_RATIO = 1.10


def run(quick: bool, log: Log) -> list[Result]:
    import httpx

    from kimi_jupyter.client import KimiClient
    from kimi_jupyter.events import Done, TextDelta
    from kimi_jupyter.settings import resolve_settings

    n = 2_000 if quick else 20_000
    rounds = 3 if quick else 21
    peer_rounds = 1 if quick else 2
    chunks = [f"w{i} " for i in range(n)]
    expected = "".join(chunks)
    payload = chat_payload()
    messages = payload["messages"]

    with simulator_process([reply_rule(chunks)]) as base_url:
        settings = resolve_settings(explicit={"api_key": API_KEY, "base_url": base_url, "provider": "moonshot",
                                              "model": "kimi-k2.5"}, environ={})
        ours_client = KimiClient(settings)
        raw_client = httpx.Client(timeout=60)
        headers = {"Authorization": f"Bearer {API_KEY}"}

        def ours() -> str:
            parts = []
            done = False
            for event in ours_client.stream_chat(messages):
                if type(event) is TextDelta:
                    parts.append(event.text)
                elif isinstance(event, Done):
                    done = True
            if not done:
                raise RuntimeError("our client did not finish the stream")
            return "".join(parts)

        def raw() -> str:
            with raw_client.stream("POST", base_url + "/chat/completions", json=payload, headers=headers) as resp:
                resp.raise_for_status()
                return "".join(sse_texts(resp.iter_lines()))

        consumers: dict[str, Callable[[], str]] = {"ours": ours, "raw": raw}
        peer_note = ""
        try:
            import openai
        except ImportError:
            peer_note = "openai is not installed (pip install openai, or the project's bench extra)"
        else:
            peer_client = openai.OpenAI(api_key=API_KEY, base_url=base_url, max_retries=0, timeout=120)

            def peer() -> str:
                parts = []
                for chunk in peer_client.chat.completions.create(model="kimi-k2.5", messages=messages, stream=True):
                    if chunk.choices and chunk.choices[0].delta.content:
                        parts.append(chunk.choices[0].delta.content)
                return "".join(parts)

            consumers["peer"] = peer

        for name, fn in consumers.items():  # warm-up: connection, imports, caches; and correctness
            text = fn()
            if text != expected:
                raise RuntimeError(f"{name} consumer got {len(text)} chars, expected {len(expected)}")
        wall: dict[str, list[float]] = {k: [] for k in consumers}
        cpu: dict[str, list[float]] = {k: [] for k in consumers}
        for r in range(rounds):
            names = [k for k in consumers if k != "peer" or r < peer_rounds]
            if r % 2:
                names.reverse()
            for name in names:
                c0, t0 = time.process_time(), time.perf_counter()
                consumers[name]()
                wall[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
        ours_client.close()
        raw_client.close()
    log(f"streaming: {n:,} chunks, {rounds} rounds (peer {peer_rounds if 'peer' in wall else 0})")

    def ms(name: str) -> float:
        return median(wall[name]) * 1000

    def us_per_chunk(name: str) -> float:
        return median(cpu[name]) / n * 1e6

    label = f"{n // 1000}k" if n >= 1000 else str(n)
    details: dict[str, Any] = {
        "chunks": n,
        "rounds": rounds,
        "ours_wall_ms_samples": [round(x * 1000, 1) for x in wall["ours"]],
        "raw_wall_ms_samples": [round(x * 1000, 1) for x in wall["raw"]],
        "ours_client_cpu_us_per_chunk": round(us_per_chunk("ours"), 2),
        "raw_client_cpu_us_per_chunk": round(us_per_chunk("raw"), 2),
    }
    paired = median([o / r for o, r in zip(wall["ours"], wall["raw"], strict=True)])
    details["median_of_medians_ratio"] = round(ms("ours") / ms("raw"), 3)
    rows = [
        Result(f"stream {label} chunks: ours vs raw httpx", ms("ours"), ms("raw"), "ms", "raw httpx SSE loop",
               f"<= {TARGET_RATIO:.2f}x", paired <= TARGET_RATIO, details=details, paired_ratio=paired),
        Result(f"stream {label}: client CPU per chunk", us_per_chunk("ours"), us_per_chunk("raw"), "us",
               "raw httpx SSE loop", "info", None),
    ]
    name = f"stream {label} chunks: ours vs openai SDK"
    if "peer" in wall:
        rows.append(Result(name, ms("ours"), ms("peer"), "ms", "openai SDK", "faster (< 1x)", ms("ours") < ms("peer"),
                           details={"peer_wall_ms_samples": [round(x * 1000, 1) for x in wall["peer"]],
                                    "peer_client_cpu_us_per_chunk": round(us_per_chunk("peer"), 2)}))
    else:
        rows.append(unavailable(name, peer_note, "openai SDK", "faster (< 1x)"))
    return rows
