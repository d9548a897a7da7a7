"""``python -m bench.run [--quick] [--json PATH] [--only NAME ...]``: the benchmark table.

Every row compares ours with a baseline measured in the same run, on this machine, and
says whether the targets of issues 8 and 14 are met. ``--quick`` runs small sizes in a few seconds
(CI runs it only to check the benchmarks still work; nothing there asserts a timing).
The full run takes about four to five minutes, plus a one-time install of the optional
``jupyter-ai-magics`` peer into a venv under the bench cache (``--no-install`` skips it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .common import Log, Result, describe_machine, machine, unavailable

BENCHMARKS = ("load", "stream", "kernel", "context", "render", "wire", "media", "engine", "firstcell",
              "rows", "peers")


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "tok" or abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}"


def _mark(passed: bool | None, note: str) -> str:
    if note and passed is None:
        return "n/a"
    return {True: "PASS", False: "FAIL", None: "-"}[passed]


def table(results: list[Result], quick: bool = False) -> str:
    head = ("benchmark", "ours", "baseline", "ratio", "target", "ok")
    rows = []
    for r in results:
        if r.ours is None:
            base = f"{r.baseline_name}: {r.note}" if r.baseline_name else r.note
            rows.append((r.name, "-", base, "-", r.target, _mark(r.passed, r.note)))
            continue
        base = f"{_fmt(r.baseline, r.unit)} ({r.baseline_name})" if r.baseline_name else _fmt(r.baseline, r.unit)
        ratio = "-" if r.ratio is None else (f"{r.ratio:.2f}x" if r.ratio >= 0.1 else f"{r.ratio:.3f}x")
        mark = "quick" if quick and r.passed is not None else _mark(r.passed, r.note)
        rows.append((r.name, _fmt(r.ours, r.unit), base, ratio, r.target, mark))
    widths = [max(len(str(row[i])) for row in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(head, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a few seconds (CI)")
    parser.add_argument("--json", metavar="PATH", help="also write the results (and the machine) as JSON")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, help="run only these benchmarks")
    parser.add_argument("--no-peers", action="store_true", help="skip the jupyter-ai-magics peer")
    parser.add_argument("--no-install", action="store_true", help="use the peer venv only if it already exists")
    parser.add_argument("--install-timeout", type=float, default=300.0, help="seconds allowed for the peer install")
    parser.add_argument("--peer-python", default=os.environ.get("KIMI_BENCH_PYTHON") or sys.executable,
                        help="interpreter of the peers' kernels (needs openai; jupyter-ai-magics optional)")
    parser.add_argument("-q", "--silent", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        if not args.silent:
            print(f"  [{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    from . import context, engine, firstcell, kernel, loadtime, media, peers, render, rows, streaming, wire

    runners: dict[str, Callable[[bool, Log], list[Result]]] = {
        "load": lambda quick, log: loadtime.run(quick, log, peers=not args.no_peers, install=not args.no_install,
                                                install_timeout=args.install_timeout),
        "stream": streaming.run,
        "kernel": kernel.run,
        "context": context.run,
        "render": render.run,
        "wire": wire.run,
        "media": media.run,
        "engine": engine.run,
        "firstcell": firstcell.run,
        "rows": rows.run,
        "peers": lambda quick, log: ([unavailable("peers (openai SDK, jupyter-ai-magics)", "skipped (--no-peers)")]
                                     if args.no_peers else peers.run(quick, log, python=args.peer_python)),
    }
    info = machine()
    mode = "quick" if args.quick else "full"
    results: list[Result] = []
    timings: dict[str, float] = {}
    failures: dict[str, str] = {}
    started = time.perf_counter()
    for name in args.only or BENCHMARKS:
        log(f"{name}...")
        t0 = time.perf_counter()
        try:
            results += runners[name](args.quick, log)
        except Exception as exc:  # one broken benchmark must not hide the others
            failures[name] = f"{type(exc).__name__}: {exc}"
            results.append(Result(f"{name} benchmark", None, None, "", note=f"error: {failures[name]}"))
            log(f"{name} failed: {failures[name]}")
        timings[name] = round(time.perf_counter() - t0, 1)
    total = time.perf_counter() - started

    print(f"kimi-jupyter benchmarks ({mode} mode) - ratios against baselines measured in this run")
    print(f"machine: {describe_machine(info)}")
    print()
    print(table(results, args.quick))
    print()
    if args.quick:
        print("quick mode: small sizes that only check the benchmarks work; targets apply to a full run")
    print(f"ran in {total:.0f} s ({', '.join(f'{k} {v:g} s' for k, v in timings.items())})")
    if args.json:
        data: dict[str, Any] = {
            "mode": mode, "machine": info, "seconds": timings, "failures": failures,
            "results": [r.as_dict() for r in results],
        }
        Path(args.json).write_text(json.dumps(data, indent=2, default=str) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
