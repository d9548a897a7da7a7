"""The kernel's line to the notebook open in JupyterLab: read its cells, show proposals.

The JupyterLab extension registers a comm target named ``kimi_jupyter.notebook`` on every
notebook's kernel connection (registering loads nothing into the kernel). When an agent
turn wants notebook tools, the kernel opens a comm to that target; each notebook of this
kernel receives it, and only the one that holds the turn answers ``hello``: the notebook
containing the running cell (``cell_id``, from the execute request's ``cellId`` metadata)
or the notebook whose sidebar chat runs the turn (``chat_comm_id``). Nothing answers in
nbclient, the terminal or a frontend without the extension; then there are no notebook
tools.

Protocol (JSON; kernel -> frontend carry ``action``, frontend -> kernel ``type``)::

    comm_open {"action": "hello", "version": 1, "cell_id", "chat_comm_id"}
      <- {"type": "hello", "path", "cells"}              (or no answer / comm_close)
    {"action": "snapshot", "id"}
      <- {"type": "snapshot", "id", "cells": [{"id", "cell_type", "source",
          "execution_count", "outputs", "has_error"}]}     (outputs as text, cut)
    {"action": "propose", "id", "title", "auto", "proposals": [Proposal.to_json()]}
      <- {"type": "decision", "id", "pid", "outcome": accepted|rejected|failed, "note"}
      <- {"type": "changed", "id", "pid", "current"}     (the cell changed meanwhile)
      -> {"action": "update", "id", "proposal"}          (the new diff; decide again)
    {"action": "end", "id", "reason"}                     (the turn stopped: no more decisions)
    {"action": "propose", ..., "wait": false}             (:meth:`NotebookFrontend.show`)

A single-step proposal (``%kimi fix``, Fix with Kimi) does not hold the kernel:
:meth:`NotebookFrontend.show` sends it with ``"wait": false`` and returns, the cell ends,
and the comm stays open. The decision arrives later as an ordinary comm message, handled
by the idle kernel like any other; the frontend has already applied an accepted edit, the
kernel records the outcome (``on_decided``) and closes the comm once every proposal is
decided (a restart or a closed notebook closes it too).

While an agent loop waits, the kernel is busy with the turn while it waits, so the answers are read by a
:class:`~kimi_jupyter.agent.ui_poll.ShellPump` watching this comm only (every other shell
message is held until the wait ends), exactly like the approval buttons. Every wait is
bounded: ``hello`` and ``snapshot`` by a few seconds, a proposal by the user (Stop, an
interrupt, ends it) and by ``timeout`` when one is given. What arrives is checked: fields
have the expected types, text is cut to bounds, and unknown messages are ignored.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Any

from .proposals import ProposalError, ProposalSet

log = logging.getLogger(__name__)

__all__ = ["TARGET", "NotebookFrontend", "Cell", "connect"]

TARGET = "kimi_jupyter.notebook"
HELLO_TIMEOUT = 3.0
SNAPSHOT_TIMEOUT = 10.0
MAX_CELLS = 2000
SOURCE_CHARS = 200_000
OUTPUT_CHARS = 20_000


@dataclass(frozen=True)
class Cell:
    index: int  # 1-based
    id: str
    cell_type: str
    source: str
    execution_count: int | None
    outputs: str
    has_error: bool


def _str(value: Any, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _cells(raw: Any) -> list[Cell]:
    cells: list[Cell] = []
    for i, item in enumerate(raw[:MAX_CELLS] if isinstance(raw, list) else [], start=1):
        if not isinstance(item, dict):
            continue
        count = item.get("execution_count")
        cells.append(Cell(
            index=i, id=_str(item.get("id"), 200), cell_type=_str(item.get("cell_type"), 20) or "code",
            source=_str(item.get("source"), SOURCE_CHARS),
            execution_count=count if isinstance(count, int) and not isinstance(count, bool) else None,
            outputs=_str(item.get("outputs"), OUTPUT_CHARS), has_error=item.get("has_error") is True,
        ))
    return cells


class NotebookFrontend:
    """One open comm to the notebook that runs this turn. Close it when the turn ends."""

    def __init__(self, shell: Any, comm: Any, hello: dict[str, Any]) -> None:
        self.shell = shell
        self.comm = comm
        self.path = _str(hello.get("path"), 1000)
        self._inbox: list[dict[str, Any]] = []
        self._shown: tuple[ProposalSet, Any] | None = None
        self.closed = False
        comm.on_msg(self._received)
        comm.on_close(self._on_close)

    # -- transport ---------------------------------------------------------------------

    def _received(self, msg: dict[str, Any]) -> None:
        data = (msg.get("content") or {}).get("data")
        if not isinstance(data, dict):
            return
        if self._shown is not None:  # a proposal shown without waiting: decide it now
            self._decided_later(data)
        elif len(self._inbox) < 1000:
            self._inbox.append(data)

    def _decided_later(self, data: dict[str, Any]) -> None:
        proposals, on_decided = self._shown  # type: ignore[misc]
        if data.get("id") != proposals.request_id:
            return
        self._apply(proposals, data)
        if proposals.done:
            self._shown = None
            try:
                on_decided(proposals)
            except Exception:
                log.debug("recording a decided proposal failed", exc_info=True)
            self.close()

    def _on_close(self, msg: Any = None) -> None:
        self.closed = True
        if self._shown is not None:  # closed notebook, restart: nothing more can be decided
            proposals, on_decided = self._shown
            self._shown = None
            proposals.expire()
            try:
                on_decided(proposals)
            except Exception:
                log.debug("recording an expired proposal failed", exc_info=True)

    def _send(self, message: dict[str, Any]) -> None:
        if self.closed:
            raise ConnectionError("the notebook closed its connection to the kernel")
        self.comm.send(message)

    def _wait(self, done: Any, timeout: float | None) -> bool:
        from .ui_poll import PumpUnavailable, ShellPump

        try:
            pump = ShellPump.open(self.shell.kernel)
        except PumpUnavailable as error:
            raise ConnectionError(f"the kernel cannot read the notebook's answers here ({error})") from None
        try:
            pump.watch([self.comm.comm_id])
            return pump.wait(lambda: self.closed or done(), timeout)
        finally:
            pump.close()

    def _take(self, type_: str, request_id: str) -> dict[str, Any] | None:
        for i, data in enumerate(self._inbox):
            if data.get("type") == type_ and data.get("id") == request_id:
                return self._inbox.pop(i)
        return None

    # -- requests ----------------------------------------------------------------------

    def snapshot(self) -> list[Cell]:
        """The notebook's cells as the frontend holds them now."""
        request_id = secrets.token_hex(8)
        self._send({"action": "snapshot", "id": request_id})
        found: dict[str, Any] = {}

        def arrived() -> bool:
            reply = self._take("snapshot", request_id)
            if reply is not None:
                found["reply"] = reply
            return "reply" in found

        self._wait(arrived, SNAPSHOT_TIMEOUT)
        if "reply" not in found:
            raise ConnectionError("the notebook did not answer (is its tab still open?)")
        return _cells(found["reply"].get("cells"))

    def propose(self, proposals: ProposalSet, title: str = "", timeout: float | None = None,
                auto: bool = False) -> ProposalSet:
        """Show the proposals and wait until the user has decided on each (or the wait ends).

        ``auto`` (the user's ``Kimi.auto_apply_edits``): the frontend applies them at once."""
        rid = proposals.request_id
        self._send({"action": "propose", "id": rid, "title": title[:200], "auto": bool(auto),
                    "proposals": [p.to_json() for p in proposals]})

        def settled() -> bool:
            while True:
                message = next((m for m in self._inbox if m.get("id") == rid), None)
                if message is None:
                    return proposals.done
                self._inbox.remove(message)
                self._apply(proposals, message)

        finished = False
        try:
            self._wait(settled, timeout)
            finished = True
        finally:
            if not proposals.done:
                proposals.expire()
                try:
                    reason = "stopped" if not finished else ("closed" if self.closed else "timeout")
                    self._send({"action": "end", "id": rid, "reason": reason})
                except Exception:
                    log.debug("could not tell the notebook the proposals ended", exc_info=True)
        return proposals

    def show(self, proposals: ProposalSet, title: str = "", on_decided: Any = None) -> None:
        """Show the proposals and return at once: the cell ends, the kernel is free.

        The user decides whenever they like; the frontend applies what is accepted, and
        ``on_decided(proposals)`` runs in the kernel (idle by then) when all are decided.
        The comm stays open until then: do not :meth:`close` this frontend after ``show``."""
        self._shown = (proposals, on_decided or (lambda _proposals: None))
        self._send({"action": "propose", "id": proposals.request_id, "title": title[:200], "auto": False,
                    "wait": False, "proposals": [p.to_json() for p in proposals]})

    @property
    def showing(self) -> bool:
        """A proposal shown by :meth:`show` still waits for its decision."""
        return self._shown is not None and not self.closed

    def _apply(self, proposals: ProposalSet, message: dict[str, Any]) -> None:
        try:
            if message.get("type") == "decision":
                proposals.decide(message.get("pid"), message.get("outcome"), _str(message.get("note"), 4000))
            elif message.get("type") == "changed":
                proposal = proposals.changed(message.get("pid"), _str(message.get("current"), SOURCE_CHARS + 1))
                self._send({"action": "update", "id": proposals.request_id, "proposal": proposal.to_json()})
        except ProposalError as error:
            log.debug("ignored a proposal message: %s", error)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self.comm.close()
            except Exception:
                log.debug("could not close the notebook comm", exc_info=True)


def _current_cell_id(kernel: Any) -> str | None:
    from .approval import _current_request

    metadata = _current_request(kernel).get("metadata") or {}
    value = metadata.get("cellId") or metadata.get("cell_id") if isinstance(metadata, dict) else None
    return value if isinstance(value, str) else None


def connect(shell: Any, *, chat_comm_id: str | None = None, timeout: float = HELLO_TIMEOUT,
            headless_ok: bool = False) -> NotebookFrontend | None:
    """The notebook running this turn, or None where no frontend can apply edits.

    A request that cannot ask the user (nbclient, papermill) is not probed, unless
    ``headless_ok``: the Fix with Kimi button's own request, sent without stdin."""
    from .approval import pick_channel
    from .ui_poll import can_pump

    kernel = getattr(shell, "kernel", None)
    if kernel is None or getattr(kernel, "session", None) is None or not can_pump(kernel):
        return None
    cell_id = _current_cell_id(kernel)
    if not chat_comm_id and (not cell_id or (not headless_ok and pick_channel(shell) == "no-ui")):
        return None  # nbclient / papermill / a console: nobody to show a diff to
    try:
        from comm import create_comm

        comm = create_comm(target_name=TARGET, data={"action": "hello", "version": 1, "cell_id": cell_id,
                                                     "chat_comm_id": chat_comm_id})
    except Exception:
        log.debug("could not open the notebook comm", exc_info=True)
        return None
    box: dict[str, Any] = {}
    comm.on_msg(lambda msg: box.setdefault("hello", (msg.get("content") or {}).get("data")))
    comm.on_close(lambda msg=None: box.setdefault("closed", True))
    from .ui_poll import ShellPump

    try:
        pump = ShellPump.open(kernel)
    except Exception:
        comm.close()
        return None
    try:
        pump.watch([comm.comm_id])
        pump.wait(lambda: "hello" in box or "closed" in box, timeout)
    finally:
        pump.close()
    hello = box.get("hello")
    if not isinstance(hello, dict) or hello.get("type") != "hello" or box.get("closed"):
        if not box.get("closed"):
            try:
                comm.close()
            except Exception:
                pass
        return None
    return NotebookFrontend(shell, comm, hello)
