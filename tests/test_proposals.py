"""Edit proposals: the diff rows the frontend draws, and the decision state machine."""

from __future__ import annotations

import pytest

from kimi_jupyter.agent.proposals import (
    ACCEPTED,
    EXPIRED,
    FAILED,
    PENDING,
    REJECTED,
    Proposal,
    ProposalError,
    ProposalSet,
    diff_lines,
    diff_text,
)


def test_diff_rows_mark_removed_added_and_kept_lines():
    rows = diff_lines("a = 1\nb = 2\nprint(a)", "a = 1\nb = 3\nprint(a)\nprint(b)")
    assert rows == [
        {"op": "@", "text": "@@ -1,3 +1,4 @@"},
        {"op": " ", "text": "a = 1"},
        {"op": "-", "text": "b = 2"},
        {"op": "+", "text": "b = 3"},
        {"op": " ", "text": "print(a)"},
        {"op": "+", "text": "print(b)"},
    ]
    assert diff_text("x", "y") == "@@ -1 +1 @@\n-x\n+y"


def test_a_new_cell_is_all_added_lines_and_no_change_is_no_rows():
    assert [r["op"] for r in diff_lines("", "a\nb")] == ["@", "+", "+"]
    assert diff_lines("same\n", "same\n") == []


def test_lines_starting_like_headers_are_content_not_headers():
    rows = diff_lines("--- old\nx", "+++ new\nx")
    assert {"op": "-", "text": "--- old"} in rows and {"op": "+", "text": "+++ new"} in rows


def test_deceptive_characters_are_shown_as_escapes_in_the_diff():
    rows = diff_lines("", "ok = 1\x1b[2K\u202eevil")
    added = [r["text"] for r in rows if r["op"] == "+"]
    assert added == ["ok = 1\\x1b[2K\\u202eevil"]


def test_crlf_sources_diff_by_lines():
    assert [r["op"] for r in diff_lines("a\r\nb", "a\nb")] == []


def edit(**kw):
    return Proposal("edit", kw.pop("index", 2), "cell-2", kw.pop("new", "b = 3"), old=kw.pop("old", "b = 2"), **kw)


def test_proposal_json_names_its_target_and_carries_the_diff():
    p = edit()
    data = p.to_json()
    assert data["target"] == "Edit cell 2" and data["status"] == PENDING and data["cell_id"] == "cell-2"
    assert [r["op"] for r in data["diff"]] == ["@", "-", "+"]
    insert = Proposal("insert", 0, None, "# Title", cell_type="markdown")
    assert insert.target == "Insert a markdown cell at the top"
    assert Proposal("insert", 3, "c3", "x").target == "Insert a code cell after cell 3"


def test_invalid_proposals_are_refused():
    with pytest.raises(ValueError):
        Proposal("delete", 1, "c", "x")
    with pytest.raises(ValueError):
        Proposal("insert", 1, "c", "x", cell_type="html")
    with pytest.raises(ValueError):
        Proposal("edit", 1, "c", "x" * 200_001)
    with pytest.raises(ValueError):
        ProposalSet([])


def test_each_proposal_is_decided_once():
    a, b = edit(), Proposal("insert", 2, "cell-2", "print(b)")
    proposals = ProposalSet([a, b])
    assert not proposals.done and proposals.pending() == [a, b]
    proposals.decide(a.pid, ACCEPTED)
    with pytest.raises(ProposalError):
        proposals.decide(a.pid, REJECTED)  # no second decision
    proposals.decide(b.pid, REJECTED, "  Not needed.  ")
    assert proposals.done and (a.status, b.status) == (ACCEPTED, REJECTED) and b.note == "Not needed."


def test_unknown_ids_and_outcomes_change_nothing():
    p = edit()
    proposals = ProposalSet([p])
    for pid, outcome in (("nope", ACCEPTED), (None, ACCEPTED), (p.pid, "approved"), (p.pid, PENDING), (p.pid, EXPIRED)):
        with pytest.raises(ProposalError):
            proposals.decide(pid, outcome)
    assert p.status == PENDING


def test_a_changed_cell_moves_the_baseline_and_stays_pending():
    p = edit(old="b = 2", new="b = 3")
    proposals = ProposalSet([p])
    proposals.changed(p.pid, "b = 2  # typed by the user")
    assert p.status == PENDING and p.changed and p.old == "b = 2  # typed by the user"
    assert [r["text"] for r in p.diff() if r["op"] == "-"] == ["b = 2  # typed by the user"]
    proposals.decide(p.pid, ACCEPTED)
    assert "had changed" in proposals.result_text(p)
    with pytest.raises(ProposalError):
        proposals.changed(p.pid, "later")  # decided: no more baseline moves


def test_an_insert_has_no_baseline_to_move():
    p = Proposal("insert", 1, "c1", "x")
    with pytest.raises(ProposalError):
        ProposalSet([p]).changed(p.pid, "y")


def test_expire_ends_only_what_is_pending():
    a, b = edit(), edit()
    proposals = ProposalSet([a, b])
    proposals.decide(a.pid, ACCEPTED)
    proposals.expire()
    assert (a.status, b.status) == (ACCEPTED, EXPIRED) and proposals.done


def test_what_the_model_is_told():
    a, r, f, e = edit(), edit(), edit(), edit()
    proposals = ProposalSet([a, r, f, e])
    proposals.decide(a.pid, ACCEPTED)
    proposals.decide(r.pid, REJECTED, "Keep b at 2.")
    proposals.decide(f.pid, FAILED, "the cell was deleted")
    proposals.expire()
    assert proposals.result_text(a).startswith("The user accepted: edit cell 2 is done")
    rejected = proposals.result_text(r)
    assert "rejected" in rejected and "Keep b at 2." in rejected and "Do not propose the same change" in rejected
    assert "could not be applied: the cell was deleted" in proposals.result_text(f)
    assert "No decision" in proposals.result_text(e)


def test_notes_are_cut_and_ids_are_random():
    p = edit()
    proposals = ProposalSet([p])
    proposals.decide(p.pid, REJECTED, "n" * 5000)
    assert len(p.note) == 2000
    assert len({Proposal("insert", 0, None, "x").pid for _ in range(50)}) == 50
    assert ProposalSet([edit()]).request_id != ProposalSet([edit()]).request_id


def test_what_the_frontend_sends_is_checked_and_bounded():
    from kimi_jupyter.agent.frontend import MAX_CELLS, SOURCE_CHARS, _cells

    assert _cells("not a list") == [] and _cells(None) == []
    cells = _cells([
        {"id": "a", "cell_type": "code", "source": "x" * (SOURCE_CHARS + 10), "execution_count": True,
         "outputs": ["not text"], "has_error": "yes"},
        "junk",
        {"id": 5, "cell_type": None, "source": None, "execution_count": 3, "has_error": True},
    ])
    assert [c.index for c in cells] == [1, 3]  # indices stay the notebook's own
    first, second = cells
    assert len(first.source) == SOURCE_CHARS and first.execution_count is None and first.outputs == ""
    assert first.has_error is False  # only a real true counts
    assert (second.id, second.cell_type, second.source, second.execution_count, second.has_error) == (
        "", "code", "", 3, True)
    assert len(_cells([{"source": "x"}] * (MAX_CELLS + 5))) == MAX_CELLS


def test_notebook_tool_listing_and_reading_texts():
    from kimi_jupyter.agent.frontend import Cell
    from kimi_jupyter.agent.notebook_tools import list_text, read_text

    cells = [Cell(1, "a", "code", "\n\nimport pandas as pd\nx = 1", 3, "", False),
             Cell(2, "b", "markdown", "", None, "", False),
             Cell(3, "c", "code", "1/0", 4, "ZeroDivisionError: division by zero", True)]
    assert list_text(cells).splitlines() == [
        "1. code [In 3]: import pandas as pd",
        "2. markdown: (empty)",
        "3. code [In 4] (shows an error): 1/0",
    ]
    assert list_text([]) == "(the notebook has no cells)"
    text = read_text(Cell(1, "a", "code", "y" * 7000, None, "out", False))
    assert "1000 more characters of source cut" in text and text.endswith("Outputs:\nout")


def test_edit_and_insert_arguments_are_checked_before_anything_is_shown():
    from kimi_jupyter.agent.frontend import Cell
    from kimi_jupyter.agent.notebook_tools import NotebookTools
    from kimi_jupyter.events import ToolCallRequested

    tools = NotebookTools.__new__(NotebookTools)  # no frontend needed to check arguments
    cells = [Cell(1, "a", "code", "x = 1", 1, "", False), Cell(2, "b", "markdown", "# T", None, "", False)]

    def made(name, **args):
        import json

        return tools._proposal(ToolCallRequested("c1", name, json.dumps(args)), cells)

    assert made("edit_cell", index=3, source="y").error == "no such cell"
    assert made("edit_cell", index=0, source="y").error == "no such cell"
    assert made("edit_cell", index=True, source="y").error == "no such cell"
    assert made("edit_cell", index=1).error == "invalid arguments"
    assert "already has exactly this source" in made("edit_cell", index=1, source="x = 1").text
    assert made("insert_cell", after=5, source="y").error == "no such cell"
    edit = made("edit_cell", index="2", source="# Title")
    assert (edit.kind, edit.index, edit.cell_id, edit.old, edit.cell_type) == ("edit", 2, "b", "# T", "markdown")
    top = made("insert_cell", after=0, source="print(1)", cell_type="html")
    assert (top.kind, top.cell_id, top.cell_type) == ("insert", None, "code")
