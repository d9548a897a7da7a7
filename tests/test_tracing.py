"""OpenTelemetry spans in the GenAI semantic conventions, read from the SDK's in-memory exporter,
for turns against the simulator (a plain turn, an agent turn with a tool call)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

pytest.importorskip("opentelemetry.sdk")

from IPython.core.interactiveshell import InteractiveShell
from IPython.testing.globalipapp import start_ipython
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from kimi_jupyter.agent.loop import AgentStrategy
from kimi_jupyter.display import NullRenderer
from kimi_jupyter.session import get_session
from kimi_jupyter.testing import Reply, ToolCall
from kimi_jupyter.turn import TurnRequest, run_turn

KEY = "sk-test-simulator"
_EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def _provider():
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
    trace.set_tracer_provider(provider)  # once per process: the API keeps the first
    yield


@pytest.fixture
def spans():
    _EXPORTER.clear()
    return _EXPORTER


@dataclass(frozen=True)
class Decision:
    approved: bool
    how: str


def plain(prompt="hi", **settings):
    session = get_session()
    return run_turn(session, TurnRequest(content=prompt, settings=session.settings(**settings)), NullRenderer())


def by_operation(exported):
    found: dict[str, list] = {}
    for span in exported.get_finished_spans():
        found.setdefault(span.attributes["gen_ai.operation.name"], []).append(span)
    return found


def test_no_spans_unless_tracing_is_on(kimi_sim_env, spans):
    kimi_sim_env.queue(Reply(text="ok"))
    plain()
    assert spans.get_finished_spans() == ()


def test_a_plain_turn_is_one_chat_span_without_content(kimi_sim_env, spans):
    kimi_sim_env.queue(Reply(text="The secret answer", reasoning="r"))
    plain("my private question", tracing=True)
    (span,) = spans.get_finished_spans()
    attrs = dict(span.attributes)
    assert span.name == "chat kimi-k2.5" and span.kind == trace.SpanKind.CLIENT
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "moonshot"
    assert attrs["gen_ai.request.model"] == "kimi-k2.5"
    assert attrs["gen_ai.usage.input_tokens"] > 0 and attrs["gen_ai.usage.output_tokens"] > 0
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert attrs["server.address"] == "127.0.0.1"
    assert attrs["gen_ai.conversation.id"]
    dumped = json.dumps(attrs, default=str)
    assert "private question" not in dumped and "secret answer" not in dumped


def test_content_only_when_asked_and_never_the_key(kimi_sim_env, spans):
    kimi_sim_env.queue(Reply(text="The answer"))
    plain(f"my question with {KEY}", tracing=True, trace_content=True)
    (span,) = spans.get_finished_spans()
    assert "my question" in span.attributes["gen_ai.input.messages"]
    assert "The answer" in span.attributes["gen_ai.output.messages"]
    assert KEY not in json.dumps(dict(span.attributes), default=str)


def test_an_agent_turn_is_invoke_agent_with_chat_and_execute_tool_children(kimi_sim_env, spans):
    start_ipython()
    shell = InteractiveShell.instance()
    kimi_sim_env.queue(Reply(reasoning="r", tool_calls=[ToolCall("list_variables", {})]),
                       Reply(reasoning="r", tool_calls=[ToolCall("run_python", {"code": "1/0"})]),
                       Reply(reasoning="r", text="done"))
    session = get_session()
    request = TurnRequest(content="go", settings=session.settings(tracing=True), source="magic",
                          strategy=AgentStrategy(shell, lambda *a: Decision(True, "test")))
    response = run_turn(session, request, NullRenderer())
    assert response.error is None
    ops = by_operation(spans)
    (agent,) = ops["invoke_agent"]
    assert agent.name == "invoke_agent kimi_jupyter" and agent.attributes["gen_ai.agent.name"] == "kimi_jupyter"
    assert len(ops["chat"]) == 3 and len(ops["execute_tool"]) == 2
    for child in ops["chat"] + ops["execute_tool"]:
        assert child.parent is not None and child.parent.span_id == agent.context.span_id
        assert child.context.trace_id == agent.context.trace_id
        assert child.attributes["gen_ai.conversation.id"] == agent.attributes["gen_ai.conversation.id"]
    tools = {s.attributes["gen_ai.tool.name"]: s for s in ops["execute_tool"]}
    assert set(tools) == {"list_variables", "run_python"}
    assert tools["run_python"].name == "execute_tool run_python"
    assert tools["run_python"].attributes["gen_ai.tool.type"] == "function"
    assert tools["run_python"].attributes["gen_ai.tool.call.id"]
    assert tools["run_python"].attributes["error.type"] == "ZeroDivisionError"
    assert tools["run_python"].status.status_code == trace.StatusCode.ERROR
    assert "gen_ai.tool.call.arguments" not in tools["run_python"].attributes
    total_in = sum(s.attributes["gen_ai.usage.input_tokens"] for s in ops["chat"])
    assert agent.attributes["gen_ai.usage.input_tokens"] == total_in


def test_the_conversation_id_is_stable_per_chat(kimi_sim_env, spans):
    kimi_sim_env.queue(Reply(text="a"), Reply(text="b"))
    plain(tracing=True)
    plain(tracing=True)
    first, second = spans.get_finished_spans()
    assert first.attributes["gen_ai.conversation.id"] == second.attributes["gen_ai.conversation.id"]


def test_a_failed_request_is_an_error_span(kimi_sim_env, spans):
    from kimi_jupyter.testing import Fault

    kimi_sim_env.fault(Fault.status(400, "invalid_request_error", "bad request"))
    response = plain(tracing=True, max_retries=0)
    assert response.error is not None
    (span,) = spans.get_finished_spans()
    assert span.status.status_code == trace.StatusCode.ERROR and span.attributes["error.type"]


async def test_the_async_driver_exports_the_same_span(kimi_sim_env, spans):
    import kimi_jupyter

    kimi_sim_env.queue(Reply(text="async"))
    response = await kimi_jupyter.aask("hi", tracing=True, display="none")
    assert response.text == "async"
    (span,) = spans.get_finished_spans()
    assert span.name == "chat kimi-k2.5" and span.attributes["gen_ai.usage.output_tokens"] > 0
