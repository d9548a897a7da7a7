"""A proposal shown without waiting (``NotebookFrontend.show``): decided later, on the comm."""

from __future__ import annotations

from typing import Any

from kimi_jupyter.agent.frontend import NotebookFrontend
from kimi_jupyter.agent.proposals import ACCEPTED, EXPIRED, PENDING, REJECTED, Proposal, ProposalSet


class Comm:
    """The comm object's surface ipykernel gives the kernel side: send, handlers, close."""

    comm_id = "c1"

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.closed = False
        self.on_msg_handler: Any = None
        self.on_close_handler: Any = None

    def send(self, data: dict[str, Any]) -> None:
        self.sent.append(data)

    def on_msg(self, handler: Any) -> None:
        self.on_msg_handler = handler

    def on_close(self, handler: Any) -> None:
        self.on_close_handler = handler

    def close(self) -> None:
        self.closed = True

    def receive(self, data: dict[str, Any]) -> None:
        self.on_msg_handler({"content": {"data": data}})


def shown() -> tuple[Comm, NotebookFrontend, ProposalSet, list[ProposalSet]]:
    comm = Comm()
    frontend = NotebookFrontend(None, comm, {"type": "hello", "path": "a.ipynb"})
    proposals = ProposalSet([Proposal("edit", 2, "cell-2", "print(total)", old="print(totl)")])
    decided: list[ProposalSet] = []
    frontend.show(proposals, title="Fix with Kimi", on_decided=decided.append)
    return comm, frontend, proposals, decided


def test_show_sends_the_proposal_without_waiting_and_stays_open():
    comm, frontend, proposals, decided = shown()
    (message,) = comm.sent
    assert message["action"] == "propose" and message["wait"] is False and message["auto"] is False
    assert message["id"] == proposals.request_id and message["proposals"][0]["pid"] == proposals.proposals[0].pid
    assert frontend.showing and not comm.closed and not decided


def test_a_later_decision_is_recorded_and_closes_the_comm():
    comm, frontend, proposals, decided = shown()
    pid = proposals.proposals[0].pid
    comm.receive({"type": "decision", "id": "someone-else", "pid": pid, "outcome": "accepted"})
    assert proposals.proposals[0].status == PENDING  # another request's message changes nothing
    comm.receive({"type": "decision", "id": proposals.request_id, "pid": pid, "outcome": "accepted"})
    assert proposals.proposals[0].status == ACCEPTED
    assert decided == [proposals] and comm.closed and not frontend.showing


def test_a_changed_cell_gets_a_fresh_diff_and_the_decision_still_counts():
    comm, _frontend, proposals, decided = shown()
    pid = proposals.proposals[0].pid
    comm.receive({"type": "changed", "id": proposals.request_id, "pid": pid, "current": "print(totl)  # edited"})
    update = comm.sent[-1]
    assert update["action"] == "update" and update["proposal"]["changed"] is True
    assert update["proposal"]["old"] == "print(totl)  # edited" and not decided
    comm.receive({"type": "decision", "id": proposals.request_id, "pid": pid, "outcome": "rejected", "note": "no"})
    assert proposals.proposals[0].status == REJECTED and proposals.proposals[0].note == "no" and decided


def test_a_closed_notebook_or_restart_expires_the_proposal():
    comm, frontend, proposals, decided = shown()
    comm.on_close_handler({})
    assert proposals.proposals[0].status == EXPIRED and decided == [proposals] and not frontend.showing
