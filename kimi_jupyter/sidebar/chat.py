"""The sidebar's chat in the kernel: its state, and the dispatch of frontend messages.

Messages (typed in `kimi_jupyter.sidebar.protocol`, which the TypeScript side mirrors;
frontend -> kernel carry ``action``, kernel -> frontend ``type``): ``hello`` (settings summary, never the key), ``ask`` (a turn: ``start``, then
``event`` messages, then ``done`` with the response summary), ``models`` (the provider's
list, fetched on a thread), ``reset``, ``approve`` (answers an ``ApprovalRequested``),
``export`` (this chat as a Markdown or .ipynb file, ``kimi_jupyter/export.py``), and
``error`` for anything else. ``ask`` or ``reset`` while a turn runs is an error (one turn at
a time).

Turns go through the one `Turn` like ``%%kimi`` (budget, pre-flight notices, the response
cache); ``options.agent`` runs the agent strategy, whose approvals come from the sidebar
(`approver`). Errors never escape: a settings or context problem, an API failure or a bug
becomes a ``Failed`` event followed by ``done``. Stop interrupts the kernel: the Turn turns
the KeyboardInterrupt into an "Interrupted" ``Failed`` event (the partial answer is kept)
and re-raises; the handler here swallows it so the kernel stays healthy.

Conversation decision: the sidebar keeps its **own** conversation, one per kernel, shared by
every sidebar comm to that kernel (two tabs on the same kernel see one chat memory) and
cleared by ``reset``; it does not mix with the ``%%kimi`` cells' conversation, whose order
follows cell execution. The usage **ledger and the budget are shared**: sidebar turns are
recorded under the source ``"sidebar"``, so ``%kimi usage`` counts both. The HTTP clients
are shared too. ``_kimi`` keeps pointing at the last ``%%kimi`` response.
"""

from __future__ import annotations

import threading
from typing import Any

from ..conversation import Conversation
from ..response import Response
from ..session import Chat, Session, get_session
from ..settings import public_url
from .approver import CommApprover
from .protocol import COMM_TARGET as TARGET
from .renderer import CommRenderer, Send

__all__ = ["TARGET", "SOURCE", "SidebarChat", "chat", "handle_message", "on_open"]

SOURCE = "sidebar"


class SidebarChat:
    """The sidebar's side of a kernel's `Session`: its own chat, the shared rest."""

    def __init__(self, session: Session | None = None, namespace: dict[str, Any] | None = None,
                 memory: Chat | None = None) -> None:
        self.session = session or get_session()
        self.namespace = namespace
        self.memory = memory or Chat()
        self.approvals: dict[str, tuple[bool, str]] = {}
        self.pending_approval: str | None = None  # the one request an "approve" may answer
        self.running = False
        self.gauge_parts: dict[str, int] | None = None  # the last turn's estimate, for the gauge
        self.gauge_model: str | None = None

    @property
    def conversation(self) -> Conversation:
        return self.memory.conversation

    @property
    def last(self) -> Response | None:
        return self.memory.last

    def reset(self) -> None:
        self.conversation.clear()
        self.approvals.clear()

    def answer(self, call_id: str, approved: bool, how: str = "sidebar") -> None:
        """An Approve/Deny for the pending request (anything else answers nothing)."""
        if call_id == self.pending_approval:
            self.approvals[call_id] = (approved, how)

    def closed(self) -> None:
        """The sidebar's comm closed: a pending approval is a deny."""
        if self.pending_approval is not None:
            self.answer(self.pending_approval, False, "closed")

    def hello(self) -> dict[str, Any]:
        from .._version import __version__
        from ..errors import KimiError

        reply: dict[str, Any] = {"type": "hello", "version": __version__, "has_key": False, "error": None}
        try:
            settings = self.session.settings()
        except KimiError as error:
            reply["error"] = str(error)
            return reply
        reply.update(model=settings.model, provider=settings.provider, base_url=public_url(settings.base_url),
                     has_key=bool(settings.api_key), thinking=settings.thinking)
        return reply

    def models(self) -> dict[str, Any]:
        """The model picker's list: what the provider serves, the current model first."""
        from ..errors import KimiError

        reply: dict[str, Any] = {"type": "models", "models": [], "current": None, "error": None}
        try:
            settings = self.session.settings()
            reply["current"] = settings.model
            listed = self.session.client(settings).list_models()
        except KimiError as error:
            reply["error"] = f"Could not list the models: {error}"
            listed = []
        current = reply["current"]
        reply["models"] = ([current] if current else []) + [m for m in listed if m != current]
        reply["efforts"] = _efforts(reply["models"])
        return reply

    def gauge(self) -> dict[str, Any]:
        """The context gauge after a turn: the window, what the last request used (as the server
        reported it) with an estimated breakdown, and the costs as ``%kimi usage`` counts them
        (this chat: the ledger's ``sidebar`` row; the session: its total)."""
        from ..models import registry

        last = self.last
        usage = last.usage if last is not None else None
        used = None
        if usage is not None and usage.reported and usage.prompt is not None:
            used = usage.prompt + (usage.completion or 0)  # the next request carries both
        ledger = self.session.ledger
        row = ledger.rows.get(SOURCE)
        return {"type": "gauge", "model": self.gauge_model or "",
                "window": registry().window(self.gauge_model) if self.gauge_model else None,
                "used": used, "parts": dict(self.gauge_parts or {}),
                "chat_cost": _cost(row.usage if row else None), "session_cost": _cost(ledger.total.usage)}

    def ask(self, data: dict[str, Any], send: Send, comm_id: str | None = None) -> None:
        renderer = CommRenderer(send, str(data.get("request_id") or ""))
        self.running = True
        try:
            self._ask(data, renderer, comm_id)
        except KeyboardInterrupt:
            # The Turn already reported "Interrupted" and finished; an interrupt that came
            # before the turn started still needs an ending.
            if not renderer.finished:
                from ..events import INTERRUPTED_KIND
                from ..turn import INTERRUPTED

                renderer.fail(INTERRUPTED, INTERRUPTED_KIND)
        except Exception as error:  # never a traceback in the kernel for a sidebar message
            if not renderer.finished:
                renderer.fail(_message(error), type(error).__name__)
        finally:
            self.running = False

    def _ask(self, data: dict[str, Any], renderer: CommRenderer, comm_id: str | None) -> None:
        from ..context.composer import compose, frontend_parts
        from ..turn import TurnRequest, run_turn

        options = data.get("options") or {}
        if not isinstance(options, dict):
            options = {}
        settings = self.session.settings(model=options.get("model") or None, thinking=options.get("thinking"),
                                         **_effort_option(options.get("effort")))
        settings.require_key()
        prompt = str(data.get("prompt") or "")
        attachments = data.get("attachments") or []
        if not prompt.strip() and not attachments:
            renderer.fail("The message is empty: type a question first.", "ValueError")
            return
        from ..context.media import request_extras, session_sink
        from ..secrets import secrets_of

        sink = session_sink(self.session, settings)  # Files API media and documents, shared with cells
        before = frontend_parts(attachments if isinstance(attachments, list) else [], settings, sink)
        content = compose(prompt, self._namespace(), before=before, frame_budget=settings.frame_budget,
                          image_max_size=settings.image_max_size, secrets=secrets_of(settings), media=sink)
        strategy = None
        if options.get("agent"):
            from ..agent.loop import agent_strategy

            shell = self._shell()
            strategy = agent_strategy(shell, web=False, approver=CommApprover(
                self, comm_id, shell, auto=bool(settings.auto_approve)))
        from ..partial import prefill_options

        self.gauge_model = settings.model
        self.gauge_parts = _parts(settings, self.conversation.messages, before, prompt)
        prefill = options.get("prefill") if isinstance(options.get("prefill"), str) else None
        request = TurnRequest(content=content, settings=settings, source=SOURCE, chat=self.memory,
                              mode={"agent": True, "web": False} if strategy else {}, strategy=strategy,
                              # documents (system messages) and partial mode's prefill
                              **request_extras(sink, wire=prefill_options(None, prefill, settings)))
        run_turn(self.session, request, renderer)

    def _shell(self) -> Any:
        from IPython import get_ipython

        return get_ipython()

    def _namespace(self) -> dict[str, Any]:
        if self.namespace is not None:
            return self.namespace
        shell = self._shell()
        return shell.user_ns if shell is not None else {}


def _message(error: BaseException) -> str:
    from ..errors import KimiError

    if isinstance(error, (KimiError, ValueError)):
        return str(error)
    return f"Unexpected error in kimi_jupyter ({type(error).__name__}: {error}). Please report it."


# -- the comm itself ----------------------------------------------------------------------

_CHAT: SidebarChat | None = None


def chat() -> SidebarChat:
    """This kernel's sidebar chat (created on first use; its memory is the session's)."""
    global _CHAT
    session = get_session()
    if _CHAT is None or _CHAT.session is not session:
        _CHAT = SidebarChat(session, memory=session.sidebar)
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
    elif action == "gauge":  # asked after each done: the ledger has counted the turn by then
        send(sidebar.gauge())
    elif action == "models":
        # A network request: off the shell, so a slow or unreachable provider never holds up
        # the user's cells (the reply goes out from that thread; iopub sends are thread-safe).
        threading.Thread(target=lambda: send(sidebar.models()), name="kimi-models", daemon=True).start()
    elif action == "ask":
        sidebar.ask(data, send, comm_id)
    elif action == "reset":
        sidebar.reset()
        send({"type": "reset"})
    elif action == "export":  # the sidebar's Export button
        from ..export import sidebar_export

        send(sidebar_export(sidebar, data))
    elif action == "approve":
        sidebar.answer(str(data.get("id")), bool(data.get("approved")))
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

    # Closing the sidebar while it waits for an approval denies it (the kernel goes on).
    comm.on_close(lambda msg: chat().closed())

    data = open_msg.get("content", {}).get("data")
    if isinstance(data, dict) and data.get("action"):
        handle_message(data, send, comm_id=comm_id)


def _efforts(models: list[str]) -> dict[str, list[str]]:
    """The effort levels of each listed model that has them (the registry's ``efforts``)."""
    from ..models import registry

    found: dict[str, list[str]] = {}
    for model in models:
        levels = getattr(registry().get(model), "efforts", ()) or ()
        if levels:
            found[model] = [str(level) for level in levels]
    return found


def _effort_option(value: Any) -> dict[str, Any]:
    """The toolbar's effort as a setting, once the settings know effort (else nothing)."""
    import dataclasses

    from ..settings import Settings

    if not isinstance(value, str) or not value or "effort" not in {f.name for f in dataclasses.fields(Settings)}:
        return {}
    return {"effort": value[:20]}


def _parts(settings: Any, history: list[dict[str, Any]], before: Any, prompt: str) -> dict[str, int]:
    """An estimate of what one sidebar request carries, in tokens (the same estimate as the
    budget's pre-flight): the system prompt, the chat so far, the attachments, the message."""
    from ..conversation import estimate_message_tokens, estimate_tokens

    attached = [p for p in before if isinstance(p, dict)] if isinstance(before, list) else []
    return {
        "system": estimate_tokens(settings.system or ""),
        "history": sum(estimate_message_tokens(m) for m in history),
        "attachments": estimate_message_tokens({"content": attached}) - 4 if attached else 0,
        "message": estimate_tokens(prompt),
    }


def _cost(usage: Any) -> dict[str, Any]:
    if usage is None or usage.cost is None:
        return {"cost": None, "currency": None}
    return {"cost": float(usage.cost), "currency": usage.currency}
