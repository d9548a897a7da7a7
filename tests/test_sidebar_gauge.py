"""The sidebar's context gauge and toolbar options, kernel side, against the simulator."""

from __future__ import annotations

from typing import Any

from kimi_jupyter.sidebar.chat import SidebarChat, handle_message
from kimi_jupyter.testing import Reply


def _send(sidebar: SidebarChat, message: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    handle_message(message, out.append, sidebar)
    return out


def test_the_gauge_reports_the_window_the_reported_tokens_and_the_ledger_costs(kimi_sim_env):
    from kimi_jupyter.models import registry

    sidebar = SidebarChat(namespace={})
    kimi_sim_env.queue(Reply(text="One."), Reply(text="Two."))
    _send(sidebar, {"action": "ask", "request_id": "r1", "prompt": "Say one."})
    _send(sidebar, {"action": "ask", "request_id": "r2", "prompt": "Say two, please."})
    (gauge,) = _send(sidebar, {"action": "gauge"})
    assert gauge["type"] == "gauge"
    usage = sidebar.last.usage
    assert gauge["used"] == usage.prompt + usage.completion
    assert gauge["window"] == registry().window(gauge["model"]) and gauge["window"]
    assert gauge["parts"]["message"] == 4 and gauge["parts"]["history"] > 0  # "Say two, please." ~4 tokens
    ledger = sidebar.session.ledger
    assert gauge["chat_cost"] == {"cost": ledger.rows["sidebar"].usage.cost, "currency": ledger.rows["sidebar"].usage.currency}
    assert gauge["session_cost"]["cost"] == ledger.total.usage.cost and gauge["chat_cost"]["cost"] > 0


def test_the_toolbar_options_reach_the_request(kimi_sim_env):
    sidebar = SidebarChat(namespace={})
    kimi_sim_env.queue(Reply(text="Low effort."))
    _send(sidebar, {"action": "ask", "request_id": "r1", "prompt": "Hi.",
                    "options": {"model": "kimi-k3", "effort": "low", "thinking": True}})
    body = kimi_sim_env.chat_requests[-1].json
    assert body["model"] == "kimi-k3"
    assert body["thinking"]["type"] == "enabled" and body["thinking"]["effort"] == "low", body


def test_models_reply_names_the_effort_levels_of_models_that_have_them(kimi_sim_env):
    sidebar = SidebarChat(namespace={})
    reply = sidebar.models()
    assert reply["efforts"]["kimi-k3"] == ["low", "high", "max"]
    assert "kimi-k2.5" not in reply["efforts"]  # no effort control: no picker
    assert set(reply["efforts"]) <= set(reply["models"])
    for levels in reply["efforts"].values():
        assert levels and set(levels) <= {"low", "high", "max"}
