"""The sidebar's kernel side: the comm protocol in-process against the simulator, and the
real comm target, interrupt and recovery in a real ipykernel."""

from __future__ import annotations

import base64
import io
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from kimi_jupyter.events import Done, ReasoningDelta, TextDelta, Usage
from kimi_jupyter.response import Response
from kimi_jupyter.session import get_session
from kimi_jupyter.sidebar.chat import TARGET, CommRenderer, SidebarChat, handle_message
from kimi_jupyter.testing import Reply, ToolCall

REPO = Path(__file__).resolve().parents[1]


class Outbox:
    """A fake comm's ``send``: keeps every message."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def __call__(self, message: dict[str, Any]) -> None:
        json.dumps(message)  # everything must be JSON-serialisable, as on a real comm
        self.messages.append(message)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == kind]

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        return [m["event"] for m in self.of("event") if name is None or m["event"]["type"] == name]

    def text(self, name: str = "TextDelta") -> str:
        return "".join(e["text"] for e in self.events(name))


def ask(sidebar: SidebarChat, prompt: str, **extra: Any) -> Outbox:
    out = Outbox()
    handle_message({"action": "ask", "request_id": "r1", "prompt": prompt, **extra}, out, sidebar)
    return out


def png_bytes() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_hello_reports_settings_but_never_the_key(kimi_sim_env):
    out = Outbox()
    handle_message({"action": "hello"}, out, SidebarChat(namespace={}))
    (hello,) = out.messages
    assert hello["type"] == "hello"
    assert hello["has_key"] is True
    assert hello["model"] == "kimi-k2.5" and hello["provider"] == "moonshot"
    assert hello["base_url"] == kimi_sim_env.base_url
    assert "sk-test-simulator" not in json.dumps(hello)


def test_hello_without_key_says_so():
    out = Outbox()
    handle_message({"action": "hello"}, out, SidebarChat(namespace={}))
    assert out.messages[0]["has_key"] is False


def models_reply(out: Outbox) -> dict[str, Any]:
    """The models reply, which comes from a thread: wait for it (bounded)."""
    for _ in range(200):
        if out.messages:
            (reply,) = out.messages
            return reply
        time.sleep(0.02)
    raise AssertionError("no models reply within 4 s")


def test_models_lists_the_providers_models_current_first(kimi_sim_env):
    out = Outbox()
    handle_message({"action": "models"}, out, SidebarChat(namespace={}))
    reply = models_reply(out)
    assert reply["type"] == "models" and reply["error"] is None and reply["current"] == "kimi-k2.5"
    assert reply["models"][0] == "kimi-k2.5" and "kimi-k2-thinking" in reply["models"]
    assert len(reply["models"]) == len(set(reply["models"]))
    assert kimi_sim_env.requests[-1].path.endswith("/models")


def test_models_without_key_keeps_the_current_model_and_says_why():
    out = Outbox()
    handle_message({"action": "models"}, out, SidebarChat(namespace={}))
    reply = models_reply(out)
    assert reply["models"] == [reply["current"]] and reply["current"]
    assert reply["error"].startswith("Could not list the models:") and "MOONSHOT_API_KEY" in reply["error"]


def test_a_model_picked_in_the_sidebar_is_used_for_that_message(kimi_sim_env):
    kimi_sim_env.queue(Reply(text="From the turbo model."))
    out = ask(SidebarChat(namespace={}), "hi", options={"model": "kimi-k2-turbo-preview", "thinking": False})
    assert out.of("start")[0]["meta"]["model"] == "kimi-k2-turbo-preview"
    assert out.text() == "From the turbo model."
    assert kimi_sim_env.chat_requests[-1].json["model"] == "kimi-k2-turbo-preview"


def test_ask_streams_events_then_done_and_counts_as_sidebar_usage(kimi_sim_env):
    kimi_sim_env.queue(Reply(text="The answer is **42**.\n\n```python\nprint(42)\n```", reasoning="Let me think."))
    sidebar = SidebarChat(namespace={})
    out = ask(sidebar, "What is the answer?")
    kinds = [m["type"] for m in out.messages]
    assert kinds[0] == "start" and kinds[-1] == "done"
    assert out.messages[0]["meta"]["model"] == "kimi-k2.5"
    assert out.text("ReasoningDelta") == "Let me think."
    assert out.text() == "The answer is **42**.\n\n```python\nprint(42)\n```"
    assert out.events("Usage") and out.events("Done")
    done = out.messages[-1]
    assert done["request_id"] == "r1"
    assert done["response"]["text"].startswith("The answer is")
    assert done["response"]["error"] is None
    # Own conversation, shared ledger.
    session = get_session()
    assert len(sidebar.conversation) == 2
    assert len(session.conversation) == 0
    assert session.ledger.rows["sidebar"].requests == 1


def test_sidebar_conversation_continues_and_reset_clears_it(kimi_sim_env):
    kimi_sim_env.queue(Reply(text="first"), Reply(text="second"))
    sidebar = SidebarChat(namespace={})
    ask(sidebar, "one")
    ask(sidebar, "two")
    sent = kimi_sim_env.chat_requests[-1].messages
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    out = Outbox()
    handle_message({"action": "reset"}, out, sidebar)
    assert out.messages == [{"type": "reset"}]
    assert len(sidebar.conversation) == 0


def test_prompt_interpolates_kernel_variables(kimi_sim_env):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"price": [1.5, 2.5], "city": ["Paris", "Lyon"]})
    kimi_sim_env.queue(Reply(text="price and city"))
    ask(SidebarChat(namespace={"df": frame}), "What columns does {df} have?")
    sent = json.dumps(kimi_sim_env.chat_requests[-1].messages[-1]["content"])
    assert "price" in sent and "city" in sent and "{df}" not in sent


def test_cell_and_image_attachments_become_content_parts(kimi_sim_env):
    kimi_sim_env.queue(Reply(text="seen"))
    attachments = [
        {"kind": "cell", "source": "x = 41 + 1", "outputs": "42\n"},
        {"kind": "image", "mime": "image/png", "data": base64.b64encode(png_bytes()).decode()},
    ]
    out = ask(SidebarChat(namespace={}), "Explain", attachments=attachments)
    assert out.messages[-1]["response"]["error"] is None
    parts = kimi_sim_env.chat_requests[-1].messages[-1]["content"]
    texts = " ".join(p.get("text", "") for p in parts)
    assert "x = 41 + 1" in texts and "42" in texts and "Explain" in texts
    images = [p for p in parts if p["type"] == "image_url"]
    assert len(images) == 1 and images[0]["image_url"]["url"].startswith("data:image/")


def test_user_mistakes_become_failed_events_not_tracebacks(kimi_sim_env):
    out = ask(SidebarChat(namespace={}), "What is {missing_name}?")
    failed = out.events("Failed")
    assert failed and "missing_name" in failed[0]["error"]
    assert out.messages[-1]["type"] == "done" and out.messages[-1]["response"]["error"]
    bad = ask(SidebarChat(namespace={}), "look", attachments=[{"kind": "image", "mime": "image/png", "data": "%%%"}])
    assert "could not be read" in bad.events("Failed")[0]["error"]


def test_missing_key_fails_with_instructions():
    out = ask(SidebarChat(namespace={}), "hi")
    (failed,) = out.events("Failed")
    assert "MOONSHOT_API_KEY" in failed["error"]
    assert out.messages[-1]["type"] == "done"


def test_unknown_action_is_an_error_message():
    out = Outbox()
    handle_message({"action": "dance"}, out, SidebarChat(namespace={}))
    assert out.messages[0]["type"] == "error"
    handle_message(["not", "an", "object"], out, SidebarChat(namespace={}))
    assert out.messages[1]["type"] == "error"


def test_busy_sidebar_refuses_a_second_turn():
    sidebar = SidebarChat(namespace={})
    sidebar.running = True
    out = Outbox()
    handle_message({"action": "ask", "request_id": "x", "prompt": "hi"}, out, sidebar)
    assert out.messages[0]["type"] == "error" and out.messages[0]["request_id"] == "x"


def test_approve_answers_only_the_pending_request():
    sidebar = SidebarChat(namespace={})
    handle_message({"action": "approve", "id": "call_1", "approved": True}, Outbox(), sidebar)
    assert sidebar.approvals == {}  # nothing was waiting: ignored
    sidebar.pending_approval = "call_1"
    handle_message({"action": "approve", "id": "call_2", "approved": True}, Outbox(), sidebar)
    handle_message({"action": "approve", "id": "call_1", "approved": False}, Outbox(), sidebar)
    assert sidebar.approvals == {"call_1": (False, "sidebar")}


def test_interrupt_during_turn_keeps_partial_answer_and_ends_cleanly(kimi_sim_env):
    kimi_sim_env.queue(Reply(text="partial answer that goes on and on", chunk_chars=4, chunk_delay=0.05))
    out = Outbox()
    interrupted = []

    def send(message: dict[str, Any]) -> None:
        out(message)
        is_text = message["type"] == "event" and message["event"]["type"] == "TextDelta"
        if is_text and not interrupted:
            interrupted.append(True)
            raise KeyboardInterrupt  # what Stop (kernel.interrupt()) does mid-stream

    handle_message({"action": "ask", "request_id": "r9", "prompt": "go"}, send, SidebarChat(namespace={}))
    done = out.messages[-1]
    assert done["type"] == "done"
    assert done["response"]["error"].startswith("Interrupted")
    assert done["response"]["text"].startswith("part")
    assert out.events("Failed")[0]["kind"] == "Interrupted"


def test_renderer_coalesces_deltas_to_about_ten_messages_a_second():
    now = [0.0]
    out = Outbox()
    renderer = CommRenderer(out, "r", clock=lambda: now[0])
    words = [f"w{i} " for i in range(5000)]
    for i, word in enumerate(words):
        now[0] = i * 0.0004  # 5,000 deltas in 2 s
        renderer.handle(ReasoningDelta("r") if i < 50 else TextDelta(word))
    renderer.handle(Usage(prompt=1, completion=2, total=3))
    renderer.handle(Done("stop"))
    renderer.finish(Response().feed_all([TextDelta("".join(words[50:]))]))
    assert out.text() == "".join(words[50:])
    assert out.text("ReasoningDelta") == "r" * 50
    assert len(out.of("event")) <= 2 * 10 + 5
    assert out.messages[-1]["type"] == "done"


# -- a real kernel --------------------------------------------------------------------


class KernelChannel:
    """Speak the comm protocol to a real kernel through jupyter_client."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def execute(self, code: str, timeout: float = 30) -> dict[str, Any]:
        msg_id = self.client.execute(code, silent=True, store_history=False, stop_on_error=False)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = self.client.get_shell_msg(timeout=timeout)
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply["content"]
        raise TimeoutError(code)

    def send(self, msg_type: str, content: dict[str, Any]) -> None:
        self.client.shell_channel.send(self.client.session.msg(msg_type, content))

    def collect(self, comm_id: str, until: str, timeout: float = 30) -> list[dict[str, Any]]:
        """iopub comm messages for ``comm_id`` up to one whose data type (or msg type) is ``until``."""
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                msg = self.client.get_iopub_msg(timeout=1)
            except Exception:
                continue
            if msg["msg_type"] not in ("comm_msg", "comm_close") or msg["content"].get("comm_id") != comm_id:
                continue
            data = msg["content"].get("data") or {}
            got.append({"msg_type": msg["msg_type"], **data})
            if msg["msg_type"] == until or data.get("type") == until:
                return got
        raise TimeoutError(f"no {until!r} on comm {comm_id}; got {got!r}")


@pytest.fixture
def kernel(kimi_sim_env, tmp_path):
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name="python3")
    env = {
        "PATH": __import__("os").environ.get("PATH", ""),
        "PYTHONPATH": str(REPO),
        "KIMI_BASE_URL": kimi_sim_env.base_url,
        "MOONSHOT_API_KEY": "sk-test-simulator",
        "KIMI_PROVIDER": "moonshot",
        "IPYTHONDIR": str(tmp_path / "ipython"),
    }
    km.kernel_cmd = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    km.start_kernel(env=env, cwd=str(tmp_path))
    client = km.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        yield km, KernelChannel(client)
    finally:
        client.stop_channels()
        km.shutdown_kernel(now=True)


@pytest.mark.timeout(120)
def test_real_kernel_comm_target_streaming_interrupt_and_recovery(kernel, kimi_sim_env):
    km, channel = kernel
    # Before %load_ext the target is missing: the kernel closes the comm (the sidebar's cue).
    missing = uuid.uuid4().hex
    channel.send("comm_open", {"comm_id": missing, "target_name": TARGET, "data": {"action": "hello"}})
    assert channel.collect(missing, "comm_close")[-1]["msg_type"] == "comm_close"

    assert channel.execute("%load_ext kimi_jupyter")["status"] == "ok"
    comm_id = uuid.uuid4().hex
    channel.send("comm_open", {"comm_id": comm_id, "target_name": TARGET, "data": {"action": "hello"}})
    hello = channel.collect(comm_id, "hello")[-1]
    assert hello["has_key"] is True and "sk-test" not in json.dumps(hello)

    # A full turn.
    kimi_sim_env.queue(Reply(text="Hello from the kernel", reasoning="thinking"))
    channel.send("comm_msg", {"comm_id": comm_id, "data": {"action": "ask", "request_id": "a", "prompt": "hi"}})
    done = channel.collect(comm_id, "done")[-1]
    assert done["response"]["text"] == "Hello from the kernel"

    # Stop mid-stream: the kernel interrupt becomes an Interrupted event, partial text kept.
    kimi_sim_env.queue(Reply(text="x" * 400, chunk_chars=2, chunk_delay=0.02))  # ~4 s
    channel.send("comm_msg", {"comm_id": comm_id, "data": {"action": "ask", "request_id": "b", "prompt": "long"}})
    channel.collect(comm_id, "event")
    time.sleep(0.3)
    km.interrupt_kernel()
    done = channel.collect(comm_id, "done")[-1]
    assert done["request_id"] == "b"
    assert done["response"]["error"].startswith("Interrupted")
    assert 0 < len(done["response"]["text"]) < 400

    # Agent mode: the kernel waits for Approve while the turn blocks it (read by the pump).
    kimi_sim_env.queue(Reply(reasoning="Run it.", tool_calls=[ToolCall("run_python", {"code": "print(6 * 7)"})]),
                       Reply(text="It printed 42."))
    channel.send("comm_msg", {"comm_id": comm_id, "data": {
        "action": "ask", "request_id": "c", "prompt": "run it", "options": {"agent": True}}})
    asked = channel.collect(comm_id, "event")
    while asked[-1].get("event", {}).get("type") != "ApprovalRequested":
        asked = channel.collect(comm_id, "event")
    call_id = asked[-1]["event"]["id"]
    assert "print(6 * 7)" in asked[-1]["event"]["code"]
    channel.send("comm_msg", {"comm_id": comm_id, "data": {"action": "approve", "id": call_id, "approved": True}})
    done = channel.collect(comm_id, "done")[-1]
    assert done["request_id"] == "c" and done["response"]["error"] is None
    (step,) = done["response"]["tool_steps"]
    assert step["approved"] is True and step["state"] == "done" and "42" in step["result"]
    assert done["response"]["text"].endswith("It printed 42.")

    # The kernel is healthy and %kimi usage counts the sidebar.
    reply = channel.execute("from kimi_jupyter import get_session as g; "
                            "assert g().ledger.rows['sidebar'].requests >= 4")
    assert reply["status"] == "ok", reply


def test_the_sidebar_closing_while_an_approval_waits_is_a_deny():
    sidebar = SidebarChat(namespace={})
    sidebar.closed()
    assert sidebar.approvals == {}  # nothing was waiting
    sidebar.pending_approval = "call_7"
    sidebar.closed()
    assert sidebar.approvals == {"call_7": (False, "closed")}
