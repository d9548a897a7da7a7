"""The simulator in its own process, with the request log reachable from the parent.

``python -m bench._sim_child SCRIPT`` serves the package's `KimiSimulator` on 127.0.0.1
(key ``common.API_KEY``, replies from the JSON rules in SCRIPT), prints its base URL, then
answers one command per stdin line with one line on stdout:

* ``last PATH``: write the body of the last chat request to PATH, encoded as compact UTF-8
  JSON (as httpx encodes a ``json=`` body, and as the client's orjson encoder does), and say ``ok <bytes> <content-length header>`` (the two
  numbers are equal when the re-encoding is byte for byte what was sent);
* ``clear``: forget the recorded requests (and the prefix-cache model), keep the rules;
* ``quit`` (or end of input): stop.

Benchmarks use it to re-send the exact body of one of our turns with raw httpx, and to
keep the log from holding every multi-megabyte image body of a long run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from kimi_jupyter.testing import KimiSimulator

from .common import API_KEY


def encode_body(body: object) -> bytes:
    """What httpx sends for ``json=body`` (httpx 0.28's encoder settings)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def main(argv: list[str]) -> int:
    script = argv[0]
    rules = json.loads(Path(script).read_text())
    sim = KimiSimulator(api_key=API_KEY, host="127.0.0.1", script=script).start()
    try:
        print(sim.base_url, flush=True)
        for line in sys.stdin:
            cmd, _, arg = line.strip().partition(" ")
            if cmd == "last":
                chats = sim.chat_requests
                if not chats:
                    print("error no chat request recorded", flush=True)
                    continue
                data = encode_body(chats[-1].json)
                Path(arg).write_bytes(data)
                print(f"ok {len(data)} {chats[-1].headers.get('content-length', '-')}", flush=True)
            elif cmd == "clear":
                sim.reset()
                sim.load_script(rules)
                print("ok", flush=True)
            elif cmd == "quit":
                break
            else:
                print(f"error unknown command {cmd!r}", flush=True)
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
