"""Edit proposals: what the model wants to change in a notebook, and what the user decided.

The model never changes a notebook itself. ``edit_cell`` and ``insert_cell`` (and ``%kimi
fix``) become :class:`Proposal` objects; the JupyterLab extension shows each as a diff with
Accept / Reject, applies what the user accepts, and reports back. This module holds the
kernel's side of that exchange, free of any I/O so it can be tested alone:

* :func:`diff_lines` renders a proposal as unified-diff lines (``difflib``) that the frontend
  draws as text (never HTML); deceptive characters (terminal escapes, bidi overrides,
  zero-width marks) are shown as escapes, exactly as in the ``run_python`` approval.
* :class:`ProposalSet` is the state machine of one step's proposals. Every proposal starts
  ``pending``; only a decision from the frontend moves it, and only once:

  ``pending --accept--> accepted``, ``pending --reject--> rejected``,
  ``pending --fail--> failed`` (the cell was deleted, or the edit could not be applied),
  ``pending --expire--> expired`` (the turn stopped before the user decided).

  ``changed(pid, current)`` keeps a proposal pending but moves its baseline: the frontend
  calls it when the cell's source changed between the proposal and the click, so the user
  sees a fresh diff against what the cell holds now and decides again, and nothing the user
  typed meanwhile is overwritten without being shown.
* :meth:`ProposalSet.result_text` is what the model is told for each call.

Acceptance only ever comes from the frontend's decision message for a pending proposal with
the random id the kernel gave it; no model output can produce that message.
"""

from __future__ import annotations

import difflib
import secrets
from dataclasses import dataclass, field
from typing import Any

from .approval import _visible

__all__ = [
    "Proposal",
    "ProposalSet",
    "ProposalError",
    "diff_lines",
    "diff_text",
    "PENDING",
    "ACCEPTED",
    "REJECTED",
    "FAILED",
    "EXPIRED",
]

PENDING, ACCEPTED, REJECTED, FAILED, EXPIRED = "pending", "accepted", "rejected", "failed", "expired"
FINAL = frozenset({ACCEPTED, REJECTED, FAILED, EXPIRED})
NOTE_CHARS = 2000  # a user's note to the model
SOURCE_CHARS = 200_000  # a proposed cell source; longer is refused, not cut
CELL_TYPES = ("code", "markdown", "raw")


class ProposalError(ValueError):
    """A decision that does not fit the proposal's state (unknown id, decided twice...)."""


def _lines(source: str) -> list[str]:
    return source.replace("\r\n", "\n").replace("\r", "\n").split("\n") if source else []


def diff_lines(old: str, new: str, context: int = 3) -> list[dict[str, str]]:
    """The unified diff of two sources as ``{"op": "@"|"+"|"-"|" ", "text"}`` rows.

    ``@`` rows are hunk headers (``@@ -1,3 +1,4 @@``); text is shown with deceptive
    characters escaped. A brand-new cell is all ``+`` rows; no change gives no rows.
    """
    rows: list[dict[str, str]] = []
    for line in difflib.unified_diff(_lines(old), _lines(new), lineterm="", n=context):
        if line.startswith(("---", "+++")) and not rows:
            continue  # the two file headers come first
        op, text = line[:1], line[1:]
        if op == "@":
            rows.append({"op": "@", "text": line})
        elif op in "+- ":
            rows.append({"op": op, "text": _visible(text)})
    return rows


def diff_text(old: str, new: str, context: int = 3) -> str:
    """The same diff as plain text (for exports and frontends without the extension)."""
    return "\n".join(row["text"] if row["op"] == "@" else row["op"] + row["text"] for row in diff_lines(old, new, context))


@dataclass
class Proposal:
    """One change to one cell. ``index`` is 1-based: the cell edited, or the cell after
    which a new one goes (0: at the top). ``cell_id`` names that cell by its notebook id,
    so the change lands on the right cell even if cells move meanwhile."""

    kind: str  # "edit" | "insert"
    index: int
    cell_id: str | None
    new: str
    old: str = ""  # the source the diff is against (edit); "" for an insert
    cell_type: str = "code"
    call_id: str | None = None
    explanation: str = ""  # shown above the diff (e.g. %kimi fix's one-line reason)
    pid: str = field(default_factory=lambda: secrets.token_hex(8))
    status: str = PENDING
    note: str = ""
    changed: bool = False  # the cell changed after the proposal; the user saw a new diff

    def __post_init__(self) -> None:
        if self.kind not in ("edit", "insert"):
            raise ValueError(f"a proposal is an edit or an insert, not {self.kind!r}")
        if self.cell_type not in CELL_TYPES:
            raise ValueError(f"cell_type must be one of {', '.join(CELL_TYPES)}, not {self.cell_type!r}")
        if len(self.new) > SOURCE_CHARS:
            raise ValueError(f"the proposed source is {len(self.new):,} characters; the limit is {SOURCE_CHARS:,}")

    @property
    def target(self) -> str:
        """The cell it targets, as the user reads it."""
        if self.kind == "edit":
            return f"Edit cell {self.index}"
        where = "at the top" if self.index == 0 else f"after cell {self.index}"
        return f"Insert a {self.cell_type} cell {where}"

    def diff(self) -> list[dict[str, str]]:
        return diff_lines(self.old, self.new)

    def to_json(self) -> dict[str, Any]:
        """What the frontend needs to show and apply it."""
        return {
            "pid": self.pid, "kind": self.kind, "index": self.index, "cell_id": self.cell_id,
            "cell_type": self.cell_type, "old": self.old, "new": self.new, "target": self.target,
            "diff": self.diff(), "changed": self.changed, "explanation": self.explanation[:2000],
            "status": self.status,
        }

    def record(self) -> dict[str, Any]:
        """What an export keeps: the target, the diff as text, the outcome and the note."""
        return {"target": self.target, "diff": diff_text(self.old, self.new), "status": self.status,
                "note": self.note, "changed": self.changed}


class ProposalSet:
    """The proposals of one step and their decisions; see the module doc for the states."""

    def __init__(self, proposals: list[Proposal]) -> None:
        if not proposals:
            raise ValueError("a proposal set needs at least one proposal")
        self.proposals = list(proposals)
        self._by_id = {p.pid: p for p in self.proposals}
        if len(self._by_id) != len(self.proposals):
            raise ValueError("proposal ids must be unique")
        self.request_id = secrets.token_hex(8)

    def __iter__(self) -> Any:
        return iter(self.proposals)

    def get(self, pid: Any) -> Proposal:
        proposal = self._by_id.get(pid) if isinstance(pid, str) else None
        if proposal is None:
            raise ProposalError(f"no proposal {pid!r} in this request")
        return proposal

    @property
    def done(self) -> bool:
        return all(p.status in FINAL for p in self.proposals)

    def pending(self) -> list[Proposal]:
        return [p for p in self.proposals if p.status == PENDING]

    def decide(self, pid: Any, outcome: Any, note: Any = "") -> Proposal:
        """Apply the user's decision (``accepted``, ``rejected`` or ``failed``) once."""
        proposal = self.get(pid)
        if outcome not in (ACCEPTED, REJECTED, FAILED):
            raise ProposalError(f"unknown outcome {outcome!r}")
        if proposal.status != PENDING:
            raise ProposalError(f"proposal {pid} is already {proposal.status}")
        proposal.status = outcome
        proposal.note = str(note or "").strip()[:NOTE_CHARS]
        return proposal

    def changed(self, pid: Any, current: Any) -> Proposal:
        """The target cell now holds ``current``: diff against it from now on."""
        proposal = self.get(pid)
        if proposal.status != PENDING:
            raise ProposalError(f"proposal {pid} is already {proposal.status}")
        if proposal.kind != "edit" or not isinstance(current, str):
            raise ProposalError("only an edit has a baseline that can change")
        if len(current) > SOURCE_CHARS:
            raise ProposalError("the cell's current source is too long to compare")
        proposal.old = current
        proposal.changed = True
        return proposal

    def expire(self) -> None:
        """The wait ended without a decision (interrupt, closed notebook): nothing applies."""
        for proposal in self.pending():
            proposal.status = EXPIRED

    def result_text(self, proposal: Proposal) -> str:
        """What the model is told about one proposal."""
        what = proposal.target[0].lower() + proposal.target[1:]
        if proposal.status == ACCEPTED:
            text = f"The user accepted: {what} is done; the cell now has the source you proposed."
            if proposal.changed:
                text += (" (The cell had changed after you proposed it; the user reviewed the diff "
                         "against its new source and accepted.)")
            return text
        if proposal.status == REJECTED:
            text = f"The user rejected the proposal ({what}); the notebook is unchanged."
            if proposal.note:
                text += f" The user's note: {proposal.note}"
            return text + " Do not propose the same change again; ask or try something else."
        if proposal.status == FAILED:
            return f"The proposal ({what}) could not be applied: {proposal.note or 'unknown reason'}."
        if proposal.status == EXPIRED:
            return f"No decision was made on the proposal ({what}); the notebook is unchanged."
        return f"The proposal ({what}) is still waiting for the user."
