"""MCP in a real ipykernel: `.kimi/mcp.json` beside the notebook, `%kimi mcp`, an agent cell
calling mcp-server-time through the gate (its answer reaching the simulator), the traces of
that turn, and the servers stopping on `%unload_ext` and on kernel shutdown."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("mcp")

from kimi_jupyter.agent.loop import DENIED
from kimi_jupyter.testing import KimiSimulator, Reply, ToolCall

from .kernels import run, running_kernel, text_of

KEY = "sk-test-simulator"
FAULTY = str(Path(__file__).resolve().parent / "mcp_servers" / "faulty.py")


def _gone(pid: int) -> bool:
    try:
        return "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return True


def _wait_gone(pid: int) -> bool:
    for _ in range(150):
        if _gone(pid):
            return True
        time.sleep(0.1)
    return False


def test_agent_cell_calls_a_real_mcp_server_through_the_gate(tmp_path):
    notebook = tmp_path / "project"
    (notebook / ".kimi").mkdir(parents=True)
    (tmp_path / "home").mkdir()
    pid_file = tmp_path / "pid"
    (notebook / ".kimi" / "mcp.json").write_text(json.dumps({"mcpServers": {
        "time": {"command": sys.executable, "args": ["-m", "mcp_server_time", "--local-timezone", "UTC"]},
        "f": {"command": sys.executable, "args": [FAULTY, "--pid-file", str(pid_file)]},
    }}))
    with KimiSimulator(api_key=KEY) as sim:
        env = {"KIMI_BASE_URL": sim.base_url, "MOONSHOT_API_KEY": KEY, "KIMI_PROVIDER": "moonshot",
               "HOME": str(tmp_path / "home")}
        with running_kernel(env, notebook) as (manager, client):
            reply, _ = run(client, "%load_ext kimi_jupyter")
            assert reply["status"] == "ok"

            reply, messages = run(client, "%kimi mcp", timeout=120)
            listing = text_of(messages)
            assert "time: ready" in listing and "time__get_current_time (read-only)" in listing
            assert "f: ready" in listing and "from .kimi/mcp.json" in listing

            # Approved (--yes): the tool runs and its answer reaches the model.
            sim.queue(Reply(reasoning="Ask the clock.",
                            tool_calls=[ToolCall("time__get_current_time", {"timezone": "Europe/Paris"})]),
                      Reply(reasoning="r", text="It is evening in Paris."))
            reply, messages = run(client, "%%kimi --agent --yes --display text\nWhat time is it in Paris?", timeout=120)
            assert reply["status"] == "ok", text_of(messages)
            shown = text_of(messages)
            assert "time__get_current_time" in shown and "It is evening in Paris." in shown
            tools = [t["function"]["name"] for t in sim.chat_requests[0].json["tools"]]
            assert {"run_python", "time__get_current_time", "f__echo"} <= set(tools)
            (result,) = [m for m in sim.chat_requests[1].json["messages"] if m["role"] == "tool"]
            assert json.loads(result["content"])["timezone"] == "Europe/Paris"

            # Not approved: nobody can click here (allow_stdin is off), so the gate says no.
            sim.reset()
            sim.queue(Reply(reasoning="r", tool_calls=[ToolCall("f__write_note", {"text": "x"})]),
                      Reply(reasoning="r", text="Not written."))
            reply, messages = run(client, "%%kimi --agent --new --display text\nWrite a note", timeout=120)
            assert reply["status"] == "ok", text_of(messages)
            (result,) = [m for m in sim.chat_requests[1].json["messages"] if m["role"] == "tool"]
            assert result["content"] == DENIED

            # %unload_ext stops the servers: their processes end.
            pid = int(pid_file.read_text())
            reply, _ = run(client, "%unload_ext kimi_jupyter")
            assert reply["status"] == "ok"
            assert _wait_gone(pid)

            # Loaded again, they start again; a kernel shutdown stops them too.
            run(client, "%load_ext kimi_jupyter")
            reply, messages = run(client, "%kimi mcp", timeout=120)
            assert "f: ready" in text_of(messages)
            pid = int(pid_file.read_text())
            manager.shutdown_kernel(now=False)
            assert _wait_gone(pid)


def test_sidebar_in_a_real_kernel_offers_the_mcp_tool_and_waits_for_the_click(tmp_path):
    import uuid

    from kimi_jupyter.sidebar.chat import TARGET

    from .test_comm import KernelChannel

    notebook = tmp_path / "project"
    (notebook / ".kimi").mkdir(parents=True)
    (tmp_path / "home").mkdir()
    (notebook / ".kimi" / "mcp.json").write_text(json.dumps({"mcpServers": {
        "time": {"command": sys.executable, "args": ["-m", "mcp_server_time", "--local-timezone", "UTC"]}}}))
    with KimiSimulator(api_key=KEY) as sim:
        env = {"KIMI_BASE_URL": sim.base_url, "MOONSHOT_API_KEY": KEY, "KIMI_PROVIDER": "moonshot",
               "HOME": str(tmp_path / "home")}
        with running_kernel(env, notebook) as (_, client):
            channel = KernelChannel(client)
            assert channel.execute("%load_ext kimi_jupyter")["status"] == "ok"
            comm_id = uuid.uuid4().hex
            channel.send("comm_open", {"comm_id": comm_id, "target_name": TARGET, "data": {"action": "hello"}})
            channel.collect(comm_id, "hello")
            sim.queue(Reply(reasoning="r", tool_calls=[ToolCall("time__get_current_time", {"timezone": "Asia/Tokyo"})]),
                      Reply(reasoning="r", text="Morning in Tokyo."))
            channel.send("comm_msg", {"comm_id": comm_id, "data": {
                "action": "ask", "request_id": "t", "prompt": "Tokyo time?", "options": {"agent": True}}})
            asked = channel.collect(comm_id, "event", timeout=120)
            while asked[-1].get("event", {}).get("type") != "ApprovalRequested":
                asked = channel.collect(comm_id, "event", timeout=60)
            event = asked[-1]["event"]
            assert event["name"] == "time__get_current_time" and "Asia/Tokyo" in event["code"]
            channel.send("comm_msg", {"comm_id": comm_id, "data": {"action": "approve", "id": event["id"], "approved": True}})
            done = channel.collect(comm_id, "done", timeout=120)[-1]
            assert done["response"]["error"] is None
            (step,) = done["response"]["tool_steps"]
            assert step["approved"] is True and "Asia/Tokyo" in step["result"]
            assert "time__get_current_time" in [t["function"]["name"] for t in sim.chat_requests[0].json["tools"]]
            (result,) = [m for m in sim.chat_requests[1].json["messages"] if m["role"] == "tool"]
            assert json.loads(result["content"])["timezone"] == "Asia/Tokyo"
