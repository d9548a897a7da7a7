"""The coalescer and the three live renderers, driven by synthetic streams and a fake clock."""

from __future__ import annotations

import io
import itertools
import subprocess
import sys
from typing import Any

import pytest

from kimi_jupyter.display import (
    Coalescer,
    LiveView,
    MarkdownRenderer,
    NullRenderer,
    PlainRenderer,
    Renderer,
    TurnMeta,
    choose_renderer,
    final_bundle,
)
from kimi_jupyter.events import (
    ApprovalRequested,
    ApprovalResolved,
    Done,
    Event,
    Failed,
    Notice,
    ReasoningDelta,
    Retrying,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    Usage,
)
from kimi_jupyter.response import Response

META = TurnMeta(model="kimi-k2.5", thinking=True, context_window=262_144)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def run(
    renderer: Renderer, events: list[Event], clock: FakeClock | None = None, step: float = 0.0
) -> Response:
    response = Response()
    renderer.start(META)
    for event in events:
        if clock is not None:
            clock.now += step
        response.feed(event)
        renderer.handle(event)
    renderer.finish(response)
    return response


# --- coalescer ---------------------------------------------------------------


def test_coalescer_flushes_about_ten_times_a_second_and_loses_nothing() -> None:
    clock = FakeClock()
    seen: list[str] = []
    coalescer = Coalescer(lambda c: seen.append(c.response.text), clock=clock)
    words = [f"w{i} " for i in range(5000)]
    for word in words:
        clock.now += 1.0 / 5000
        coalescer.feed(TextDelta(word))
    coalescer.finish()
    assert len(seen) <= 12  # ~10 in the simulated second, plus the first event, plus finish
    assert coalescer.flushes == len(seen)
    assert seen[-1] == "".join(words)
    assert all(b.startswith(a) for a, b in itertools.pairwise(seen))  # snapshots only grow


def test_coalescer_paints_the_first_event_at_once_and_urgent_events_immediately() -> None:
    clock = FakeClock()
    coalescer = Coalescer(lambda c: None, clock=clock)
    assert coalescer.feed(ReasoningDelta("a")) is True
    assert coalescer.feed(ReasoningDelta("b")) is False
    assert coalescer.phase == "thinking" and coalescer.dirty
    assert coalescer.feed(ToolCallStarted("c", "run_python", "1")) is True  # the tool may run for minutes
    assert coalescer.phase == "calling tools"
    assert coalescer.feed(ApprovalRequested("d", "run_python", "x")) is True
    assert coalescer.feed(Retrying(1, 3.0, "rate limited")) is True
    assert coalescer.response.reasoning == "ab"


def test_coalescer_times_reasoning_spans() -> None:
    clock = FakeClock()
    coalescer = Coalescer(lambda c: None, clock=clock)
    coalescer.feed(ReasoningDelta("a"))
    clock.now += 2.0
    coalescer.feed(ReasoningDelta("b"))
    assert coalescer.reasoning_active
    clock.now += 1.0
    coalescer.feed(TextDelta("x"))
    assert not coalescer.reasoning_active and coalescer.phase == "answering"
    clock.now += 5.0
    assert coalescer.reasoning_seconds() == pytest.approx(3.0)
    coalescer.feed(Done("stop"))
    assert coalescer.phase == "done"


# --- plain text --------------------------------------------------------------


STREAM: list[Event] = [
    ReasoningDelta("The user wants "),
    ReasoningDelta("a sum."),
    ToolCallStarted("c1", "run_python", '{"code": "1+1"}'),
    ToolCallFinished("c1", "2", None, 0.5),
    ApprovalRequested("c2", "run_python", "import os"),
    ApprovalResolved("c2", approved=False),
    ToolCallFinished("c2", "denied", None, 0.0),
    Retrying(1, 3.0, "rate limited"),
    Notice("replayed from cache"),
    TextDelta("The answer "),
    TextDelta("is 2."),
    Usage(prompt=12, completion=7, cached=4, reasoning=3, total=19, cost=0.0001, currency="CNY"),
    Done("stop"),
]


def test_plain_renderer_streams_reasoning_then_answer_then_usage() -> None:
    out = io.StringIO()
    run(PlainRenderer(out), STREAM)
    assert out.getvalue() == (
        "thinking:\n"
        "The user wants a sum.\n"
        '[tool] run_python {"code": "1+1"}\n'
        "[tool] run_python done in 0.5 s -> 2\n"
        "[approval] run_python is waiting for your yes or no\n"
        "[approval] run_python denied\n"
        "[tool] run_python not run (denied)\n"
        "[retrying in 3 s (rate limited)]\n"
        "[info] replayed from cache\n"
        "The answer is 2.\n"
        "usage: prompt 12 (4 cached), completion 7 (3 reasoning), total 19 tokens, cost ¥0.0001,"
        " context 0.0% of 262,144\n"
    )


def test_plain_renderer_separates_trace_and_answer_and_reports_failures() -> None:
    out = io.StringIO()
    run(PlainRenderer(out, color=False), [ReasoningDelta("hmm"), TextDelta("par"), Failed("connection lost")])
    assert (
        out.getvalue()
        == "thinking:\nhmm\n\npar\n[failed: connection lost]\nusage: unknown (the answer did not finish)\n"
    )
    out = io.StringIO()
    run(PlainRenderer(out, color=False), [TextDelta("half"), Done(None, cut=True)])
    assert "half\n[the stream was cut before the end; the answer is partial]\n" in out.getvalue()
    out = io.StringIO()
    run(PlainRenderer(out, color=False), [TextDelta("half")])
    assert "half\n[interrupted; the answer is partial]\n" in out.getvalue()


def test_plain_renderer_flushes_its_stream_at_most_ten_times_a_second() -> None:
    class CountingStream(io.StringIO):
        flushes = 0

        def flush(self) -> None:
            self.flushes += 1

    clock = FakeClock()
    out = CountingStream()
    run(PlainRenderer(out, clock=clock), [TextDelta("x")] * 5000, clock, step=1.0 / 5000)
    assert out.getvalue().startswith("x" * 5000)
    assert out.flushes <= 12


def test_plain_renderer_dims_reasoning_on_a_terminal() -> None:
    out = io.StringIO()
    run(PlainRenderer(out, color=True), [ReasoningDelta("why"), TextDelta("ok")])
    assert "\x1b[2mwhy\x1b[0m" in out.getvalue()


# --- Markdown handle ---------------------------------------------------------


class FakeHandle:
    def __init__(self, bundle: dict[str, str]) -> None:
        self.bundles = [bundle]

    def update(self, bundle: dict[str, str], raw: bool = False) -> None:
        assert raw
        self.bundles.append(bundle)


def test_markdown_renderer_coalesces_and_ends_with_the_static_bundle() -> None:
    handles: list[FakeHandle] = []
    clock = FakeClock()
    renderer = MarkdownRenderer(clock=clock, display=lambda b: handles.append(FakeHandle(b)) or handles[-1])
    events: list[Event] = [ReasoningDelta("r")] * 100 + [TextDelta("w ")] * 5000 + [Done("stop")]
    response = run(renderer, events, clock, step=1.0 / 5100)
    (handle,) = handles
    assert len(handle.bundles) <= 14  # the first display, ~11 repaints, the final bundle
    assert "waiting" in handle.bundles[0]["text/markdown"]
    assert any("<details open>" in b["text/markdown"] for b in handle.bundles[1:-1])
    assert handle.bundles[-1] == final_bundle(response, META)


def test_markdown_renderer_shows_retries_and_neutralises_html() -> None:
    handles: list[FakeHandle] = []
    renderer = MarkdownRenderer(display=lambda b: handles.append(FakeHandle(b)) or handles[-1])
    renderer.start(META)
    renderer.handle(Retrying(2, 3.0, "rate limited"))
    assert "**retrying in 3 s (rate limited)**" in handles[0].bundles[-1]["text/markdown"]
    renderer.handle(ToolCallStarted("c", "run_python", "<script>x</script>"))
    renderer.handle(TextDelta("<script>alert(1)</script>"))
    renderer.handle(Notice("flush"))
    renderer.handle(ToolCallStarted("d", "run_python", "y"))  # urgent: repaints now
    live = handles[0].bundles[-1]["text/markdown"]
    assert "<script" not in live and "&lt;script&gt;" in live
    assert "retrying" not in live  # the retry note goes once content flows again


# --- live widget view (no kernel: the display calls are captured) --------------


class Published:
    def __init__(self) -> None:
        self.displayed: list[tuple[dict[str, Any], str]] = []
        self.updated: list[tuple[dict[str, Any], str]] = []


def live_view(clock: FakeClock) -> tuple[LiveView, Published]:
    published = Published()
    view = LiveView(
        clock=clock,
        display=lambda b, i: published.displayed.append((b, i)),
        update=lambda b, i: published.updated.append((b, i)),
    )
    return view, published


def test_live_view_builds_folds_and_is_replaced_by_the_static_bundle() -> None:
    clock = FakeClock()
    view, published = live_view(clock)
    view.start(META)
    ((first, display_id),) = published.displayed
    assert "application/vnd.jupyter.widget-view+json" in first
    assert "live view" in first["text/plain"]

    view.handle(ReasoningDelta("x" * 400))
    assert view.reasoning.selected_index == 0  # open while thinking
    assert view.reasoning.titles == ("Thinking…",)
    assert view.box.children == (view.header, view.reasoning)
    assert "thinking (~100 tokens) · 0 s" in view.header.value

    clock.now += 2.0
    view.handle(TextDelta("Here:\n```python\nprint('a<b')\n```\n"))
    assert view.reasoning.selected_index is None  # folded once the answer starts
    assert view.reasoning.titles[0] == "Reasoning · ~100 tokens · 2 s"
    (output,) = view.answer.outputs
    assert output["data"]["text/markdown"].startswith("Here:\n\n```python")
    assert "Copy python #1" in view.code.value and "navigator.clipboard" in view.code.value
    assert "print(&#x27;a&lt;b&#x27;)" in view.code.value

    clock.now += 0.5
    view.handle(ToolCallStarted("c1", "run_python", '{"code": "2+2"}'))
    assert "run_python</b> · running" in view.steps.value
    view.handle(Retrying(1, 3.0, "rate limited"))
    assert "retrying in 3 s (rate limited)" in view.note.value
    assert view.box.children[:2] == (view.header, view.note)
    view.handle(Usage(prompt=10, completion=20, total=30))

    response = Response().feed_all([ReasoningDelta("x" * 400), TextDelta("Here:"), Done("stop")])
    widgets = [view.box, view.header, view.answer, view.reasoning, view.trace]
    view.finish(response)
    assert published.updated == [(final_bundle(response, META), display_id)]
    assert all(widget.comm is None for widget in widgets)  # closed: nothing left to save


def test_live_view_sends_few_widget_changes_for_a_fast_stream() -> None:
    clock = FakeClock()
    view, _ = live_view(clock)
    view.start(META)
    changes: list[str] = []
    for widget in (view.header, view.trace, view.answer, view.code, view.reasoning, view.box):
        widget.observe(
            lambda change: changes.append(change["name"]), names=["value", "outputs", "titles", "children"]
        )
    events: list[Event] = [ReasoningDelta("r ")] * 500 + [TextDelta("w ")] * 5000
    for event in events:
        clock.now += 1.0 / len(events)
        view.handle(event)
    assert view.repaints <= 12
    assert len(changes) <= 12 + 2 + 6  # one per repaint, the header once a second, a few transitions
    view.finish(Response().feed_all(events))


def test_live_view_failed_turn_shows_one_clear_line() -> None:
    clock = FakeClock()
    view, published = live_view(clock)
    view.start(META)
    view.handle(TextDelta("partial"))
    clock.now += 1
    view.handle(Failed("quota exhausted: top up your account"))
    assert "failed: quota exhausted" in view.note.value
    response = Response().feed_all([TextDelta("partial"), Failed("quota exhausted: top up your account")])
    view.finish(response)
    assert "partial" in published.updated[0][0]["text/plain"]


# --- choosing ----------------------------------------------------------------


def test_choose_renderer_modes() -> None:
    assert isinstance(choose_renderer("none"), NullRenderer)
    assert isinstance(choose_renderer("text"), PlainRenderer)
    assert isinstance(choose_renderer("markdown"), MarkdownRenderer)
    assert isinstance(choose_renderer("widget"), LiveView)
    assert isinstance(choose_renderer("auto"), PlainRenderer)  # no IPython kernel here
    with pytest.raises(ValueError, match="unknown display mode 'fancy'"):
        choose_renderer("fancy")
    for renderer in (NullRenderer(), PlainRenderer(), MarkdownRenderer(), LiveView()):
        assert isinstance(renderer, Renderer)


def test_choose_renderer_auto_picks_widgets_in_a_kernel_shell() -> None:
    class ZMQInteractiveShell:  # stands in for ipykernel's shell (matched by class name)
        pass

    class ColabShell(ZMQInteractiveShell):
        pass

    class TerminalInteractiveShell:
        pass

    assert isinstance(choose_renderer("auto", ColabShell()), LiveView)
    assert isinstance(choose_renderer("auto", TerminalInteractiveShell()), PlainRenderer)


def test_importing_the_display_package_does_not_import_ipywidgets() -> None:
    code = "import sys, kimi_jupyter.display; print('ipywidgets' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "False"


def test_live_view_points_to_the_approval_box_and_shows_the_code_once() -> None:
    clock = FakeClock()
    view, _ = live_view(clock)
    view.start(META)
    view.handle(TextDelta("I will run this."))
    code = "import os\n" + "\n".join(f"print({i})" for i in range(50)) + "\nos.remove('<file>')"
    view.handle(ApprovalRequested("c1", "run_python", code))  # urgent: painted before the prompt blocks
    assert "awaiting approval" in view.header.value
    # The approval box below the view shows the whole code with its buttons: not twice.
    assert "see the code and answer below" in view.steps.value
    assert "os.remove" not in view.steps.value and "print(49)" not in view.steps.value
    view.handle(ApprovalResolved("c1", approved=True))
    view.finish(Response())


def test_live_view_text_is_single_spaced() -> None:
    """ipywidgets' HTML widget has a 28 px line height; the trace and the steps set their own."""
    from kimi_jupyter.events import ToolCallFinished, ToolCallStarted

    clock = FakeClock()
    view, _ = live_view(clock)
    view.start(META)
    view.handle(ReasoningDelta("line one\nline two"))
    view.handle(ToolCallStarted("c1", "list_variables", "{}"))
    view.handle(ToolCallFinished("c1", "df: DataFrame\nx: int", None, 0.1))
    clock.now += 1
    view.handle(TextDelta("done"))
    assert "line-height:1.45" in view.trace.value and "line one\nline two" in view.trace.value
    assert "line-height:1.45" in view.steps.value
    view.finish(Response())


def test_highlighted_code_spells_quotes_one_way_whatever_the_pygments_release() -> None:
    """Pygments 2.20 wrote &quot;/&#39; where 2.21 writes plain quotes; saved outputs keep one form."""
    from kimi_jupyter.untrusted import markdown_to_html

    html_out = markdown_to_html('```python\nx = "a\'b" if y < 1 & 2 else \'&quot;\'\n```')
    assert "<span" in html_out  # highlighted
    assert "&quot;" not in html_out.replace("&amp;quot;", "") and "&#39;" not in html_out
    assert "&quot;a'b&quot;" not in html_out and "\"a'b\"" in html_out
    assert "&lt;" in html_out and "&amp;" in html_out and "&amp;quot;" in html_out  # still escaped
