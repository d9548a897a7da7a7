"""Run the simulator as a standalone server: ``python -m kimi_jupyter.testing``.

For demos, manual checks of the JupyterLab sidebar and benchmarks against a fake Kimi.
The first line printed is the base URL (flushed at once, so a parent process can read it);
the server then runs until SIGINT or SIGTERM. Only loopback hosts are accepted.

    python -m kimi_jupyter.testing [--host 127.0.0.1] [--port 0] [--dialect moonshot]
                                   [--api-key KEY] [--script FILE] [--chunk-delay S]
                                   [--batch-speed X | --real-time] [--rate-limit N/SECONDS]

The Batch API's clock runs an hour a second by default (``DEMO_BATCH_SPEED``, the clock
the example notebooks are checked with), so a demo batch of a few hundred rows finishes in
a moment instead of the minutes a real batch takes; ``--real-time`` runs it on the wall
clock (``--batch-speed X``: any other factor).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from .batches import DEMO_BATCH_SPEED
from .dialects import DIALECTS
from .simulator import KimiSimulator, is_loopback


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m kimi_jupyter.testing", description="Serve a loopback Kimi-compatible simulator."
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default 0: a free port)")
    parser.add_argument(
        "--dialect", default="moonshot", choices=sorted(DIALECTS), help="dialect served at /v1"
    )
    parser.add_argument("--api-key", default=None, help="the only key accepted (default: any key)")
    parser.add_argument("--script", default=None, help="JSON rules file with scripted replies")
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between streamed chunks")
    clock = parser.add_mutually_exclusive_group()
    clock.add_argument("--batch-speed", type=float, default=DEMO_BATCH_SPEED,
                       help="the Batch API's clock: simulated seconds per real second "
                            f"(default {DEMO_BATCH_SPEED:g}: an hour a second)")
    clock.add_argument("--real-time", dest="batch_speed", action="store_const", const=1.0,
                       help="run the Batch API's clock in real time (a batch takes minutes, as on Moonshot)")
    parser.add_argument("--rate-limit", default=None, metavar="N/SECONDS",
                        help="at most N chat requests per SECONDS (429 past it), e.g. 60/60")
    return parser


def _rate_limits(text: str | None) -> Any:
    if not text:
        return None
    from .ratelimit import RateLimits

    requests, _, window = text.partition("/")
    return RateLimits(requests=int(requests), window=float(window or 60))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not is_loopback(args.host):
        print(
            f"error: refusing to listen on {args.host!r}: only loopback addresses are allowed",
            file=sys.stderr,
        )
        return 2
    try:
        sim = KimiSimulator(
            api_key=args.api_key,
            dialect=args.dialect,
            host=args.host,
            port=args.port,
            script=args.script,
            chunk_delay=args.chunk_delay,
            batch_speed=args.batch_speed,
            rate_limits=_rate_limits(args.rate_limit),
        )
        sim.start()
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()

    def _on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    print(sim.base_url, flush=True)
    others = ", ".join(f"{name}: {sim.url_for(name)}" for name in sorted(DIALECTS) if name != args.dialect)
    print(f"Kimi simulator ({args.dialect}) serving; other dialects: {others}. Ctrl+C stops it.", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
