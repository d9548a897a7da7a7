"""MCP servers as agent tools, against real servers: mcp-server-time and mcp-server-git from
PyPI over stdio, a streamable-HTTP server made with the SDK's MCPServer on 127.0.0.1, and a
stdio server of the tests' own that misbehaves on request (tests/mcp_servers/faulty.py).
Agent turns run in a real IPython shell against the simulator; what the model received is
read from the simulator's recorded requests."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("mcp")

from IPython.core.interactiveshell import InteractiveShell
from IPython.testing.globalipapp import start_ipython

from kimi_jupyter.agent import mcp
from kimi_jupyter.agent.loop import DENIED, AgentStrategy
from kimi_jupyter.display import NullRenderer
from kimi_jupyter.events import ApprovalRequested
from kimi_jupyter.session import get_session
from kimi_jupyter.settings import resolve_settings
from kimi_jupyter.testing import Reply, ToolCall
from kimi_jupyter.turn import TurnRequest, run_turn

FAULTY = str(Path(__file__).resolve().parent / "mcp_servers" / "faulty.py")
PY = sys.executable
TIME = {"command": PY, "args": ["-m", "mcp_server_time", "--local-timezone", "UTC"]}
KEY = "sk-test-simulator"


@dataclass(frozen=True)
class Decision:
    approved: bool
    how: str


class Recorder:
    def __init__(self, approve: bool = True):
        self.approve = approve
        self.asked: list[tuple[str, str]] = []

    def __call__(self, call_id: str, tool: str, code: str) -> Decision:
        self.asked.append((tool, code))
        return Decision(self.approve, "test")


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    """No developer's ~/.kimi/mcp.json."""
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture(scope="module", autouse=True)
def _servers():
    """Servers with the same configuration are shared by the tests (as by a kernel's turns:
    each start costs seconds); the fault tests use names of their own. All stop at the end."""
    yield
    mcp.stop_all()


@pytest.fixture
def shell(kimi_sim_env):
    start_ipython()
    yield InteractiveShell.instance()


def agent_turn(shell, prompt, approver, **settings):
    session = get_session()
    request = TurnRequest(content=prompt, settings=session.settings(**settings), source="magic",
                          strategy=AgentStrategy(shell, approver))
    return run_turn(session, request, NullRenderer())


def tool_messages(sim, index=-1):
    return [m for m in sim.chat_requests[index].json["messages"] if m["role"] == "tool"]


def offered(sim, index=0):
    return [t["function"]["name"] for t in sim.chat_requests[index].json.get("tools", [])]


# -- configuration ------------------------------------------------------------------------------

def test_config_layers_later_wins_and_problems_are_one_line_each(tmp_path):
    home = tmp_path / "h"
    (home / ".kimi").mkdir(parents=True)
    (home / ".kimi" / "mcp.json").write_text(json.dumps({"mcpServers": {
        "time": {"command": "home-time"}, "web": {"url": "https://example.org/mcp", "headers": {"X": "1"}}}}))
    here = tmp_path / "nb"
    (here / ".kimi").mkdir(parents=True)
    (here / ".kimi" / "mcp.json").write_text(json.dumps({"mcpServers": {
        "time": {"command": "local-time", "args": ["-v"]}, "bad": {"args": ["x"]},
        "odd": {"command": "x", "trust": "always"}}}))
    settings = resolve_settings(config={"mcp_config": {"mcpServers": {"web": {"disabled": True},
                                                                      "extra": {"url": "http://127.0.0.1:1/mcp"}}}},
                                environ={})
    specs, problems = mcp.load_specs(settings, cwd=here, home=home)
    assert set(specs) == {"time", "extra"}
    assert specs["time"].command == "local-time" and specs["time"].args == ("-v",)
    assert specs["time"].source == ".kimi/mcp.json" and specs["extra"].source == "Kimi.mcp_config"
    assert len(problems) == 2 and all("\n" not in p for p in problems)
    assert any(p.startswith("bad (.kimi/mcp.json)") and '"command"' in p for p in problems)
    assert any("trust" in p for p in problems)

    (here / ".kimi" / "mcp.json").write_text("{not json")
    specs, problems = mcp.load_specs(resolve_settings(environ={}), cwd=here, home=home)
    assert set(specs) == {"time", "web"} and "not valid JSON" in problems[0]


def test_mcp_config_setting_is_checked_and_never_shows_headers():
    from kimi_jupyter.errors import ConfigError

    settings = resolve_settings(config={"mcp_config": {"s": {"url": "http://x/mcp", "headers": {"A": "secret-token"}}}},
                                environ={})
    assert "secret-token" not in repr(settings.mcp_config)
    assert all("secret-token" not in value for _, value, _ in settings.describe())
    hash(settings)  # settings key the client pool
    with pytest.raises(ConfigError, match="mcp_config"):
        resolve_settings(config={"mcp_config": "time"}, environ={})


def test_no_servers_configured_offers_only_the_kernel_tools(shell, kimi_sim_env):
    kimi_sim_env.queue(Reply(text="nothing to call"))
    agent_turn(shell, "hi", Recorder())
    assert offered(kimi_sim_env) == ["run_python", "get_variable", "list_variables"]


# -- real servers from PyPI ---------------------------------------------------------------------

def test_time_server_tool_goes_through_the_gate_and_its_answer_reaches_the_model(shell, kimi_sim_env):
    kimi_sim_env.queue(
        Reply(reasoning="Ask the clock.", tool_calls=[ToolCall("time__get_current_time", {"timezone": "Europe/Paris"})]),
        Reply(reasoning="r", text="It is evening in Paris."))
    approver = Recorder(approve=True)
    response = agent_turn(shell, "What time is it in Paris?", approver, mcp_config={"time": TIME})
    assert response.error is None, response.error
    names = offered(kimi_sim_env)
    assert {"time__get_current_time", "time__convert_time"} <= set(names) and "run_python" in names
    tool = next(t for t in kimi_sim_env.chat_requests[0].json["tools"] if t["function"]["name"] == "time__get_current_time")
    assert tool["function"]["parameters"]["required"] == ["timezone"]
    assert approver.asked and approver.asked[0][0] == "time__get_current_time"
    assert "Europe/Paris" in approver.asked[0][1]
    (result,) = tool_messages(kimi_sim_env)
    answer = json.loads(result["content"])
    assert answer["timezone"] == "Europe/Paris" and answer["datetime"][:4].isdigit()
    (step,) = response.tool_steps
    assert step.name == "time__get_current_time" and step.approved is True and "Europe/Paris" in step.result
    assert response.text.endswith("It is evening in Paris.")


def test_a_denied_call_is_not_made_and_the_model_hears_so(shell, kimi_sim_env):
    kimi_sim_env.queue(
        Reply(reasoning="r", tool_calls=[ToolCall("time__get_current_time", {"timezone": "UTC"})]),
        Reply(reasoning="r", text="ok"))
    response = agent_turn(shell, "time?", Recorder(approve=False), mcp_config={"time": TIME})
    (result,) = tool_messages(kimi_sim_env)
    assert result["content"] == DENIED
    assert response.tool_steps[0].approved is False


def test_read_only_trust_skips_the_click_only_for_tools_annotated_read_only(shell, kimi_sim_env):
    kimi_sim_env.queue(
        Reply(reasoning="r", tool_calls=[ToolCall("f__echo", {"text": "hello"}),
                                         ToolCall("f__write_note", {"text": "note"})]),
        Reply(reasoning="r", text="done"))
    approver = Recorder(approve=True)
    agent_turn(shell, "go", approver, mcp_config={"f": {"command": PY, "args": [FAULTY], "trust": "read-only"}})
    assert [tool for tool, _ in approver.asked] == ["f__write_note"]
    contents = [m["content"] for m in tool_messages(kimi_sim_env)]
    assert contents == ["echo: hello", "wrote 4 characters"]


def test_git_server_reads_a_real_repository(shell, kimi_sim_env, tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=Test", "-c", "user.email=test@example.org"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "a.txt").write_text("one\n")
    subprocess.run([*git, "add", "a.txt"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "first commit of the test"], check=True)
    (repo / "a.txt").write_text("two\n")
    kimi_sim_env.queue(
        Reply(reasoning="r", tool_calls=[ToolCall("git__git_log", {"repo_path": str(repo), "max_count": 5}),
                                         ToolCall("git__git_diff_unstaged", {"repo_path": str(repo)})]),
        Reply(reasoning="r", text="One commit, one change."))
    approver = Recorder()
    config = {"git": {"command": PY, "args": ["-m", "mcp_server_git", "--repository", str(repo)],
                      "trust": "read-only"}}
    response = agent_turn(shell, "what changed?", approver, mcp_config=config)
    assert response.error is None, response.error
    log, diff = (m["content"] for m in tool_messages(kimi_sim_env))
    assert "first commit of the test" in log
    assert "-one" in diff and "+two" in diff
    assert approver.asked == []  # both are annotated read-only by the server, which is trusted so


# -- streamable HTTP: a server written with the SDK, on 127.0.0.1 --------------------------------

@pytest.fixture(scope="module")
def http_server():
    import uvicorn
    from mcp.server.mcpserver import MCPServer
    from mcp.types import ToolAnnotations

    server = MCPServer("adder")

    @server.tool(annotations=ToolAnnotations(read_only_hint=True), description="Add two numbers.")
    def add(a: int, b: int) -> str:
        return str(a + b)

    app = server.streamable_http_app()

    async def guarded(scope, receive, send):  # the headers of the config must arrive
        if scope["type"] == "http" and dict(scope["headers"]).get(b"authorization") != b"Bearer t0ken":
            await send({"type": "http.response.start", "status": 401, "headers": []})
            await send({"type": "http.response.body", "body": b"no"})
            return
        await app(scope, receive, send)

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    runner = uvicorn.Server(uvicorn.Config(guarded, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=runner.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(200):
        if runner.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/mcp"
    runner.should_exit = True
    thread.join(10)
    sock.close()


def test_streamable_http_server_with_headers(shell, kimi_sim_env, http_server):
    kimi_sim_env.queue(Reply(reasoning="r", tool_calls=[ToolCall("adder__add", {"a": 2, "b": 3})]),
                       Reply(reasoning="r", text="Five."))
    config = {"adder": {"url": http_server, "headers": {"Authorization": "Bearer t0ken"}}}
    approver = Recorder()
    response = agent_turn(shell, "2+3?", approver, mcp_config=config)
    assert response.error is None, response.error
    assert [m["content"] for m in tool_messages(kimi_sim_env)] == ["5"]
    assert [tool for tool, _ in approver.asked] == ["adder__add"]  # trust "ask" (the default) asks

    report = mcp.report(resolve_settings(config={"mcp_config": {"adder": {"url": http_server}}}, environ={}))
    assert report.startswith("adder: failed") and "\n" not in report  # no Authorization header: refused
    assert "t0ken" not in report


# -- faults ----------------------------------------------------------------------------------------

def test_a_server_that_fails_to_start_is_one_line_with_its_stderr(capsys):
    config = {"broken": {"command": PY, "args": ["-c", "import sys; sys.stderr.write('first\\nbad config: no token\\n'); sys.exit(3)"]}}
    report = mcp.report(resolve_settings(config={"mcp_config": config}, environ={}))
    assert report.startswith("broken: failed") and "\n" not in report
    assert "bad config: no token" in report
    missing = mcp.report(resolve_settings(config={"mcp_config": {"gone": {"command": "no-such-mcp-server-here"}}},
                                          environ={}))
    assert missing.startswith("gone: failed") and "\n" not in missing


def test_crash_mid_call_is_a_tool_error_and_the_turn_goes_on(shell, kimi_sim_env):
    kimi_sim_env.queue(Reply(reasoning="r", tool_calls=[ToolCall("crashy__crash", {})]),
                       Reply(reasoning="r", text="The tool crashed."))
    response = agent_turn(shell, "crash", Recorder(), mcp_config={"crashy": {"command": PY, "args": [FAULTY]}})
    assert response.error is None and response.text.endswith("The tool crashed.")
    (result,) = tool_messages(kimi_sim_env)
    assert result["content"].startswith("The MCP tool crashy__crash failed")
    assert response.tool_steps[0].error == "mcp error"
    server = mcp.hub().servers["crashy"]
    assert server.state == "failed" and "about to crash on purpose" in (server.problem or "")
    # The next turn offers none of its tools and says why, in one line.
    kimi_sim_env.queue(Reply(text="ok"))
    again = agent_turn(shell, "again", Recorder(), mcp_config={"crashy": {"command": PY, "args": [FAULTY]}})
    assert not any(n.startswith("crashy__") for n in offered(kimi_sim_env, -1))
    assert any("crashy: stopped" in n and "%kimi mcp restart" in n for n in again.notices)


def test_a_hanging_call_times_out_and_the_server_is_stopped(shell, kimi_sim_env):
    kimi_sim_env.queue(Reply(reasoning="r", tool_calls=[ToolCall("slow__hang", {})]),
                       Reply(reasoning="r", text="It hung."))
    response = agent_turn(shell, "hang", Recorder(), mcp_timeout=2.0,
                          mcp_config={"slow": {"command": PY, "args": [FAULTY]}})
    (result,) = tool_messages(kimi_sim_env)
    assert "no answer within 2 s" in result["content"]
    assert response.text.endswith("It hung.")
    assert mcp.hub().servers["slow"].state == "failed"


def test_a_10_mb_result_is_cut_and_the_key_is_masked(shell, kimi_sim_env):
    kimi_sim_env.queue(Reply(reasoning="r", tool_calls=[ToolCall("f__big", {}), ToolCall("f__echo", {"text": KEY})]),
                       Reply(reasoning="r", text="big"))
    response = agent_turn(shell, "big", Recorder(), mcp_config={"f": {"command": PY, "args": [FAULTY]}})
    big, echo = (m["content"] for m in tool_messages(kimi_sim_env))
    assert len(big) < 9000 and big.startswith("0123456789") and "more characters cut" in big
    assert KEY not in echo and echo.startswith("echo: ")
    assert KEY not in json.dumps([s.result for s in response.tool_steps])


def test_500_tools_are_offered_up_to_the_cap_and_the_rest_named(shell, kimi_sim_env):
    kimi_sim_env.queue(Reply(reasoning="r", tool_calls=[ToolCall("many__t000", {"x": 4})]),
                       Reply(reasoning="r", text="ok"))
    config = {"many": {"command": PY, "args": [FAULTY, "--many", "500"]}}
    response = agent_turn(shell, "many", Recorder(), mcp_config=config)
    names = offered(kimi_sim_env)
    assert len([n for n in names if n.startswith("many__")]) == mcp.MAX_TOOLS
    assert len(json.dumps(kimi_sim_env.chat_requests[0].json["tools"])) < 200_000
    assert any("many lists 507 tools; the first 100 are offered" in n for n in response.notices)
    assert [m["content"] for m in tool_messages(kimi_sim_env)] == ["tool 0: 4"]
    report = mcp.report(get_session().settings(mcp_config=config))
    assert "507 tools" in report and "more)" in report


def test_an_image_result_goes_back_as_an_image_part(shell, kimi_sim_env):
    kimi_sim_env.queue(Reply(reasoning="r", tool_calls=[ToolCall("f__picture", {})]),
                       Reply(reasoning="r", text="green"))
    agent_turn(shell, "picture", Recorder(), mcp_config={"f": {"command": PY, "args": [FAULTY]}})
    messages = kimi_sim_env.chat_requests[-1].json["messages"]
    (result,) = [m for m in messages if m["role"] == "tool"]
    assert "a green square" in result["content"] and "[image attached below]" in result["content"]
    images = [p for m in messages if m["role"] == "user" and isinstance(m["content"], list)
              for p in m["content"] if p.get("type") == "image_url"]
    assert len(images) == 1 and images[0]["image_url"]["url"].startswith("data:image/")


def test_a_stdio_server_does_not_inherit_the_api_key(shell, kimi_sim_env):
    kimi_sim_env.queue(Reply(reasoning="r", tool_calls=[ToolCall("f__env_key", {})]), Reply(reasoning="r", text="ok"))
    agent_turn(shell, "env", Recorder(), mcp_config={"f": {"command": PY, "args": [FAULTY]}})
    assert [m["content"] for m in tool_messages(kimi_sim_env)] == ["key variables: none"]


def test_servers_stop_and_their_processes_end(tmp_path):
    pid_file = tmp_path / "pid"
    settings = resolve_settings(config={"mcp_config": {"f": {"command": PY, "args": [FAULTY, "--pid-file", str(pid_file)]}}},
                                environ={})
    assert mcp.report(settings).startswith("f: ready")
    pid = int(pid_file.read_text())
    mcp.stop_all()
    assert mcp._HUB is None
    for _ in range(100):  # the SDK closes stdin, then terminates (bounded)
        if not Path(f"/proc/{pid}").exists() or "zombie" in _state(pid):
            break
        time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists() or "zombie" in _state(pid)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return "zombie"


# -- the sidebar drives the same Turn ------------------------------------------------------------

def test_sidebar_agent_ask_offers_and_calls_the_mcp_tool(shell, kimi_sim_env, monkeypatch):
    from kimi_jupyter.sidebar.chat import SidebarChat, handle_message

    session = get_session()
    session.config["mcp_config"] = {"time": TIME}
    session.config["auto_approve"] = True  # --yes: the gate still records the request
    kimi_sim_env.queue(
        Reply(reasoning="r", tool_calls=[ToolCall("time__get_current_time", {"timezone": "Asia/Tokyo"})]),
        Reply(reasoning="r", text="Morning in Tokyo."))
    sent: list[dict] = []

    def send(message):
        json.dumps(message)
        sent.append(message)

    handle_message({"action": "ask", "request_id": "m1", "prompt": "Tokyo time?", "options": {"agent": True}},
                   send, SidebarChat(session, memory=session.sidebar))
    events = [m["event"] for m in sent if m["type"] == "event"]
    assert "time__get_current_time" in offered(kimi_sim_env)
    asked = [e for e in events if e["type"] == "ApprovalRequested"]
    assert asked and asked[0]["name"] == "time__get_current_time"
    (done,) = [m for m in sent if m["type"] == "done"]
    (step,) = done["response"]["tool_steps"]
    assert step["approved"] is True and "Asia/Tokyo" in step["result"]
    assert "Asia/Tokyo" in tool_messages(kimi_sim_env)[0]["content"]
    assert done["response"]["text"].endswith("Morning in Tokyo.")


def test_approval_text_names_server_tool_and_arguments(shell, kimi_sim_env):
    kimi_sim_env.queue(Reply(reasoning="r", tool_calls=[ToolCall("f__write_note", {"text": "hi"})]),
                       Reply(reasoning="r", text="ok"))
    response = agent_turn(shell, "note", Recorder(), mcp_config={"f": {"command": PY, "args": [FAULTY]}})
    (asked,) = [e for e in response.events if isinstance(e, ApprovalRequested)]
    assert asked.code.startswith("f: write_note\n") and '"text": "hi"' in asked.code


def test_ask_with_agent_offers_and_calls_the_mcp_tool(shell, kimi_sim_env):
    import kimi_jupyter

    kimi_sim_env.queue(Reply(reasoning="r", tool_calls=[ToolCall("f__write_note", {"text": "abc"})]),
                       Reply(reasoning="r", text="Written."))
    response = kimi_jupyter.ask("write it", agent=True, yes=True, display="none",
                                mcp_config={"f": {"command": PY, "args": [FAULTY]}})
    assert response.error is None and response.text.endswith("Written.")
    assert "f__write_note" in offered(kimi_sim_env)
    assert [m["content"] for m in tool_messages(kimi_sim_env)] == ["wrote 3 characters"]
    assert response.tool_steps[0].approved is True  # --yes: approved at the same gate, "auto"


def test_the_report_never_shows_the_key(kimi_sim_env):
    config = {"k": {"command": PY, "args": ["-c", f"import sys; sys.stderr.write('bad key {KEY}\\n'); sys.exit(1)"]}}
    report = mcp.report(get_session().settings(mcp_config=config))
    assert report.startswith("k: failed") and KEY not in report


def test_kimi_mcp_magic_lists_stops_and_says_how_to_use_it(shell, kimi_sim_env, capsys):
    shell.run_line_magic("load_ext", "kimi_jupyter")
    shell.run_line_magic("kimi", "mcp")
    assert "No MCP servers configured" in capsys.readouterr().out
    get_session().config["mcp_config"] = {"time": TIME}
    shell.run_line_magic("kimi", "mcp")
    assert capsys.readouterr().out.startswith("time: ready · stdio")
    shell.run_line_magic("kimi", "mcp stop")
    assert "Stopped every MCP server" in capsys.readouterr().out and mcp._HUB is None
    shell.run_line_magic("kimi", "mcp bogus")
    assert "Use: %kimi mcp" in capsys.readouterr().err
