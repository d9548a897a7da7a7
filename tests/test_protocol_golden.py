"""One protocol between the kernel and the sidebar, held in place from both sides.

* The golden turns (``tests/golden/turns/*.json``: an event stream as ``event_to_json`` dicts,
  the phase a live view shows after each event, and the final snapshot) are folded here by
  ``Response`` and the display's ``Coalescer``; ``labextension/test/turn.test.ts`` folds the
  same files with the sidebar's ``TurnState``. Neither side can drift alone.
* ``labextension/src/protocol.ts`` must declare every message, field and event of
  ``kimi_jupyter.sidebar.protocol`` and ``kimi_jupyter.events``, with the same optionality.
* The Python TypedDicts match the dataclasses and the messages the kernel really sends.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
import typing
from pathlib import Path
from typing import Any

import pytest

from kimi_jupyter import events as events_module
from kimi_jupyter.display.base import TurnMeta
from kimi_jupyter.display.coalesce import Coalescer
from kimi_jupyter.display.fmt import usage_line
from kimi_jupyter.events import Event, Failed, Usage, event_from_json, event_to_json
from kimi_jupyter.response import Response, ToolStep
from kimi_jupyter.sidebar import protocol
from kimi_jupyter.testing import Reply

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "golden" / "turns"
PROTOCOL_TS = REPO / "labextension" / "src" / "protocol.ts"
TURNS = sorted(GOLDEN.glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def snapshot(response: Response) -> dict[str, Any]:
    """The golden files' view of a finished turn: the summary plus two derived flags."""
    snap = response.summary()
    del snap["model"]  # comes from the turn's settings, not from events
    snap["interrupted"] = response.interrupted
    snap["failed"] = response.error is not None and not response.interrupted
    return snap


def test_the_golden_turns_cover_every_case_the_sidebar_shows():
    names = {path.stem for path in TURNS}
    assert names >= {"plain_text", "reasoning_then_text", "agent_approved_and_denied",
                     "two_currencies_parallel_tools", "interrupted_partial", "failed_before_anything",
                     "cut_stream"}
    covered = {e["type"] for path in TURNS for e in load(path)["events"]}
    assert covered == set(events_module._EVENT_TYPES), "every event type appears in some golden turn"


@pytest.mark.parametrize("path", TURNS, ids=lambda p: p.stem)
def test_golden_events_are_exactly_what_event_to_json_sends(path: Path):
    for data in load(path)["events"]:
        assert event_to_json(event_from_json(data)) == data


def test_a_tool_call_read_back_from_json_is_a_function_call_again():
    # The cache replays turns from JSON; the call goes back to the API as {"type": "function"}.
    call = events_module.ToolCallRequested("c1", "run_python", "{}", 0)
    assert event_from_json(event_to_json(call)) == call


@pytest.mark.parametrize("path", TURNS, ids=lambda p: p.stem)
def test_response_folds_the_golden_stream_into_its_snapshot(path: Path):
    golden = load(path)
    response = Response().feed_all(event_from_json(e) for e in golden["events"])
    assert snapshot(response) == golden["expect"]
    # The summary goes over the comm and into saved notebooks: it must be plain JSON.
    assert json.loads(json.dumps(response.summary())) == response.summary()


@pytest.mark.parametrize("path", TURNS, ids=lambda p: p.stem)
def test_live_views_show_the_golden_phases(path: Path):
    golden = load(path)
    coalescer = Coalescer(lambda _c: None, clock=lambda: 0.0)
    phases = []
    for data in golden["events"]:
        coalescer.feed(event_from_json(data))
        phases.append(coalescer.phase)
    assert phases == golden["phases"]


@pytest.mark.parametrize("path", TURNS, ids=lambda p: p.stem)
def test_a_saved_summary_folds_to_the_same_snapshot(path: Path):
    # The summary is a fixed point: what the sidebar's `done` replaces its live state with.
    golden = load(path)
    response = Response().feed_all(event_from_json(e) for e in golden["events"])
    expect = {k: v for k, v in golden["expect"].items() if k not in ("interrupted", "failed")}
    assert {k: v for k, v in response.summary().items() if k != "model"} == expect


def test_costs_in_two_currencies_are_never_summed_even_after_a_third_request():
    response = Response().feed_all([Usage(1, 1, None, None, 2, 0.5, "CNY"), Usage(1, 1, None, None, 2, 0.25, "USD"),
                                    Usage(1, 1, None, None, 2, 0.5, "CNY")])
    assert response.usage.cost is None
    assert response.costs == {"CNY": 1.0, "USD": 0.25}
    # Shown one per currency, worded as the sidebar's usageLine (labextension/test/turn.test.ts).
    assert usage_line(response.usage, None, response.costs) == "usage: prompt 3, completion 3, total 6 tokens, cost ¥1 + $0.25"
    one = Response().feed_all([Usage(1, 1, None, None, 2, 0.5, "CNY"), Usage(1, 1, None, None, 2, 0.25, "CNY")])
    assert one.usage.cost == 0.75 and one.costs == {"CNY": 0.75}


def test_an_interrupt_is_told_by_its_kind_not_by_its_wording():
    stopped = Response().feed_all([Failed("Stopped by you.", protocol.INTERRUPTED_KIND)])
    assert stopped.interrupted and stopped.summary()["error_kind"] == "Interrupted"
    worded = Response().feed_all([Failed("Interrupted by the proxy (502).", "KimiServerError")])
    assert not worded.interrupted and worded.summary()["error_kind"] == "KimiServerError"


# -- the Python TypedDicts match the data they describe ---------------------------------------


def keys(typed: Any) -> set[str]:
    return set(typed.__required_keys__ | typed.__optional_keys__)


def test_typed_dicts_match_the_dataclasses_they_serialise():
    assert keys(protocol.UsageJSON) == {f.name for f in dataclasses.fields(Usage)}
    assert keys(protocol.ToolStepJSON) == {f.name for f in dataclasses.fields(ToolStep)}
    assert keys(protocol.TurnMetaJSON) == {f.name for f in dataclasses.fields(TurnMeta)}
    assert keys(protocol.ResponseSummary) == set(Response().summary())
    assert keys(protocol.SavedResponse) == set(Response().summary()) | {"meta"}


def conforms(message: dict[str, Any], typed: Any) -> None:
    """``message`` has every required key of ``typed`` and nothing it does not declare."""
    missing = typed.__required_keys__ - set(message)
    extra = set(message) - keys(typed)
    assert not missing and not extra, (typed.__name__, missing, extra)


KERNEL_TYPES = {typing.get_type_hints(t, include_extras=True)["type"].__args__[0]: t
                for t in typing.get_args(protocol.KernelMessage)}


def test_every_message_the_kernel_sends_in_a_turn_conforms(kimi_sim_env):
    from kimi_jupyter.sidebar.chat import SidebarChat, handle_message

    kimi_sim_env.queue(Reply(text="Forty-two.", reasoning="Think."))
    sent: list[dict[str, Any]] = []
    sidebar = SidebarChat(namespace={})
    for message in ({"action": "hello"}, {"action": "ask", "request_id": "r1", "prompt": "Answer?"},
                    {"action": "export", "request_id": "e1", "format": "md"}, {"action": "reset"},
                    {"action": "dance"}):
        handle_message(message, sent.append, sidebar)
    handle_message({"action": "gauge"}, sent.append, sidebar)
    handle_message({"action": "models"}, sent.append, sidebar)
    deadline = time.monotonic() + 5
    while sent[-1]["type"] != "models" and time.monotonic() < deadline:  # models come from a thread
        time.sleep(0.02)
    seen = {m["type"] for m in sent}
    assert seen == set(KERNEL_TYPES), seen
    for message in sent:
        conforms(message, KERNEL_TYPES[message["type"]])
        if message["type"] == "done":
            conforms(message["response"], protocol.ResponseSummary)
            conforms(message["meta"], protocol.TurnMetaJSON)
        if message["type"] == "start":
            conforms(message["meta"], protocol.TurnMetaJSON)
    done = next(m for m in sent if m["type"] == "done")
    assert done["response"]["text"] == "Forty-two." and done["response"]["error_kind"] is None


# -- the TypeScript mirror -------------------------------------------------------------------


def ts_interfaces(source: str) -> dict[str, dict[str, bool]]:
    """``interface IName { field?: type; }`` -> {"IName": {"field": optional}} (one field a line)."""
    found: dict[str, dict[str, bool]] = {}
    for match in re.finditer(r"export interface (\w+)(?: extends ([\w, ]+))? \{\n(.*?)\n\}", source, re.S):
        fields = {m.group(1): bool(m.group(2)) for m in re.finditer(r"^  (\w+)(\?)?:", match.group(3), re.M)}
        for parent in (match.group(2) or "").split(","):
            fields = {**found.get(parent.strip(), {}), **fields}
        found[match.group(1)] = fields
    return found


def test_protocol_ts_declares_every_message_and_field_of_the_python_protocol():
    source = PROTOCOL_TS.read_text(encoding="utf-8")
    interfaces = ts_interfaces(source)
    typed_dicts = [obj for name, obj in vars(protocol).items()
                   if isinstance(obj, type) and typing.is_typeddict(obj) and not name.startswith("_")]
    assert len(typed_dicts) >= 20
    for typed in typed_dicts:
        name = "I" + typed.__name__
        assert name in interfaces, f"protocol.ts has no interface {name}"
        expected = {key: key in typed.__optional_keys__ for key in keys(typed)}
        assert interfaces[name] == expected, name
        for key, hint in typing.get_type_hints(typed).items():
            if typing.get_origin(hint) is typing.Literal:  # the message's "type"/"action"/"kind"
                assert re.search(rf"interface {name}\b[^}}]*\n  {key}: '{hint.__args__[0]}';", source), (name, key)
    for name in ("COMM_TARGET", "RESPONSE_MIME", "INTERRUPTED_KIND"):
        assert f"export const {name} = '{getattr(protocol, name)}';" in source
    for union in ("FrontendMessage", "KernelMessage"):
        declared = re.search(rf"export type {union} =(.*?);", source, re.S)
        assert declared, union
        names = set(re.findall(r"I\w+", declared.group(1)))
        assert names == {"I" + t.__name__ for t in typing.get_args(getattr(protocol, union))}, union


def test_protocol_ts_declares_every_event_with_its_fields():
    source = PROTOCOL_TS.read_text(encoding="utf-8")
    interfaces = ts_interfaces(source)
    union = re.search(r"export type KimiEvent =(.*?);", source, re.S)
    assert union
    assert set(re.findall(r"I\w+", union.group(1))) == {f"I{cls.__name__}Event" for cls in typing.get_args(Event)}
    for cls in typing.get_args(Event):
        name = f"I{cls.__name__}Event"
        assert name in interfaces, f"protocol.ts has no interface {name}"
        expected = {f.name: f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
                    for f in dataclasses.fields(cls)} | {"type": False}
        assert interfaces[name] == expected, name
        assert re.search(rf"interface {name}\b[^}}]*\n  type: '{cls.__name__}';", source), name
