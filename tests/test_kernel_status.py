"""In a real ipykernel: the published status stays busy while a Kimi turn runs (and is left
alone in other cells), though requests on the control channel are answered meanwhile (what JupyterLab's debugger and widget manager
send), and once ``%load_ext`` has run the first cell's heavy imports load in the background."""

from __future__ import annotations

import queue
import time
from pathlib import Path
from typing import Any

from .kernels import run, running_kernel


def _statuses_during(client: Any, cell: str, control_requests: int) -> list[tuple[str, str]]:
    """Run ``cell``, send control requests while it runs; every status seen until it is idle:
    (execution_state, msg_type of its parent)."""
    msg_id = client.execute(cell)
    time.sleep(0.5)  # the cell is running
    for _ in range(control_requests):
        client.control_channel.send(client.session.msg("kernel_info_request"))
        time.sleep(0.1)
    seen: list[tuple[str, str]] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            msg = client.get_iopub_msg(timeout=1)
        except queue.Empty:
            continue
        if msg["msg_type"] == "status":
            seen.append((msg["content"]["execution_state"], msg["parent_header"].get("msg_type", "")))
            if msg["content"]["execution_state"] == "idle" and msg["parent_header"].get("msg_id") == msg_id:
                break
    return seen


def test_the_status_stays_busy_while_a_kimi_turn_runs_and_only_then(tmp_path: Path) -> None:
    from kimi_jupyter.testing import Reply
    from kimi_jupyter.testing.simulator import KimiSimulator

    with KimiSimulator(api_key="sk-test-simulator", dialect="moonshot") as sim:
        sim.on(r"slowly", Reply(text="one two three four five six seven", chunk_chars=5, chunk_delay=0.5))
        sim.on(r"warm", Reply(text="ok"))
        env = {"KIMI_BASE_URL": sim.base_url, "MOONSHOT_API_KEY": "sk-test-simulator", "KIMI_PROVIDER": "moonshot"}
        with running_kernel(env, tmp_path) as (_manager, client):
            reply, _ = run(client, "%load_ext kimi_jupyter")
            assert reply["status"] == "ok"
            reply, _ = run(client, "%%kimi --display text --no-think\nwarm up")  # the first turn's imports
            assert reply["status"] == "ok"
            seen = _statuses_during(client, "%%kimi --display text --no-think\nanswer slowly", control_requests=3)
            # Each control request ends with its own idle; a busy for the cell follows each one,
            # so the last word before the cell's own idle is always busy.
            control_idles = [k for k, s in enumerate(seen) if s == ("idle", "kernel_info_request")]
            assert len(control_idles) == 3, seen
            for k in control_idles:
                assert seen[k + 1] == ("busy", "execute_request"), seen
            assert seen[-1] == ("idle", "execute_request")
            assert seen[-2][0] == "busy"

            # A cell that runs no Kimi turn is left as ipykernel publishes it.
            plain = _statuses_during(client, "import time; time.sleep(1.5)", control_requests=2)
            idles = [k for k, s in enumerate(plain) if s == ("idle", "kernel_info_request")]
            assert idles and all(plain[k + 1] != ("busy", "execute_request") for k in idles if k + 1 < len(plain) - 1)

            # After the cell, a control request is answered with a plain busy/idle and no extra busy.
            client.control_channel.send(client.session.msg("kernel_info_request"))
            time.sleep(0.5)
            after = []
            while True:
                try:
                    msg = client.get_iopub_msg(timeout=0.5)
                except queue.Empty:
                    break
                if msg["msg_type"] == "status":
                    after.append(msg["content"]["execution_state"])
            assert after[-1:] == ["idle"], after


def test_without_the_extension_ipykernel_says_idle_mid_cell(tmp_path: Path) -> None:
    """The behaviour the extension corrects, so the test above means something."""
    with running_kernel({}, tmp_path) as (_manager, client):
        seen = _statuses_during(client, "import time; time.sleep(1.5)", control_requests=2)
        idles = [k for k, s in enumerate(seen) if s == ("idle", "kernel_info_request")]
        assert idles and all(seen[k + 1] != ("busy", "execute_request") for k in idles if k + 1 < len(seen) - 1)


def test_load_ext_warms_the_first_cell_up_in_a_kernel(tmp_path: Path) -> None:
    # The live view is no widget: the warm-up leaves ipywidgets alone (an approval loads it).
    check = ("import sys; print(sorted(m for m in ('httpx', 'ipywidgets', 'kimi_jupyter.display', 'kimi_jupyter.turn') "
             "if m in sys.modules))")
    for warmup, expected in (("1", "['httpx', 'kimi_jupyter.display', 'kimi_jupyter.turn']"), ("0", "[]")):
        with running_kernel({"KIMI_WARMUP": warmup}, tmp_path) as (_manager, client):
            run(client, "%load_ext kimi_jupyter")
            out = ""
            for _ in range(40):  # the background thread needs a moment
                _, messages = run(client, check)
                out = "".join(m["content"].get("text", "") for m in messages if m["msg_type"] == "stream")
                if out.strip() == expected or warmup == "0":
                    break
                time.sleep(0.25)
            assert out.strip() == expected
