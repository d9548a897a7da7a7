"""The demo simulator as `.ci/lab` starts it, for tests of what a user without a key meets."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "notebooks" / "harness" / "replies.json"
DEMO_KEY = "sk-demo"


@contextmanager
def demo_simulator() -> Iterator[str]:
    """The demo simulator as `.ci/lab` starts it; yields its base URL."""
    command = [sys.executable, "-m", "kimi_jupyter.testing", "--host", "127.0.0.1", "--port", "0",
               "--script", str(SCRIPT), "--api-key", DEMO_KEY, "--chunk-delay", "0.02"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)}
    log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed below); read only if it fails to start
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        url = lines.get(timeout=60).strip()
        if not url.startswith("http://127.0.0.1:"):
            log.seek(0)
            raise AssertionError(f"the demo simulator did not start: {url!r} {log.read()[-2000:]}")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        finally:
            if process.poll() is None:
                process.kill()
            process.communicate(timeout=10)
            log.close()
