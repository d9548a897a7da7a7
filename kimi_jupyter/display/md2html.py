"""A small, safe Markdown -> HTML converter for the saved answer.

The final bundle must render where no Markdown engine runs our way (nbconvert, GitHub,
untrusted notebooks) and must never let model text inject markup. So every character of
model text is HTML-escaped first and only a known subset of Markdown becomes tags: ATX
headings, paragraphs, emphasis, strikethrough, inline code, fenced code blocks (with a
``language-*`` class), nested lists, block quotes, rules, pipe tables and links with safe
schemes. Math (``$...$``) is left literal for MathJax. Anything else stays escaped text.

``safe_markdown`` is the companion for ``text/markdown`` bundles: it keeps the Markdown but
neutralises raw HTML and ``javascript:``-style links, which Markdown renderers pass through.
"""

from __future__ import annotations

import html
import re

__all__ = ["markdown_to_html", "safe_markdown"]

_FENCE_OPEN = re.compile(r"^ {0,3}(`{3,}|~{3,})[ \t]*([\w+#.-]*)")
_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_RULE = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_LIST_ITEM = re.compile(r"^( *)([-*+]|\d{1,9}[.)])(?:[ \t]+(.*))?$")
_QUOTE = re.compile(r"^ {0,3}> ?(.*)$")
_TABLE_SEP = re.compile(r"^ *\|? *:?-+:? *(\| *:?-+:? *)*\|? *$")
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*):", re.I)

_CODE_SPAN = re.compile(r"(`+)(.+?)(?<!`)\1(?!`)", re.S)
_MATH = re.compile(r"\$\$.+?\$\$|\$[^\s$](?:[^$\n]*?[^\s$])?\$", re.S)
_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")
_LINK = re.compile(r"(!?)\[([^\]\n]+)\]\(\s*<?([^()\s<>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_AUTOLINK = re.compile(r"<(https?://[^\s<>]+)>")
_STRONG = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*|__(?=\S)(.+?)(?<=\S)__(?!\w)", re.S)
_EM = re.compile(r"\*(?=[^\s*])(.+?)(?<=[^\s*])\*|(?<!\w)_(?=[^\s_])(.+?)(?<=[^\s_])_(?!\w)", re.S)
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~", re.S)
_SLOT = re.compile("\x00(\\d+)\x00")


def markdown_to_html(markdown: str) -> str:
    """Convert ``markdown`` to HTML in which every piece of source text is escaped."""
    lines = markdown.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(_blocks(lines, tight=False))


def _blocks(lines: list[str], tight: bool) -> list[str]:
    out: list[str] = []
    i, n = 0, len(lines)
    while i < n:
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        fence = _FENCE_OPEN.match(line)
        if fence:
            i = _fenced(lines, i, fence, out)
            continue
        heading = _HEADING.match(line)
        if heading:
            level = len(heading.group(1))
            out.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
            i += 1
            continue
        if _RULE.match(line):
            out.append("<hr>")
            i += 1
            continue
        if _QUOTE.match(line):
            quoted: list[str] = []
            while i < n and lines[i].strip():  # unmarked lines continue the quote (lazily)
                marked = _QUOTE.match(lines[i])
                quoted.append(marked.group(1) if marked else lines[i])
                i += 1
            out.append("<blockquote>\n" + "\n".join(_blocks(quoted, tight=False)) + "\n</blockquote>")
            continue
        if "|" in line and i + 1 < n and _TABLE_SEP.match(lines[i + 1]) and "-" in lines[i + 1]:
            i = _table(lines, i, out)
            continue
        if _LIST_ITEM.match(line):
            i = _list(lines, i, out)
            continue
        para: list[str] = []
        while i < n and lines[i].strip() and not _starts_block(lines, i):
            para.append(lines[i].strip())
            i += 1
        text = _inline("\n".join(para))
        out.append(text if tight else f"<p>{text}</p>")
    return out


def _starts_block(lines: list[str], i: int) -> bool:
    line = lines[i]
    if _FENCE_OPEN.match(line) or _HEADING.match(line) or _RULE.match(line) or _QUOTE.match(line):
        return True
    if "|" in line and i + 1 < len(lines) and _TABLE_SEP.match(lines[i + 1]) and "-" in lines[i + 1]:
        return True
    item = _LIST_ITEM.match(line)
    return bool(item and item.group(3))


def _fenced(lines: list[str], i: int, fence: re.Match[str], out: list[str]) -> int:
    marker, language = fence.group(1), fence.group(2).lower()
    close = re.compile(rf"^ {{0,3}}{re.escape(marker[0])}{{{len(marker)},}}[ \t]*$")
    body: list[str] = []
    i += 1
    while i < len(lines) and not close.match(lines[i]):
        body.append(lines[i])
        i += 1
    css = f' class="language-{html.escape(language)}"' if language else ""
    out.append(f"<pre><code{css}>{html.escape(chr(10).join(body))}</code></pre>")
    return i + 1  # past the closing fence (or the end of an unclosed, still streaming one)


def _table(lines: list[str], i: int, out: list[str]) -> int:
    aligns = []
    for cell in _cells(lines[i + 1]):
        left, right = cell.startswith(":"), cell.endswith(":")
        aligns.append("center" if left and right else "right" if right else "left" if left else "")

    def row(cells: list[str], tag: str) -> str:
        parts = []
        for k, cell in enumerate(cells):
            align = aligns[k] if k < len(aligns) else ""
            style = f' style="text-align:{align}"' if align else ""
            parts.append(f"<{tag}{style}>{_inline(cell)}</{tag}>")
        return "<tr>" + "".join(parts) + "</tr>"

    rows = [f"<thead>{row(_cells(lines[i]), 'th')}</thead>"]
    body = []
    i += 2
    while i < len(lines) and lines[i].strip() and "|" in lines[i]:
        body.append(row(_cells(lines[i]), "td"))
        i += 1
    if body:
        rows.append("<tbody>" + "".join(body) + "</tbody>")
    out.append("<table>" + "".join(rows) + "</table>")
    return i


def _cells(line: str) -> list[str]:
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|") and not line.endswith("\\|"):
        line = line[:-1]
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)]


def _list(lines: list[str], i: int, out: list[str]) -> int:
    first = _LIST_ITEM.match(lines[i])
    assert first is not None
    indent = len(first.group(1))
    ordered = first.group(2)[0].isdigit()
    items: list[list[str]] = []
    loose = False
    n = len(lines)
    while i < n:
        line = lines[i]
        item = _LIST_ITEM.match(line)
        if item and len(item.group(1)) == indent and item.group(2)[0].isdigit() == ordered:
            items.append([item.group(3) or ""])
        elif not line.strip():
            j = i + 1
            while j < n and not lines[j].strip():
                j += 1
            nxt = _LIST_ITEM.match(lines[j]) if j < n else None
            sibling = nxt is not None and len(nxt.group(1)) == indent and nxt.group(2)[0].isdigit() == ordered
            inside = j < n and _indent(lines[j]) > indent
            if not (sibling or inside):
                break
            loose = loose or sibling or (inside and nxt is None)  # blank lines between blocks: loose
            items[-1].append("")
        elif _indent(line) > indent:
            items[-1].append(line[min(_indent(line), indent + 4) :])
        elif items[-1][-1].strip() and not _starts_block(lines, i):
            items[-1].append(line.strip())  # a lazy continuation line
        else:
            break
        i += 1
    tag = "ol" if ordered else "ul"
    start = int(first.group(2)[:-1]) if ordered else 1
    attrs = f' start="{start}"' if ordered and start != 1 else ""
    parts = [f"<{tag}{attrs}>"]
    for body in items:
        while body and not body[-1].strip():
            body.pop()
        parts.append("<li>" + "\n".join(_blocks(body, tight=not loose)) + "</li>")
    parts.append(f"</{tag}>")
    out.append("\n".join(parts))
    return i


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _inline(text: str) -> str:
    slots: list[str] = []

    def keep(rendered: str) -> str:
        slots.append(rendered)
        return f"\x00{len(slots) - 1}\x00"

    text = _CODE_SPAN.sub(
        lambda m: keep(f"<code>{html.escape(m.group(2).strip() or m.group(2))}</code>"), text
    )
    text = _MATH.sub(lambda m: keep(html.escape(m.group(0))), text)
    text = _ESCAPED.sub(lambda m: keep(html.escape(m.group(1))), text)
    text = _AUTOLINK.sub(lambda m: keep(_anchor(m.group(1), html.escape(m.group(1)))), text)
    text = _LINK.sub(lambda m: keep(_link(m)), text)
    text = html.escape(text, quote=False)
    text = _STRONG.sub(lambda m: f"<strong>{m.group(1) or m.group(2)}</strong>", text)
    text = _EM.sub(lambda m: f"<em>{m.group(1) or m.group(2)}</em>", text)
    text = _STRIKE.sub(lambda m: f"<del>{m.group(1)}</del>", text)
    text = text.replace("  \n", "<br>\n")
    while _SLOT.search(text):  # slots may nest (a code span inside a link's text)
        text = _SLOT.sub(lambda m: slots[int(m.group(1))], text)
    return text


def _link(match: re.Match[str]) -> str:
    label = _inline(match.group(2))
    return _anchor(match.group(3), label)


def _anchor(url: str, label: str) -> str:
    scheme = _SCHEME.match(url)
    if scheme and scheme.group(1).lower() not in ("http", "https", "mailto"):
        return label  # javascript:, data:, vbscript: ... lose their link, keep their text
    return f'<a href="{html.escape(url, quote=True)}" rel="noopener noreferrer">{label}</a>'


_UNSAFE_LINK = re.compile(r"\]\(\s*<?\s*(?!https?:|mailto:)[a-z][a-z0-9+.-]*:", re.I)


def safe_markdown(markdown: str) -> str:
    """Markdown with raw HTML and script-scheme links neutralised; code is left untouched."""
    out: list[str] = []
    fence: re.Pattern[str] | None = None
    for line in markdown.split("\n"):
        if fence is not None:
            out.append(line)
            if fence.match(line):
                fence = None
            continue
        opening = _FENCE_OPEN.match(line)
        if opening:
            marker = opening.group(1)
            fence = re.compile(rf"^ {{0,3}}{re.escape(marker[0])}{{{len(marker)},}}[ \t]*$")
            out.append(line)
            continue
        pieces = re.split(r"(`+[^`]*?`+)", line)
        for k in range(0, len(pieces), 2):
            pieces[k] = _UNSAFE_LINK.sub("](#", pieces[k].replace("<", "&lt;"))
        out.append("".join(pieces))
    return "\n".join(out)
