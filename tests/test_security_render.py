"""Model text is untrusted: one rendering policy for HTML, Markdown and every surface.

Unit tests run the listed attack shapes through ``markdown_to_html`` and ``safe_markdown``;
the Markdown we publish is checked by rendering it again with a lax CommonMark renderer
(raw HTML on, every link scheme accepted), as a frontend would. A hypothesis fuzz checks the
policy on arbitrary mixes of Markdown and HTML fragments. Kernel tests run ``%%kimi`` in a
real ipykernel against the simulator and check the live Markdown handle, the live widget
view's Markdown and the saved bundle (also through nbconvert).
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import nbformat
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from kimi_jupyter.display import TurnMeta, final_bundle, markdown_to_html, safe_markdown
from kimi_jupyter.display.markdown import live_markdown
from kimi_jupyter.events import Failed, Notice, ReasoningDelta, TextDelta, ToolCallFinished, ToolCallStarted
from kimi_jupyter.response import Response
from kimi_jupyter.testing import KimiSimulator, Reply
from kimi_jupyter.untrusted import GrowingMarkdown, link_allowed, markdown_text

from .kernels import run, running_kernel

# Tags markdown-it produces from Markdown (plus Pygments' spans); anything else in our
# output would have come from model HTML.
MARKDOWN_TAGS = {
    "a", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "li",
    "ol", "p", "pre", "s", "span", "strong", "table", "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip
ATTRIBUTES = {"href", "rel", "class", "style", "title", "start"}


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    handle_startendtag = handle_starttag


def tags_of(text: str) -> list[tuple[str, dict[str, str]]]:
    parser = _Tags()
    parser.feed(text)
    parser.close()
    return parser.tags


def assert_safe_html(out: str) -> None:
    """Only Markdown's own tags, no event handlers, and every link http/https/mailto."""
    for tag, attrs in tags_of(out):
        assert tag in MARKDOWN_TAGS, (tag, out)
        assert set(attrs) <= ATTRIBUTES, (tag, attrs)
        if tag == "a":
            assert link_allowed(html.unescape(attrs.get("href", ""))), attrs
        if "style" in attrs:
            assert "url(" not in attrs["style"].lower()


def lax_render(markdown: str) -> str:
    """A frontend's Markdown engine at its most permissive: raw HTML on, any link scheme."""
    md = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    md.validateLink = lambda url: True  # type: ignore[method-assign]
    return md.render(markdown)


def assert_safe_markdown(markdown: str) -> None:
    assert_safe_html(lax_render(markdown))


H = "http://127.0.0.1:9/x.png?d=secret"
ATTACKS = {
    "markdown image": f"![x]({H})",
    "raw img": f"<img src='{H}' onerror=alert(1)>",
    "escaped backtick before a tag": f'\\`<img src="{H}">` and \\` <script>alert(1)</script>',
    "unequal backtick runs": f'`` <img src="{H}"> ` then text',
    "backtick in a fence info string": f'```py`x\n<img src="{H}">\n```',
    "javascript link, destination on the next line": "[click](\njavascript:alert(1))",
    "reference definition": "[click][r]\n\n[r]: javascript:alert(1)",
    "reference definition, title": "[click]\n\n[click]:\n  javascript:alert(1)\n  'title'",
    "entity-encoded scheme": "[a](&#106;avascript:alert(1)) [b](&#x6A;avascript&colon;alert(1))",
    "autolinks": "<javascript:alert(1)> <data:text/html,x> <vbscript:x>",
    "data uri": "[d](data:text/html;base64,PHNjcmlwdD4=) ![i](data:image/png;base64,iVBORw0KGgo=)",
    "mixed case scheme": "[m](JaVaScRiPt:alert(1)) [n](  jAvAsCrIpT:alert(1))",
    "image in a link": f"[![x]({H})](https://example.org)",
    "image by reference": f"![x][i]\n\n[i]: {H}",
    "raw tags in lists, quotes, tables": f'- <svg onload=x>\n\n> <iframe src="{H}">\n\n| a |\n|---|\n| <img src="{H}"> |',
    "html block": f'<div>\n<img src="{H}">\n</div>',
    "math with html": f'$a<img src="{H}">b$ and $$[x](javascript:alert(1))$$',
    "escaped bang before a link": f"\\![x]({H}) and !\\[y\\]({H})",
    "escaped html in code": "`<img src=x>` and\n```html\n<img src=x onerror=alert(1)>\n```",
}


@pytest.mark.parametrize("source", list(ATTACKS.values()), ids=list(ATTACKS))
def test_attack_shapes_render_as_text(source: str) -> None:
    out = markdown_to_html(source)
    assert_safe_html(out)
    assert "<img" not in out and "<script" not in out and "<iframe" not in out
    assert "javascript:" not in " ".join(a.get("href", "") for _, a in tags_of(out)).lower()
    safe = safe_markdown(source)
    assert_safe_markdown(safe)
    assert "<img" not in lax_render(safe)
    assert_safe_html(markdown_to_html(safe))


def test_an_image_becomes_a_link_with_its_url_visible() -> None:
    out = markdown_to_html(f"See ![the chart]({H}).")
    assert out == (
        f'<p>See image: the chart (<a href="{html.escape(H)}" rel="noopener noreferrer nofollow">'
        f"{html.escape(H)}</a>).</p>"
    )
    rendered = lax_render(safe_markdown(f"See ![the chart]({H})."))
    assert "<img" not in rendered and f">{html.escape(H)}</a>" in rendered and "image: the chart" in rendered


def test_raw_html_is_shown_as_its_text() -> None:
    source = f"<img src='{H}' onerror=alert(1)> <b>bold?</b>"
    out = markdown_to_html(source)
    assert out == "<p>" + html.escape(source, quote=False) + "</p>"
    rendered = lax_render(safe_markdown(source))
    assert rendered == out + "\n"


def test_disallowed_links_stay_plain_text_and_allowed_ones_work() -> None:
    out = markdown_to_html("[a](javascript:alert(1)) [b](https://x.org/a_b) [c](mailto:a@b.c) [d](/relative)")
    hrefs = [attrs["href"] for tag, attrs in tags_of(out) if tag == "a"]
    assert hrefs == ["https://x.org/a_b", "mailto:a@b.c"]
    assert "[a](javascript:alert(1))" in out and "[d](/relative)" in out
    rendered = lax_render(safe_markdown("[a](javascript:alert(1)) [b](https://x.org/a_b) [d](/relative)"))
    assert [a["href"] for t, a in tags_of(rendered) if t == "a"] == ["https://x.org/a_b"]


def test_safe_markdown_keeps_the_meaning_of_ordinary_answers() -> None:
    source = (
        "## Plan\n\nUse *pandas* and **numpy** (see [docs](https://pandas.pydata.org)), `a < b`.\n\n"
        "- load\n- clean\n  - drop `NaN`\n\n3. third\n4. fourth\n\n"
        "> quoted *text*\n\n| col | n |\n|:---|---:|\n| a_b | 1 |\n\n"
        "$x_1 + y^2$ costs $5 and $10.\n\n```python\nif a < b:\n    print('<ok>')\n```\n"
    )
    assert lax_render(safe_markdown(source)) == MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(
        source
    )  # the same document, rendered by any CommonMark engine
    assert safe_markdown(safe_markdown(source)) == safe_markdown(source)


def test_math_stays_math_without_markup() -> None:
    out = safe_markdown("The bound $a<b$ holds, and $$\\left[x\\right]$$")
    assert "$a\\lt b$" in out and "\\left\\lbrack x\\right\\rbrack" in out
    assert markdown_to_html("$a<b$") == "<p>$a&lt;b$</p>"


def test_code_fences_are_highlighted_and_escaped() -> None:
    out = markdown_to_html("```python\nif a < b: print('<img src=x>')\n```")
    assert '<pre><code class="language-python">' in out
    assert "<img" not in out and "&lt;img src=x&gt;" in out
    pytest.importorskip("pygments")
    assert "<span style=" in out  # Pygments colours keywords when it is installed


def test_markdown_text_is_literal_in_any_renderer() -> None:
    note = f"server said: ![x]({H}) <img src=x> [a](javascript:x)\n- not a list"
    rendered = lax_render("**" + markdown_text(note) + "**")
    assert_safe_html(rendered)
    assert "<img" not in rendered and "<li>" not in rendered
    assert html.unescape(re.sub(r"<[^>]+>", "", rendered)).strip() == " ".join(note.split())


FRAGMENTS = st.sampled_from(
    [
        '<img src="http://h/x.png" onerror="alert(1)">', "<script>alert(1)</script>", "<b onclick=x>",
        "<svg onload=x>", "<iframe src=//h>", "<kbd>", "</p>", "<!-- c -->", "<?php ?>", "<a href=javascript:x>",
        "![a](http://h/x.png)", "![a][r]", "[a](javascript:x)", "[r]: javascript:x", "[r]: http://h/y.png",
        "[a]", "(", ")", "<", ">", "!", "[", "]", "`", "``", "```", "~~~", "\\", "&#106;", "&#x6A;", "&lt;",
        "&", ";", "javascript:", "JaVaScRiPt:", "data:text/html,", "http://h/", "mailto:a@b", "vbscript:",
        "$", "$$", "*", "_", "|", "-", "1.", "#", "> ", "    ", "\n", "\n\n", " ", "a", "word", '"', "'",
        ":", "=", "%0a", "\t", "|---|",
    ]
)  # fmt: skip


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(FRAGMENTS, max_size=40).map("".join))
def test_fuzz_the_policy(source: str) -> None:
    out = markdown_to_html(source)
    assert_safe_html(out)
    assert "<img" not in out.lower() and "<script" not in out.lower()
    safe = safe_markdown(source)
    assert_safe_markdown(safe)
    assert_safe_html(markdown_to_html(safe))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(FRAGMENTS, max_size=40).map("".join), st.lists(st.integers(1, 30), max_size=30))
# A fence line still being typed: ``` then a backtick on the same line is no fence after all.
@example(source='<kbd>\n```<img src="http://h/x.png" onerror="alert(1)">`', steps=[9])
# A table's delimiter row still being typed (the header line above it is in the balance too).
@example(source="/b ]\n .=-1\n/=\n  :/\n|~a-\n|-b b]>/", steps=[1] * 40)
@example(source="a\x00b\n\nc\x00", steps=[1] * 10)  # NUL is dropped while growing too
def test_growing_markdown_matches_the_whole_rendering(source: str, steps: list[int]) -> None:
    """The live views re-parse only the tail; each repaint is safe and the last one is exact."""
    growing, end = GrowingMarkdown(), 0
    for step in steps:
        end = min(len(source), end + step)
        assert_safe_markdown(growing(source[:end]))
    final = growing(source)
    assert_safe_markdown(final)
    if "]:" not in source:  # a reference defined after its use links only in the whole rendering
        assert final == safe_markdown(source.replace("\r\n", "\n").replace("\r", "\n"))


def test_growing_markdown_streams_an_answer_in_small_pieces() -> None:
    source = (
        "# Plan\n\n[d]: https://x.org/docs\n\nSee [the docs][d].\n\n- a\n- b\n\n- c\n\n"
        "```python\nx = 1\n\ny = 2\n```\n\n> quote\nlazy\n\npara\n---\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
        + "\n\n".join(v for k, v in ATTACKS.items() if "reference" not in k)
    )
    growing = GrowingMarkdown()
    for end in range(1, len(source) + 1, 7):
        growing(source[:end])
    assert growing(source) == safe_markdown(source)
    assert "[the docs](<https://x.org/docs>)" in growing(source)
    assert growing("A new turn") == "A new turn"  # not an append: starts over


# -- real kernels ----------------------------------------------------------------------------

KEY = "sk-test-simulator"
HOSTILE = "\n\n".join(ATTACKS.values()) + "\n\nA fine [link](https://example.org/docs)."


@pytest.fixture(scope="module")
def sim():
    with KimiSimulator(api_key=KEY) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def kernel(sim, tmp_path_factory):
    env = {"KIMI_BASE_URL": sim.base_url, "MOONSHOT_API_KEY": KEY, "KIMI_PROVIDER": "moonshot"}
    with running_kernel(env, tmp_path_factory.mktemp("kernel")) as (manager, client):
        reply, _ = run(client, "%load_ext kimi_jupyter")
        assert reply["status"] == "ok"
        yield manager, client


def _check_bundle(data: dict) -> None:
    if "text/html" in data:
        assert_safe_html(re.sub(r"<(/?)(div|details|summary|table|tr|th|td)\b[^>]*>", "", data["text/html"]))
        assert not re.search(r"<(img|script|iframe|svg)\b", data["text/html"], re.I)
    if "text/markdown" in data:
        rendered = lax_render(data["text/markdown"])
        tags = {tag for tag, _ in tags_of(rendered)}
        assert not tags & {"img", "script", "iframe", "svg", "b"}, tags
        assert all(link_allowed(a.get("href", "")) for t, a in tags_of(rendered) if t == "a")


def test_markdown_handle_and_saved_bundle_obey_the_policy(sim, kernel):
    _, client = kernel
    sim.queue(Reply(text=HOSTILE, chunk_chars=40, chunk_delay=0.01))
    reply, messages = run(client, "%%kimi --display markdown\nshow me a chart")
    assert reply["status"] == "ok"
    bundles = [m["content"]["data"] for m in messages if m["msg_type"] in ("display_data", "update_display_data")]
    live = [b for b in bundles if "application/vnd.kimi.response+json" not in b]
    assert len(live) >= 2 and any("image: x" in b.get("text/markdown", "") for b in live)
    for bundle in bundles:
        _check_bundle(bundle)
    final = bundles[-1]
    assert "application/vnd.kimi.response+json" in final
    assert f"image: x (<a href=\"{html.escape(H)}\"" in final["text/html"]
    assert "&lt;img src=" in final["text/html"]  # shown as text
    # The saved notebook through nbconvert: still no element from model HTML.
    from nbconvert import HTMLExporter

    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("%%kimi\nshow me a chart"))
    nb.cells[0].outputs = [nbformat.v4.new_output("display_data", data=final)]
    body, _ = HTMLExporter().from_notebook_node(nb)
    assert "127.0.0.1:9/x.png" in body and not re.search(r"<img[^>]+127\.0\.0\.1:9", body)
    assert not re.search(r"href=\"\s*javascript:", body, re.I)


def test_live_widget_view_publishes_safe_markdown(sim, kernel):
    """The live view (one display updated in place) repaints with safe Markdown only."""
    _, client = kernel
    sim.queue(Reply(text=HOSTILE, chunk_chars=40, chunk_delay=0.01))
    reply, messages = run(client, "%%kimi --display widget\nshow me a chart")
    assert reply["status"] == "ok"
    shown = [m["content"]["data"] for m in messages if m["msg_type"] in ("display_data", "update_display_data")]
    live, final = shown[:-1], shown[-1]
    markdown = [data["text/markdown"] for data in live]
    assert markdown and any("image: x" in text for text in markdown)
    assert all(set(data) == {"text/markdown", "text/plain"} for data in live)  # no HTML, no widget
    for text in markdown:
        _check_bundle({"text/markdown": text})
    _check_bundle(final)


def test_a_response_shown_as_a_cell_result_obeys_the_policy(sim, kernel):
    _, client = kernel
    sim.queue(Reply(text=HOSTILE))
    reply, messages = run(client, "import kimi_jupyter\nr = kimi_jupyter.ask('show me a chart', display='none')\nr")
    assert reply["status"] == "ok"
    (result,) = [m["content"]["data"] for m in messages if m["msg_type"] == "execute_result"]
    assert "image: x" in result["text/markdown"]
    _check_bundle(result)


def test_saved_bundle_keeps_reasoning_tool_text_notes_and_errors_as_text() -> None:
    """Tool arguments and results, reasoning, notices and errors are untrusted too."""
    evil = f"line\n\n![x]({H})\n\n[j](javascript:alert(1))\n\n<img src='{H}'>\n\n</pre></details><img src='{H}'>"
    response = Response().feed_all(
        [
            ReasoningDelta(evil),
            ToolCallStarted("c1", "run_python", evil),
            ToolCallFinished("c1", evil, None, 0.1),
            Notice(evil),
            TextDelta("ok"),
            Failed(evil),
        ]
    )
    meta = TurnMeta(model="kimi-k2.5", thinking=True)
    bundle = final_bundle(response, meta)
    live = live_markdown(response, meta, "answering", 1.0, note=evil)
    for rendered in (lax_render(bundle["text/markdown"]), bundle["text/html"], lax_render(live)):
        tags = tags_of(rendered)
        assert not [t for t, _ in tags if t in ("img", "script", "iframe")], rendered
        assert all(link_allowed(a.get("href", "")) for t, a in tags if t == "a")
