"""Model text to HTML and to safe Markdown: one rendering policy for every surface.

Model text (answers, and anything a prompt injection made the model write) is untrusted.
Every Python surface that shows it (the live widget view, the Markdown display handle, the
saved ``text/html`` and ``text/markdown`` bundle) goes through this module, and the
JupyterLab extension applies the same policy in ``labextension/src/markdown.ts``:

- Raw HTML in model text is shown as text, never interpreted (the parser runs with HTML
  disabled, so ``<img src=...>`` is the literal characters).
- Nothing is fetched because of model text: a Markdown image becomes the words
  ``image: alt (URL)``, the URL a plain link the user may click, never an ``<img>``.
- Links keep only the ``http``, ``https`` and ``mailto`` schemes, checked after entity and
  backslash decoding (``&#106;avascript:``), for inline, reference-style and autolinks;
  any other link (``javascript:``, ``data:``, ``vbscript:``, relative) stays plain text.
- Math (``$...$``, ``$$...$$``) stays literal text for MathJax; code fences keep a
  ``language-*`` class and are highlighted with Pygments when it is installed.

Parsing is markdown-it-py (CommonMark plus GFM tables and strikethrough) with
mdit-py-plugins' dollar math; the policy is markdown-it's ``validateLink`` hook plus render
rules, so no hand-written parser decides what is code, text or a link.

``text/markdown`` decision: frontends render our Markdown with their own engine (marked in
JupyterLab, GitHub, VS Code), which would pass raw HTML and images through. So
:func:`safe_markdown` does not forward the model's source: it parses it and writes it back
as normalised Markdown from the token stream, in which every text character that could
start markup is backslash-escaped (``<`` and ``>`` become entities, so no raw HTML and no
autolink can form), links are written as ``[text](<url>)`` only when their URL passed the
policy, images become ``image: alt ([url](<url>))``, code spans and fences get delimiters
longer than any run inside them, and math has ``<``, ``>``, ``[`` and ``]`` replaced by the
LaTeX commands ``\\lt``, ``\\gt``, ``\\lbrack``, ``\\rbrack`` (so a frontend without math
support cannot read HTML or links in it, and MathJax still draws the same formula).
:func:`markdown_text` escapes a short piece of text (a note, an error) for Markdown.

Live views repaint a growing answer several times a second; :class:`GrowingMarkdown` keeps
the rendered top-level blocks that can no longer change (every block before the last: in
CommonMark appending text never reopens a closed block) and parses only the rest, so a
repaint costs the last block and the new text, not the whole answer (a 50 kB answer takes
about 0.1 s to parse whole). Reference definitions seen earlier still apply; a link whose
definition comes later stays text until the final (whole) rendering.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.dollarmath import dollarmath_plugin

__all__ = [
    "ALLOWED_SCHEMES",
    "GrowingMarkdown",
    "link_allowed",
    "markdown_text",
    "markdown_to_html",
    "safe_markdown",
]

ALLOWED_SCHEMES = ("http", "https", "mailto")
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*):", re.I)
_HIGHLIGHT_LIMIT = 20_000  # characters of one code block worth highlighting
_URL_SHOWN = 300  # characters of a non-link image URL shown as text (data: URIs are long)


def link_allowed(url: str) -> bool:
    """True for an absolute ``http``, ``https`` or ``mailto`` URL (already entity-decoded)."""
    scheme = _SCHEME.match(url.strip())
    return bool(scheme) and scheme.group(1).lower() in ALLOWED_SCHEMES


def _highlight(code: str, language: str, _attrs: Any) -> str:
    """Pygments inline-styled spans for ``code`` (HTML-escaped by Pygments), or "" for plain."""
    if not language or len(code) > _HIGHLIGHT_LIMIT:
        return ""
    try:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import get_lexer_by_name
        from pygments.util import ClassNotFound
    except ImportError:  # Pygments is optional: plain escaped code then
        return ""
    try:
        lexer = get_lexer_by_name(language)
    except ClassNotFound:
        return ""
    formatter = HtmlFormatter(nowrap=True, noclasses=True, nobackground=True)
    return _same_quotes(highlight(code, lexer, formatter))


def _same_quotes(spans: str) -> str:
    """One spelling of quotes in highlighted code, whatever the Pygments release.

    Pygments 2.20 escapes quotes in text (``&quot;``, ``&#39;``) and 2.21 writes them plain;
    saved notebook outputs must not depend on which one a fresh install resolves. With
    ``nowrap`` and ``noclasses`` the only attributes Pygments writes are ``style`` values
    without quotes, and a ``&`` from the code itself is already ``&amp;``, so these two
    entities can only be quotes of the code's text, where HTML needs no escaping.
    """
    return spans.replace("&quot;", '"').replace("&#39;", "'")


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.use(dollarmath_plugin, allow_space=False, allow_digits=False, allow_labels=False)
    md.validateLink = link_allowed  # type: ignore[method-assign]
    md.options["highlight"] = _highlight
    rules = md.add_render_rule
    rules("image", _render_image)
    rules("link_open", _render_link_open)
    rules("link_close", _render_link_close)
    rules("math_inline", lambda self, tokens, idx, options, env: html.escape(f"${tokens[idx].content}$"))
    rules(
        "math_block",
        lambda self, tokens, idx, options, env: f"<p>{html.escape(f'$${tokens[idx].content}$$')}</p>\n",
    )
    return md


def _render_image(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    alt = html.escape(self.renderInlineAsText(token.children or [], options, env))
    src = str(token.attrGet("src") or "")
    if not link_allowed(src):  # an empty destination: "![a]()"
        return f"image: {alt}" + (f" ({html.escape(src)})" if src else "")
    shown = html.escape(src)
    return f'image: {alt} (<a href="{shown}" rel="noopener noreferrer nofollow">{shown}</a>)'


def _render_link_open(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    allowed = link_allowed(str(tokens[idx].attrGet("href") or ""))  # "" for "[a]()"
    env.setdefault("kimi_links", []).append(allowed)
    if not allowed:
        return ""
    tokens[idx].attrSet("rel", "noopener noreferrer nofollow")
    return self.renderToken(tokens, idx, options, env)


def _render_link_close(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    opened = env.get("kimi_links") or [True]
    return self.renderToken(tokens, idx, options, env) if opened.pop() else ""


_MD = _parser()


def markdown_to_html(markdown: str) -> str:
    """``markdown`` (model text) as HTML under the policy above; no tag comes from the text."""
    return _MD.render(markdown.replace("\x00", ""), {}).rstrip("\n")


# -- safe Markdown ---------------------------------------------------------------------------

# "!" too: a text "!" followed by a link must not read as an image.
_TEXT_ESCAPES = str.maketrans(
    {
        **{c: "\\" + c for c in "\\`*_[]|~$#!"},
        "<": "&lt;",
        ">": "&gt;",
        "&": "&amp;",
    }
)
_LINE_START = re.compile(r"(?m)^([ \t]*)([+=-]|\d{1,9}(?=[.)]))")


def markdown_text(text: str) -> str:
    """``text`` escaped so that any Markdown renderer shows it literally, on one line."""
    return _escape(" ".join(text.split()))


def _escape(text: str) -> str:
    return text.translate(_TEXT_ESCAPES)


def _line_starts(text: str) -> str:
    """Escape what would start a list, a setext underline or a rule at the start of a line."""

    def escape(match: re.Match[str]) -> str:
        lead, mark = match.group(1), match.group(2)
        return lead + (mark + "\\" if mark[0].isdigit() else "\\" + mark)

    return _LINE_START.sub(escape, text)


def _math(content: str) -> str:
    return (
        content.replace("<", r"\lt ")
        .replace(">", r"\gt ")
        .replace("[", r"\lbrack ")
        .replace("]", r"\rbrack ")
    )


def _longest_run(text: str, char: str) -> int:
    runs = re.findall(re.escape(char) + "+", text)
    return max((len(r) for r in runs), default=0)


def _code_span(content: str, in_table: bool) -> str:
    ticks = "`" * (_longest_run(content, "`") + 1)
    if content[:1] in ("`", " ") or content[-1:] in ("`", " "):
        content = f" {content} "
    if in_table:
        content = content.replace("|", "\\|")
    return f"{ticks}{content}{ticks}"


def _fence(content: str, info: str) -> str:
    ticks = "`" * max(3, _longest_run(content, "`") + 1)
    language = re.sub(r"[^\w+#.-]", "", info.split()[0]) if info.strip() else ""
    body = content if content.endswith("\n") or not content else content + "\n"
    return f"{ticks}{language}\n{body}{ticks}"


def _inline(tokens: Sequence[Token], in_table: bool = False) -> str:
    out: list[str] = []
    hrefs: list[str | None] = []
    for token in tokens:
        kind = token.type
        if kind == "text":
            out.append(_escape(token.content))
        elif kind == "code_inline":
            out.append(_code_span(token.content, in_table))
        elif kind == "softbreak":
            out.append(" " if in_table else "\n")
        elif kind == "hardbreak":
            out.append(" " if in_table else "\\\n")
        elif kind in ("em_open", "em_close", "strong_open", "strong_close"):
            out.append(token.markup)
        elif kind in ("s_open", "s_close"):
            out.append("~~")
        elif kind == "link_open":
            href = str(token.attrGet("href") or "")
            hrefs.append(href if link_allowed(href) else None)  # the parser checked it already
            out.append("[" if hrefs[-1] else "")
        elif kind == "link_close":
            href = hrefs.pop() if hrefs else None
            out.append(f"](<{_url(href)}>)" if href else "")
        elif kind == "image":
            out.append(_image(token))
        elif kind == "math_inline":
            out.append(f"${_math(token.content)}$")
        else:  # anything else (none with HTML off) is shown as its text
            out.append(_escape(token.content))
    return _line_starts("".join(out))


def _url(url: str) -> str:
    """A URL safe between ``<`` and ``>``: normalised URLs are percent-encoded already."""
    return re.sub(r"[\s<>\\]", lambda m: f"%{ord(m.group(0)):02X}", url)


def _image(token: Token) -> str:
    alt = _escape(_MD.renderer.renderInlineAsText(token.children or [], _MD.options, {}))
    src = str(token.attrGet("src") or "")
    if link_allowed(src):
        return f"image: {alt} ([{_escape(src)}](<{_url(src)}>))"
    if not src:
        return f"image: {alt}"
    shown = src if len(src) <= _URL_SHOWN else src[:_URL_SHOWN] + "…"
    return f"image: {alt} ({_escape(shown)})"


def _indent(text: str, first: str, rest: str, blank: str = "") -> str:
    """Prefix a container's lines: ``first`` on the first, ``rest`` on others, ``blank`` on empty ones."""
    if not text:
        return first.rstrip()
    lines = text.split("\n")
    out = [first + lines[0]]
    out += [rest + line if line.strip() else blank for line in lines[1:]]
    return "\n".join(out)


def _table(tokens: Sequence[Token], i: int) -> tuple[str, int]:
    rows: list[list[str]] = []
    aligns: list[str] = []
    while tokens[i].type != "table_close":
        token = tokens[i]
        if token.type == "tr_open":
            rows.append([])
        elif token.type in ("th_open", "td_open"):
            if token.type == "th_open":
                style = str(token.attrGet("style") or "")
                aligns.append(style.removeprefix("text-align:"))
            rows[-1].append(_inline(tokens[i + 1].children or [], in_table=True).replace("\n", " "))
        i += 1
    marks = {"left": ":---", "right": "---:", "center": ":---:"}
    lines = ["| " + " | ".join(rows[0]) + " |", "| " + " | ".join(marks.get(a, "---") for a in aligns) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(lines), i + 1


def _blocks(tokens: Sequence[Token], i: int, stop: str | None) -> tuple[list[str], int]:
    out: list[str] = []
    while i < len(tokens):
        token = tokens[i]
        kind = token.type
        if kind == stop:
            return out, i + 1
        if kind == "paragraph_open":
            out.append(_inline(tokens[i + 1].children or []))
            i += 3
        elif kind == "heading_open":
            text = _inline(tokens[i + 1].children or []).replace("\n", " ")
            out.append("#" * int(token.tag[1]) + " " + text)
            i += 3
        elif kind in ("fence", "code_block"):
            out.append(_fence(token.content, token.info if kind == "fence" else ""))
            i += 1
        elif kind == "math_block":
            out.append(f"$$\n{_math(token.content.strip())}\n$$")
            i += 1
        elif kind == "hr":
            out.append("---")
            i += 1
        elif kind == "blockquote_open":
            inner, i = _blocks(tokens, i + 1, "blockquote_close")
            out.append(_indent("\n\n".join(inner), "> ", "> ", ">"))
        elif kind in ("bullet_list_open", "ordered_list_open"):
            text, i = _list(tokens, i)
            out.append(text)
        elif kind == "table_open":
            text, i = _table(tokens, i)
            out.append(text)
        else:  # html_block cannot occur with HTML off; anything unknown is skipped
            i += 1
    return out, i


def _list(tokens: Sequence[Token], i: int) -> tuple[str, int]:
    opening = tokens[i]
    ordered = opening.type == "ordered_list_open"
    close = "ordered_list_close" if ordered else "bullet_list_close"
    number = int(opening.attrGet("start") or 1) if ordered else 0
    tight = i + 2 < len(tokens) and tokens[i + 2].type == "paragraph_open" and tokens[i + 2].hidden
    items: list[str] = []
    i += 1
    while tokens[i].type == "list_item_open":
        marker = f"{number}{opening.markup or '.'}" if ordered else (opening.markup or "-")
        inner, i = _blocks(tokens, i + 1, "list_item_close")
        body = ("\n" if tight else "\n\n").join(inner)
        items.append(_indent(body, marker + " ", " " * (len(marker) + 1)))
        number += 1
    assert tokens[i].type == close
    return ("\n" if tight else "\n\n").join(items), i + 1


def safe_markdown(markdown: str) -> str:
    """``markdown`` (model text) rewritten as Markdown any renderer shows safely (see above)."""
    tokens = _MD.parse(markdown.replace("\x00", ""))
    blocks, _ = _blocks(tokens, 0, None)
    return "\n\n".join(blocks)


def _normalized(text: str) -> str:
    """What markdown-it parses (its own line normalisation), so line offsets match the source;
    NUL characters are dropped, as `safe_markdown` drops them."""
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")


class GrowingMarkdown:
    """:func:`safe_markdown` of a text that grows by appending, re-parsing only its tail."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._done_source = ""  # the source of the blocks that can no longer change
        self._done: list[str] = []  # those blocks, rendered
        self._references: dict[str, Any] = {}  # reference definitions in the done blocks

    def __call__(self, text: str) -> str:
        text = _normalized(text)
        if not text.startswith(self._done_source):  # not an append (a new turn): start over
            self._reset()
        rest = text[len(self._done_source) :]
        tokens = _MD.parse(rest, {"references": dict(self._references)})
        blocks, _ = _blocks(tokens, 0, None)
        starts = [t.map[0] for t in tokens if t.level == 0 and t.nesting >= 0 and t.map]
        keep = 1  # blocks still open to change: the last one...
        if starts and not rest.endswith("\n"):
            # ...and, while the last line is unfinished, every block that starts on it or on
            # the line before (a table's header needs its delimiter row; ``` followed by a
            # backtick is no fence), plus the block they may yet turn out to continue.
            unsettled = sum(1 for start in starts if start >= rest.count("\n") - 1)
            keep = max(keep, unsettled + 1)
        if len(starts) == len(blocks) and len(blocks) > keep:
            offset = sum(len(line) + 1 for line in rest.split("\n")[: starts[-keep]])
            done = rest[:offset]
            if "]:" in done:  # keep its (finished) reference definitions for the text after it
                _MD.parse(done, {"references": self._references})
            self._done_source += done
            self._done += blocks[:-keep]
            blocks = blocks[-keep:]
        return "\n\n".join(self._done + blocks)
