"""The saved bundle, the Markdown->HTML converter and the usage table."""

from __future__ import annotations

import html
import json
import re

import pytest

from kimi_jupyter.display import (
    TurnMeta,
    UsageRow,
    final_bundle,
    markdown_to_html,
    safe_markdown,
    usage_table,
)
from kimi_jupyter.events import (
    ApprovalRequested,
    ApprovalResolved,
    Done,
    Event,
    Failed,
    ReasoningDelta,
    TextDelta,
    ToolCallFinished,
    ToolCallRequested,
    ToolCallStarted,
    Usage,
)
from kimi_jupyter.response import Response

META = TurnMeta(model="kimi-k2.5", thinking=True)
HOSTILE = "<script>alert('x')</script><img src=x onerror=alert(1)>"


def turn(*events: Event) -> Response:
    return Response().feed_all(events)


def test_plain_answer_bundle_has_its_formats_and_the_text() -> None:
    bundle = final_bundle(turn(TextDelta("Hello "), TextDelta("world."), Done("stop")), META)
    assert set(bundle) == {"application/vnd.kimi.response+json", "text/html", "text/markdown", "text/plain"}
    rich = bundle["application/vnd.kimi.response+json"]
    assert rich["text"] == "Hello world." and rich["meta"]["model"] == "kimi-k2.5"
    json.dumps(rich)  # JSON-ready
    assert bundle["text/plain"].startswith("Hello world.\n")
    assert "<p>Hello world.</p>" in bundle["text/html"]
    assert bundle["text/markdown"].startswith("Hello world.")
    assert "kimi-k2.5 · thinking on · done" in bundle["text/html"]
    assert "usage: not reported by the server" in bundle["text/plain"]


def test_reasoning_is_folded_and_summarised() -> None:
    response = turn(ReasoningDelta("a" * 400), TextDelta("answer"), Done("stop"))
    bundle = final_bundle(response, META)
    assert "[reasoning: 400 chars]" in bundle["text/plain"]
    assert "a" * 400 not in bundle["text/plain"]
    html_reasoning = re.search(
        r'<details class="kimi-reasoning"[^>]*>(.*?)</details>', bundle["text/html"], re.S
    )
    assert html_reasoning and "a" * 400 in html_reasoning.group(1)
    assert "<details open" not in bundle["text/html"]
    assert "Reasoning · ~100 tokens" in bundle["text/html"]
    assert "<details><summary>Reasoning · ~100 tokens</summary>" in bundle["text/markdown"]
    assert bundle["text/markdown"].index("answer") < bundle["text/markdown"].index("<details>")


def test_reported_reasoning_tokens_replace_the_estimate() -> None:
    response = turn(
        ReasoningDelta("abc" * 10), TextDelta("x"), Usage(prompt=5, completion=50, reasoning=42, total=55)
    )
    assert "Reasoning · 42 tokens" in final_bundle(response, META)["text/html"]


def test_tool_steps_done_denied_and_error() -> None:
    response = turn(
        ToolCallRequested("c1", "run_python", '{"code": "1+1"}'),
        ToolCallStarted("c1", "run_python", '{"code": "1+1"}'),
        ToolCallFinished("c1", "2", None, 0.25),
        ApprovalRequested("c2", "run_python", "import shutil"),
        ApprovalResolved("c2", approved=False),
        ToolCallFinished("c2", "the user said no", None, 0.0),
        ToolCallStarted("c3", "get_variable", '{"name": "df"}'),
        ToolCallFinished("c3", "", "NameError: df", 0.01),
        TextDelta("ok"),
        Done("stop"),
    )
    bundle = final_bundle(response, META)
    plain = bundle["text/plain"]
    assert '[tool run_python · done] {"code": "1+1"}' in plain
    assert "[tool run_python · denied] import shutil" in plain
    assert "[tool get_variable · error: NameError: df]" in plain
    assert bundle["text/html"].count('<details class="kimi-step"') == 3
    assert "tool: run_python · denied" in bundle["text/html"]
    assert "NameError: df" in bundle["text/html"]
    assert bundle["text/markdown"].count("<details><summary>tool: ") == 3


@pytest.mark.parametrize(
    ("usage", "plain", "html"),
    [
        (Usage.not_reported(), "usage: not reported by the server", "usage: not reported by the server"),
        (
            Usage(
                prompt=1200,
                cached=1000,
                completion=300,
                reasoning=120,
                total=1500,
                cost=0.0123,
                currency="CNY",
            ),
            "usage: prompt 1200 (1000 cached), completion 300 (120 reasoning), total 1500 tokens, cost ¥0.0123",
            "<td",
        ),
        (Usage(prompt=10, completion=2, total=12, cost=0.5, currency="USD"), "cost $0.5", "$0.5"),
        (
            Usage(prompt=10, completion=2, total=12, cost=3.0, currency="EUR"),
            "cost 3.000000 EUR",
            "3.000000 EUR",
        ),
    ],
)
def test_usage_line_and_table(usage: Usage, plain: str, html: str) -> None:
    bundle = final_bundle(turn(TextDelta("x"), usage, Done("stop")), META)
    assert plain in bundle["text/plain"].splitlines()[-1]
    assert html in bundle["text/html"]
    assert ("kimi-usage" in bundle["text/html"]) and (usage.reported == ("<table" in bundle["text/html"]))


def test_usage_table_shows_cached_reasoning_and_context_fill() -> None:
    usage = Usage(prompt=100_000, cached=90_000, completion=31_072, reasoning=1000, total=131_072)
    bundle = final_bundle(turn(TextDelta("x"), usage), TurnMeta("kimi-k2.5", False, context_window=262_144))
    for cell in ("100,000", "90,000", "31,072", "1,000", "131,072", "50.0% of 262,144"):
        assert f">{cell}</td>" in bundle["text/html"]
    assert "context 50.0% of 262,144" in bundle["text/plain"]
    assert "thinking off" in bundle["text/html"]


def test_failed_turn_keeps_the_partial_text_and_says_why() -> None:
    response = turn(TextDelta("partial answ"), Failed("rate limited: retry in 3 s", kind="RateLimitError"))
    bundle = final_bundle(response, META)
    assert bundle["text/plain"].startswith(
        "partial answ\n\n[failed (RateLimitError): rate limited: retry in 3 s]"
    )
    assert "failed (RateLimitError): rate limited" in bundle["text/html"]
    assert "partial answ" in bundle["text/html"]
    assert "· failed</div>" in bundle["text/html"]
    assert "**failed (RateLimitError): rate limited: retry in 3 s**" in bundle["text/markdown"]


def test_failed_turn_without_text() -> None:
    bundle = final_bundle(turn(Failed("wrong API key")), META)
    assert bundle["text/plain"].startswith("[failed: wrong API key]")


def test_cut_and_interrupted_turns_are_marked_partial() -> None:
    cut = final_bundle(turn(TextDelta("half"), Done(None, cut=True)), META)
    assert "[the stream was cut before the end; the answer is partial]" in cut["text/plain"]
    assert "· cut</div>" in cut["text/html"]
    interrupted = final_bundle(turn(TextDelta("half")), META)
    assert "[interrupted; the answer is partial]" in interrupted["text/plain"]


def _rich_turn(seconds: float) -> Response:
    return turn(
        ReasoningDelta("think"),
        ToolCallStarted("call_abc", "run_python", "x = y"),
        ToolCallFinished("call_abc", "done", None, seconds),
        TextDelta("The answer is forty-two."),
        Usage(prompt=7, completion=9, total=16, cost=0.001, currency="CNY"),
        Done("stop"),
    )


def test_bundle_is_deterministic_and_free_of_timings_and_ids() -> None:
    first = final_bundle(_rich_turn(1.234567), META)
    second = final_bundle(_rich_turn(9.876543), META)
    assert first == second  # tool durations never reach the saved output
    assert final_bundle(_rich_turn(1.234567), META) == first
    for text in first.values():
        assert "call_abc" not in text
        assert "1.23" not in text and "9.87" not in text
    digits = set(re.findall(r"\d+", first["text/plain"]))
    assert digits <= {"5", "7", "9", "16", "0", "001"}  # the reasoning size and the usage, nothing else


def test_model_text_is_escaped_everywhere() -> None:
    response = turn(
        ReasoningDelta(HOSTILE),
        ToolCallStarted("c1", "run_python", HOSTILE),
        ToolCallFinished("c1", HOSTILE, None, 0.1),
        TextDelta(
            f"# Title {HOSTILE}\n\n{HOSTILE}\n\n[x](javascript:alert(1)) `{HOSTILE}`\n\n| a |\n|---|\n| {HOSTILE} |"
        ),
        Failed(HOSTILE),
    )
    bundle = final_bundle(response, META)
    markdown_outside_code = re.sub(r"`[^`]*`", "", bundle["text/markdown"])  # code spans render literally
    for text in (bundle["text/html"], markdown_outside_code):
        assert "<script" not in text.lower()
        assert "<img" not in text.lower()
    assert 'href="javascript' not in bundle["text/html"].lower()
    assert not re.search(r"(?<!\\)\]\(javascript:", bundle["text/markdown"], re.I)  # "\]" is a literal
    assert "&lt;script&gt;" in bundle["text/html"]
    assert HOSTILE in bundle["text/plain"]  # plain text is not markup


def test_markdown_to_html_code_fences_lists_tables() -> None:
    source = (
        "## Plan\n\nUse *pandas* and **numpy**, see [docs](https://pandas.pydata.org/a_b_c).\n\n"
        "- load\n- clean\n  - drop `NaN`\n- plot\n\n"
        "1. first\n2. second\n\n"
        "```python\nif a < b:\n    print('<ok>')\n```\n\n"
        "| col | n |\n|:---|---:|\n| a_b | 1 |\n| c | 2 |\n\n"
        "> note\n\n---\n"
    )
    out = markdown_to_html(source)
    assert "<h2>Plan</h2>" in out
    assert "<em>pandas</em>" in out and "<strong>numpy</strong>" in out
    assert '<a href="https://pandas.pydata.org/a_b_c" rel="noopener noreferrer nofollow">docs</a>' in out
    assert (
        "<ul>\n<li>load</li>\n<li>clean\n<ul>\n<li>drop <code>NaN</code></li>\n</ul>\n</li>\n<li>plot</li>\n</ul>"
        in out
    )
    assert "<ol>\n<li>first</li>\n<li>second</li>\n</ol>" in out
    code = re.search(r'<pre><code class="language-python">(.*?)</code></pre>', out, re.S)
    assert code is not None
    assert html.unescape(re.sub(r"<[^>]+>", "", code.group(1))) == "if a < b:\n    print('<ok>')\n"
    assert '<th style="text-align:left">col</th>' in out and '<th style="text-align:right">n</th>' in out
    assert '<td style="text-align:left">a_b</td>' in out
    assert "<blockquote>\n<p>note</p>\n</blockquote>" in out and "<hr />" in out


def test_markdown_to_html_edge_cases() -> None:
    assert markdown_to_html("```\nunclosed <fence>") == "<pre><code>unclosed &lt;fence&gt;</code></pre>"
    assert markdown_to_html("math $x_1 + y_2$ and snake_case") == "<p>math $x_1 + y_2$ and snake_case</p>"
    assert markdown_to_html("[a](data:text/html,x) <https://x.org>") == (
        '<p>[a](data:text/html,x) <a href="https://x.org" rel="noopener noreferrer nofollow">https://x.org</a></p>'
    )
    assert markdown_to_html("\\*not em\\*") == "<p>*not em*</p>"
    assert markdown_to_html("") == ""


def test_safe_markdown_keeps_code_but_neutralises_html() -> None:
    source = "hi <b>x</b> `a<b` [l](javascript:alert(1))\n```html\n<div>kept</div>\n```\nafter <i>"
    out = safe_markdown(source)
    assert out.startswith("hi &lt;b&gt;x&lt;/b&gt; `a<b` \\[l\\](javascript:alert(1))")
    assert "```html\n<div>kept</div>\n```" in out
    assert out.endswith("after &lt;i&gt;")


def test_usage_table_by_kind_with_totals() -> None:
    bundle = usage_table(
        [
            UsageRow(
                "kimi-k2.5",
                Usage(
                    prompt=1000,
                    cached=800,
                    completion=200,
                    reasoning=50,
                    total=1200,
                    cost=0.01,
                    currency="CNY",
                ),
                3,
            ),
            ("kimi-k2.5 (agent)", Usage(prompt=10, completion=5, total=15, cost=0.002, currency="CNY"), 1),
            UsageRow("self-hosted", Usage.not_reported(), 2),
        ]
    )
    lines = bundle["text/plain"].splitlines()
    assert lines[0].split() == [
        "kind",
        "requests",
        "prompt",
        "cached",
        "completion",
        "reasoning",
        "total",
        "cost",
    ]
    assert lines[4].split() == ["total", "6", "1,010", "800", "205", "50", "1,215", "¥0.012"]
    assert lines[3].split() == ["self-hosted", "2", "–", "–", "–", "–", "–", "–"]
    # Reasoning tokens the server did not report apart are in completion: not "–" (none).
    assert lines[2].split() == ["kimi-k2.5", "(agent)", "1", "10", "–", "5", "n/r", "15", "¥0.002"]
    assert lines[-1].startswith("reasoning n/r: not reported separately by the server")
    assert bundle["text/html"].count("<tr>") == 5
    assert usage_table([])["text/plain"] == "no requests yet in this session"


def test_usage_table_takes_the_session_ledger_as_it_is() -> None:
    session = pytest.importorskip("kimi_jupyter.session")
    ledger = session.UsageLedger()
    ledger.add("magic", Usage(prompt=100, completion=20, total=120, cost=0.001, currency="CNY"))
    ledger.add("magic", Usage.not_reported())
    ledger.add("ask", Usage(prompt=5, completion=5, total=10, cost=0.0001, currency="CNY"))
    bundle = usage_table(ledger)
    lines = bundle["text/plain"].splitlines()
    assert [line.split()[:3] for line in lines[1:4]] == [
        ["magic", "2", "100"],
        ["ask", "1", "5"],
        ["total", "3", "105"],
    ]
    assert lines[-2] == "1 request(s) had no usage reported by the server"
    assert lines[-1].startswith("reasoning n/r:")
    assert "had no usage reported" in bundle["text/html"] and "reasoning n/r" in bundle["text/html"]


def test_a_failed_turn_does_not_blame_the_server_for_missing_usage() -> None:
    at_once = final_bundle(turn(Failed("No API key: set MOONSHOT_API_KEY", "MissingKey")), META)
    part_way = final_bundle(
        turn(TextDelta("Half an ans"), Failed("connection lost", "KimiConnectionError", partial=True)), META
    )
    for mime in ("text/plain", "text/markdown", "text/html"):
        assert "usage" not in at_once[mime]  # nothing was sent, nothing to count
        assert "not reported by the server" not in part_way[mime]
        assert "usage: unknown (the answer did not finish)" in part_way[mime]


def test_exported_code_blocks_are_highlighted_without_a_band_per_line() -> None:
    hostile = "print('<script>alert(1)</script>')  # \" onload=x"
    answer = f"Run this:\n\n```python\nimport math\n{hostile}\n```\n\n```\nplain block\n```\n"
    markup = final_bundle(turn(TextDelta(answer), Done("stop")), META)["text/html"]
    block = re.search(r'<pre style="[^"]*"><code class="language-python" style="([^"]*)">(.*?)</code></pre>',
                      markup, re.S)
    assert block is not None
    assert "background:none" in block.group(1) and "padding:0" in block.group(1)  # no band per line
    assert '<span style="color:' in block.group(2)  # Pygments colours, inline (no stylesheet needed)
    assert "<script>" not in markup and "&lt;script&gt;" in block.group(2)  # still escaped
    assert re.sub(r"<[^>]+>", "", block.group(2)).count("import") == 1
    assert '<code style="background:none' in markup  # a block without a language: no band either
