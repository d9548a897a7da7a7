"""What each conversation said, turn by turn, for ``%kimi export`` and the sidebar's Export.

The turn engine's messages list is what the *model* sees (trimmed to a budget, tool results
cut); an export wants what the *user* saw: each prompt, the answer, the reasoning, the tool
steps with their results, the edit proposals with their outcome, and the usage of the turn.
:func:`recording` wraps a turn's renderer so that, when the turn finishes (answered, failed,
refused, replayed or interrupted), its `Response` summary is appended to the transcript of
that conversation: the cells' session or the sidebar's chat, one transcript each.

Proposals are decided inside a turn (by the notebook tools or ``%kimi fix``); they are noted
with :func:`note_proposal` and attached to the turn that is finishing.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Transcript", "TurnRecord", "transcript_for", "recording", "note_proposal", "add_to_last_turn"]

MAX_TURNS = 500


@dataclass
class TurnRecord:
    source: str
    prompt: str
    response: dict[str, Any]
    proposals: list[dict[str, Any]] = field(default_factory=list)
    cell: str | None = None  # the notebook cell that made it (`TurnRequest.cell`)


@dataclass
class Transcript:
    turns: list[TurnRecord] = field(default_factory=list)

    def add(self, record: TurnRecord) -> None:
        """Append ``record``; a re-run cell's turn replaces that cell's earlier one in place,
        as its exchange does in the conversation (`Conversation.place`)."""
        if record.cell is not None:
            for i, turn in enumerate(self.turns):
                if turn.cell == record.cell:
                    self.turns[i] = record
                    self.turns[i + 1:] = [t for t in self.turns[i + 1:] if t.cell != record.cell]
                    return
        self.turns.append(record)
        del self.turns[:-MAX_TURNS]

    def forget(self, cells: set[str]) -> None:
        """Drop the turns of cells deleted in the notebook."""
        self.turns[:] = [t for t in self.turns if t.cell is None or t.cell not in cells]


_TRANSCRIPTS: weakref.WeakKeyDictionary[Any, Transcript] = weakref.WeakKeyDictionary()
_PROPOSALS: list[dict[str, Any]] = []


def transcript_for(owner: Any) -> Transcript:
    """The transcript of a conversation owner (a `Session` or the sidebar's chat)."""
    transcript = _TRANSCRIPTS.get(owner)
    if transcript is None:
        transcript = _TRANSCRIPTS[owner] = Transcript()
    return transcript


def note_proposal(record: dict[str, Any]) -> None:
    """A decided proposal (``Proposal.record()``) for the turn now running."""
    _PROPOSALS.append(record)
    del _PROPOSALS[:-100]


def add_to_last_turn(owner: Any, record: dict[str, Any]) -> None:
    """A proposal decided after its turn ended (``%kimi fix`` proposes the answer's code)."""
    turns = transcript_for(owner).turns
    if turns:
        turns[-1].proposals.append(record)


def prompt_text(content: Any) -> str:
    """A user message as text: text parts as they are, media as a placeholder."""
    if isinstance(content, str):
        return content
    pieces = []
    for part in content if isinstance(content, list) else []:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            pieces.append(str(part.get("text", "")))
        elif kind == "image_url":
            pieces.append("\n[image]\n")
        elif kind == "video_url":
            pieces.append("\n[video]\n")
    return "".join(pieces)


class _Recording:
    def __init__(self, owner: Any, request: Any, inner: Any) -> None:
        self.owner, self.request, self.inner = owner, request, inner
        self.start = inner.start
        self.handle = inner.handle  # the per-event path: no extra call
        _PROPOSALS.clear()  # anything left over belongs to no turn

    def finish(self, response: Any) -> None:
        try:
            self.inner.finish(response)
        finally:
            proposals = list(_PROPOSALS)
            _PROPOSALS.clear()
            try:
                transcript_for(self.owner).add(TurnRecord(
                    source=str(getattr(self.request, "source", "")),
                    prompt=prompt_text(getattr(self.request, "content", "")),
                    response=response.summary(timings=False),
                    proposals=proposals,
                    cell=getattr(self.request, "cell", None),
                ))
            except TypeError:  # an owner that cannot be weakly referenced: nothing to export
                pass

    def __getattr__(self, name: str) -> Any:  # anything else a renderer offers
        return getattr(self.inner, name)


def recording(owner: Any, request: Any, renderer: Any) -> Any:
    """``renderer``, recording the finished turn into ``owner``'s transcript."""
    return _Recording(owner, request, renderer)
