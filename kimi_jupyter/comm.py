"""The kernel side of the JupyterLab chat sidebar: a comm target named ``kimi_jupyter.chat``.

The sidebar (``labextension/``) opens a comm to the notebook's kernel. The kernel does the
API calls with the same engine, settings and key as ``%%kimi``, and streams the same events
back as JSON, so the chat can see the kernel's variables (``{df}`` in a prompt works as in a
cell) and never holds the key itself.

Protocol (JSON objects; frontend -> kernel carry ``action``, kernel -> frontend ``type``)::

    {"action": "hello"}      (also accepted as the comm_open data)
      -> {"type": "hello", "version", "model", "provider", "base_url", "has_key", "thinking",
          "error"}           (never the key; "error" is a settings problem, else null)
    {"action": "ask", "request_id", "prompt",
     "attachments": [{"kind": "cell", "source", "outputs"},
                     {"kind": "image", "mime", "data": "<base64>"}],
     "options": {"model"?, "thinking"?, "agent"?}}
      -> {"type": "start", "request_id", "meta": {model, thinking, provider, context_window}}
      -> {"type": "event", "request_id", "event": event_to_json(e)}   (any number)
      -> {"type": "done", "request_id", "response": Response.summary(), "meta": {...}}
    {"action": "models"}     -> {"type": "models", "models": [ids], "current", "error"}
                             (the provider's /models list, fetched on a thread; on failure
                             only the current model and an error saying why)
    {"action": "reset"}      -> {"type": "reset"}
    {"action": "approve", "id", "approved": bool}   (answers an ApprovalRequested event)
    {"action": "export", "request_id", "format": "md"|"ipynb"}
      -> {"type": "export", "request_id", "filename", "mime", "content", "error"}
                             (this chat as a file, see kimi_jupyter/export.py)
    anything else            -> {"type": "error", "message", "request_id"?}
    "ask" or "reset" while a turn runs -> {"type": "error", ...} (one turn at a time)

Text and reasoning deltas are coalesced: consecutive deltas of the same kind are joined and
sent at most every ``EVENT_INTERVAL`` seconds (so about ten messages a second whatever the
token rate); any other event first flushes what is pending, and the end of the turn flushes
the rest, so no text is lost and the order is kept.

Turns go through ``execute_turn`` like ``%%kimi`` (budget, pre-flight notices, the response
cache). ``options.agent`` runs the agent loop (run_python / get_variable / list_variables):
before model-proposed code runs, an ``ApprovalRequested`` event goes to the sidebar, and the
kernel waits for the ``approve`` message on this comm. The kernel is busy with the turn, so
that message is read by the agent's shell pump (``agent.ui_poll``), which handles this comm's
messages at once and holds everything else (cells, other widgets) until the turn ends;
``Kimi.auto_approve`` approves without asking, and a kernel whose shell queue cannot be
pumped denies.

Errors never escape: a settings or context problem, an API failure or a bug becomes a
``Failed`` event followed by ``done``. Stop in the sidebar interrupts the kernel: ``run_turn``
turns the KeyboardInterrupt into an "Interrupted" ``Failed`` event (the partial answer is
kept) and re-raises; the handler here swallows it so the kernel stays healthy.

Conversation decision: the sidebar keeps its **own** conversation, one per kernel, shared by
every sidebar comm to that kernel (two tabs on the same kernel see one chat memory) and
cleared by ``reset``; it does not mix with the ``%%kimi`` cells' conversation, whose order
follows cell execution. The usage **ledger is shared**: sidebar turns are recorded under
the source ``"sidebar"``, so ``%kimi usage`` counts both. The HTTP clients are shared too.
``_kimi`` keeps pointing at the last ``%%kimi`` response.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from .conversation import Conversation
from .events import Event, Failed, ReasoningDelta, TextDelta, event_to_json
from .response import Response
from .session import Session, UsageLedger, get_session
from .settings import public_url
from .sidebar_target import TARGET, register  # re-exported: the light half of this module
from .turn import merge_text

__all__ = ["TARGET", "EVENT_INTERVAL", "CommApprover", "CommRenderer", "SidebarChat", "register", "handle_message"]

EVENT_INTERVAL = 0.1
SOURCE = "sidebar"

Send = Callable[[dict[str, Any]], None]


class CommRenderer:
    """A turn renderer that sends events over a comm, deltas coalesced."""

    def __init__(self, send: Send, request_id: str, interval: float = EVENT_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.send = send
        self.request_id = request_id
        self.interval = interval
        self.clock = clock
        self.meta: dict[str, Any] = {}
        self.finished = False
        self.messages = 0
        self._pending: list[tuple[type, list[str]]] = []
        self._last: float | None = None

    def start(self, meta: Any) -> None:
        self.meta = asdict(meta) if meta is not None else {}
        self._send({"type": "start", "request_id": self.request_id, "meta": self.meta})

    def handle(self, event: Event) -> None:
        if isinstance(event, (TextDelta, ReasoningDelta)):
            kind = type(event)
            if self._pending and self._pending[-1][0] is kind:
                self._pending[-1][1].append(event.text)
            else:
                self._pending.append((kind, [event.text]))
            now = self.clock()
            if self._last is None or now - self._last >= self.interval:
                self.flush(now)
            return
        self.flush()
        self._event(event)

    def flush(self, now: float | None = None) -> None:
        """Send what is pending (one message per run of same-kind deltas)."""
        pending, self._pending = self._pending, []
        for kind, pieces in pending:
            self._event(kind("".join(pieces)))
        self._last = self.clock() if now is None else now

    def finish(self, response: Response) -> None:
        self.flush()
        self.finished = True
        self._send({"type": "done", "request_id": self.request_id, "response": response.summary(),
                    "meta": self.meta})

    def fail(self, message: str, kind: str = "KimiError") -> None:
        """End a turn that failed before (or outside) ``run_turn``: a Failed event, then done."""
        response = Response()
        event = Failed(message, kind)
        response.feed(event)
        self.handle(event)
        self.finish(response)

    def _event(self, event: Event) -> None:
        self._send({"type": "event", "request_id": self.request_id, "event": event_to_json(event)})

    def _send(self, message: dict[str, Any]) -> None:
        self.messages += 1
        self.send(message)


class SidebarChat:
    """The sidebar's side of a kernel's `Session`: its own conversation, the shared rest.

    It has what ``run_turn`` uses from a session (``client``, ``conversation``, ``ledger``,
    ``last``), so the sidebar goes through exactly the same turn engine as ``%%kimi``.
    """

    def __init__(self, shared: Session | None = None, namespace: dict[str, Any] | None = None) -> None:
        self.shared = shared or get_session()
        self.namespace = namespace
        self.conversation = Conversation()
        self.last: Response | None = None
        self.approvals: dict[str, bool] = {}
        self.pending_approval: str | None = None  # the one request an "approve" may answer
        self.running = False

    @property
    def ledger(self) -> UsageLedger:
        return self.shared.ledger

    def client(self, settings: Any) -> Any:
        return self.shared.client(settings)

    def reset(self) -> None:
        self.conversation.clear()
        self.approvals.clear()

    def hello(self) -> dict[str, Any]:
        from . import __version__
        from .errors import KimiError

        reply: dict[str, Any] = {"type": "hello", "version": __version__, "has_key": False, "error": None}
        try:
            settings = self.shared.settings()
        except KimiError as error:
            reply["error"] = str(error)
            return reply
        reply.update(model=settings.model, provider=settings.provider, base_url=public_url(settings.base_url),
                     has_key=bool(settings.api_key), thinking=settings.thinking)
        return reply

    def models(self) -> dict[str, Any]:
        """The model picker's list: what the provider serves, the current model first."""
        from .errors import KimiError

        reply: dict[str, Any] = {"type": "models", "models": [], "current": None, "error": None}
        try:
            settings = self.shared.settings()
            reply["current"] = settings.model
            listed = self.client(settings).list_models()
        except KimiError as error:
            reply["error"] = f"Could not list the models: {error}"
            listed = []
        current = reply["current"]
        reply["models"] = ([current] if current else []) + [m for m in listed if m != current]
        return reply

    def ask(self, data: dict[str, Any], send: Send, comm_id: str | None = None) -> None:
        renderer = CommRenderer(send, str(data.get("request_id") or ""))
        self.running = True
        try:
            self._ask(data, renderer, comm_id)
        except KeyboardInterrupt:
            # run_turn already reported "Interrupted" and finished; an interrupt that came
            # before the turn started still needs an ending.
            if not renderer.finished:
                from .turn import INTERRUPTED

                renderer.fail(INTERRUPTED, "Interrupted")
        except Exception as error:  # never a traceback in the kernel for a sidebar message
            if not renderer.finished:
                renderer.fail(_message(error), type(error).__name__)
        finally:
            self.running = False

    def _ask(self, data: dict[str, Any], renderer: CommRenderer, comm_id: str | None) -> None:
        from .turn import TurnRequest, execute_turn

        options = data.get("options") or {}
        if not isinstance(options, dict):
            options = {}
        settings = self.shared.settings(model=options.get("model") or None, thinking=options.get("thinking"))
        settings.require_key()
        prompt = str(data.get("prompt") or "")
        if not prompt.strip() and not data.get("attachments"):
            renderer.fail("The message is empty: type a question first.", "ValueError")
            return
        content = build_message(prompt, data.get("attachments") or [], self._namespace(), settings)
        agent = bool(options.get("agent"))
        request = TurnRequest(content=content, settings=settings, source=SOURCE,
                              mode={"agent": True, "web": False} if agent else {})
        runner = self._agent_runner(settings, comm_id) if agent else None
        execute_turn(self, request, renderer, runner)  # type: ignore[arg-type]  # a Session look-alike

    def _agent_runner(self, settings: Any, comm_id: str | None) -> Any:
        from .agent.loop import run_agent_turn

        shell = self._shell()
        approver = CommApprover(self, comm_id, shell, auto=bool(settings.auto_approve))

        def runner(session: Any, request: Any, renderer: Any) -> Any:
            return run_agent_turn(session, request, renderer, shell=shell, approver=approver)

        return runner

    def _shell(self) -> Any:
        from IPython import get_ipython

        return get_ipython()

    def _namespace(self) -> dict[str, Any]:
        if self.namespace is not None:
            return self.namespace
        shell = self._shell()
        return shell.user_ns if shell is not None else {}


class CommApprover:
    """The agent's approver for sidebar turns: Approve/Deny arrive as ``approve`` messages.

    While the turn blocks the kernel, a shell pump reads this comm's messages (and holds
    every other message until the wait ends). No pump, no comm, or a timeout: denied.
    """

    def __init__(self, sidebar: SidebarChat, comm_id: str | None, shell: Any, *, auto: bool = False,
                 timeout: float | None = None) -> None:
        self.sidebar, self.comm_id, self.shell = sidebar, comm_id, shell
        self.auto, self.timeout = auto, timeout

    def __call__(self, call_id: str, tool: str, code: str) -> Any:
        from .agent.approval import Decision
        from .agent.ui_poll import ShellPump

        if self.auto:
            return Decision(True, "auto")
        # Only an answer to this very request counts: a stale or early "approve" (a click
        # that landed after Stop, or one naming a predictable id) must never run new code.
        self.sidebar.approvals.clear()
        kernel = getattr(self.shell, "kernel", None)
        if kernel is None or not self.comm_id:
            return Decision(False, "no-ui")
        try:
            pump = ShellPump.open(kernel)
        except Exception:
            return Decision(False, "no-ui")
        self.sidebar.pending_approval = call_id
        try:
            pump.watch([self.comm_id])
            if not pump.wait(lambda: call_id in self.sidebar.approvals, self.timeout):
                return Decision(False, "timeout")
            return Decision(self.sidebar.approvals.pop(call_id), "sidebar")
        finally:
            self.sidebar.pending_approval = None
            self.sidebar.approvals.clear()
            pump.close()


def build_message(prompt: str, attachments: list[Any], namespace: dict[str, Any], settings: Any) -> list[dict[str, Any]]:
    """Content parts: the attachments first (as context), then the prompt with ``{name}`` filled."""
    from .context import build_content, image_part

    parts: list[dict[str, Any]] = []
    for attachment in attachments:
        if not isinstance(attachment, dict):
            continue
        if attachment.get("kind") == "cell":
            parts.append({"type": "text", "text": _cell_text(attachment)})
        elif attachment.get("kind") == "image":
            parts.append({"type": "text", "text": "[image attached from the notebook]\n"})
            parts.append(image_part(_image_bytes(attachment), max_size=settings.image_max_size))
    if prompt.strip():
        parts.extend(build_content(prompt, namespace, frame_budget=settings.frame_budget,
                                   image_max_size=settings.image_max_size))
    return merge_text(parts)


def _cell_text(attachment: dict[str, Any]) -> str:
    source = str(attachment.get("source") or "").rstrip()
    outputs = str(attachment.get("outputs") or "").rstrip()
    text = f"Context: a notebook cell\n```python\n{source}\n```\n"
    if outputs:
        text += f"Its output:\n```\n{outputs}\n```\n"
    return text + "\n"


def _image_bytes(attachment: dict[str, Any]) -> bytes:
    import base64
    import binascii

    from .context import ContextError

    mime = str(attachment.get("mime") or "")
    if not mime.startswith("image/"):
        raise ContextError(f"The attachment is {mime or 'of no type'}, not an image.")
    try:
        return base64.b64decode(str(attachment.get("data") or ""), validate=True)
    except (binascii.Error, ValueError):
        raise ContextError("The attached image could not be read (bad base64).") from None


def _message(error: BaseException) -> str:
    from .errors import KimiError

    if isinstance(error, (KimiError, ValueError)):
        return str(error)
    return f"Unexpected error in kimi_jupyter ({type(error).__name__}: {error}). Please report it."


# -- the comm itself ----------------------------------------------------------------------

_CHAT: SidebarChat | None = None


def chat() -> SidebarChat:
    """This kernel's sidebar conversation (created on first use)."""
    global _CHAT
    if _CHAT is None:
        _CHAT = SidebarChat()
    return _CHAT


def handle_message(data: Any, send: Send, sidebar: SidebarChat | None = None, comm_id: str | None = None) -> None:
    """Dispatch one frontend message; replies go through ``send``."""
    sidebar = sidebar or chat()
    if not isinstance(data, dict):
        send({"type": "error", "message": "Expected a JSON object with an 'action'."})
        return
    action = data.get("action")
    if action in ("ask", "reset") and sidebar.running:
        # Only possible while an approval wait reads this comm: one turn at a time.
        send({"type": "error", "request_id": data.get("request_id"),
              "message": "A chat turn is already running in this kernel: answer it or press Stop first."})
    elif action == "hello":
        send(sidebar.hello())
    elif action == "models":
        # A network request: off the shell, so a slow or unreachable provider never holds up
        # the user's cells (the reply goes out from that thread; iopub sends are thread-safe).
        threading.Thread(target=lambda: send(sidebar.models()), name="kimi-models", daemon=True).start()
    elif action == "ask":
        sidebar.ask(data, send, comm_id)
    elif action == "reset":
        sidebar.reset()
        send({"type": "reset"})
    elif action == "export":  # [export hook] the sidebar's Export button (kimi_jupyter/export.py)
        from .export import sidebar_export

        send(sidebar_export(sidebar, data))
    elif action == "approve":
        call_id = str(data.get("id"))
        if call_id == sidebar.pending_approval:  # anything else answers nothing
            sidebar.approvals[call_id] = bool(data.get("approved"))
    else:
        send({"type": "error", "message": f"Unknown action {action!r}.", "request_id": data.get("request_id")})


def on_open(comm: Any, open_msg: dict[str, Any]) -> None:
    def send(message: dict[str, Any]) -> None:
        try:
            comm.send(message)
        except Exception:  # a closed comm or a dead frontend: nothing to tell
            pass

    comm_id = getattr(comm, "comm_id", None)

    @comm.on_msg
    def _received(msg: dict[str, Any]) -> None:
        handle_message(msg.get("content", {}).get("data"), send, comm_id=comm_id)

    data = open_msg.get("content", {}).get("data")
    if isinstance(data, dict) and data.get("action"):
        handle_message(data, send, comm_id=comm_id)
