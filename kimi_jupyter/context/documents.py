"""Documents in prompts: which paths are documents, and their text when read locally.

``{report}`` where ``report`` is a path (str or ``pathlib.Path``) to an existing pdf, docx,
xlsx, pptx, txt or md file is a *document*. On providers with Moonshot's Files API the
document is uploaded with ``purpose="file-extract"`` and the server's extracted text is sent
as a system message (Moonshot's recommended use; see ``context/media.py``). Elsewhere the
text is extracted here, offline, with the same rules the bundled simulator uses:

* text files (txt, md, csv, json, code...) are decoded as UTF-8;
* PDFs are read with ``pypdf`` (a maintained, pure-Python PDF library), page by page;
* docx / xlsx / pptx are zip archives of XML: their text nodes are joined (paragraphs;
  shared strings and cells, one sheet after another; slide text, one slide after another)
  with the standard library's ``zipfile`` and ``xml.etree``.

Untrusted input: a document comes from outside, so every read is bounded (the file size is
checked before reading, zip members by their declared and actual size) and malformed files
give a one-line :class:`DocumentError`, never a traceback.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from .errors import ContextError

__all__ = [
    "DOCUMENT_EXTENSIONS",
    "DocumentError",
    "Extracted",
    "OFFICE_EXTENSIONS",
    "TEXT_EXTENSIONS",
    "document_kind",
    "extract_text",
    "page_count",
]

TEXT_EXTENSIONS = (
    ".txt", ".md", ".csv", ".json", ".jsonl", ".html", ".htm", ".log", ".yaml", ".yml", ".ini", ".conf",
    ".py", ".go", ".h", ".c", ".cpp", ".cc", ".cs", ".java", ".js", ".ts", ".tsx", ".css", ".php", ".sql",
)
OFFICE_EXTENSIONS = (".docx", ".xlsx", ".pptx")
#: What ``{name}`` treats as a document when the name holds a path to such a file.
DOCUMENT_EXTENSIONS = (".pdf", *OFFICE_EXTENSIONS, ".txt", ".md")
MAX_DOCUMENT_BYTES = 100 * 1024 * 1024  # the Files API's limit per file
_MAX_XML_BYTES = 64 * 1024 * 1024  # one zip member, uncompressed


class DocumentError(ContextError):
    """A document could not be read or its text could not be extracted."""


@dataclass(frozen=True)
class Extracted:
    """A document's text and, where the format has them, its pages (slides, sheets)."""

    text: str
    pages: int | None = None
    unit: str = "pages"


def existing_file_suffix(value: Any, suffixes: Collection[str]) -> str | None:
    """The lower-case extension of ``value`` if it is one of ``suffixes`` and ``value`` (a
    str/PathLike) names an existing file; the file system is asked only about such names.
    A name that is a symbolic link to a file raises `DocumentError`: a link is not followed
    out of what was named."""
    try:
        text = os.fspath(value)
    except TypeError:
        return None
    if not isinstance(text, str) or not text or len(text) > 4096 or "\n" in text or "\x00" in text:
        return None
    suffix = os.path.splitext(text)[1].lower()
    if suffix not in suffixes:
        return None
    try:
        path = Path(text).expanduser()
        link, found = path.is_symlink(), path.is_file()
    except (OSError, ValueError):
        return None
    if link and found:  # links are not followed out of what the user named
        raise DocumentError(f"{text} is a symbolic link: only the file you name is sent, never what a link "
                            "points to. Name the file itself. Nothing was sent.")
    return suffix if found else None


def document_kind(value: Any) -> str | None:
    """The extension (``".pdf"``...) if ``value`` is a str/PathLike naming an existing document."""
    return existing_file_suffix(value, DOCUMENT_EXTENSIONS)


def _extension(filename: str) -> str:
    dot = filename.rfind(".")
    return filename[dot:].lower() if dot > 0 else ""


def extract_text(data: bytes, filename: str) -> Extracted:
    """The text of a document's bytes; :class:`DocumentError` when it cannot be read."""
    ext = _extension(filename)
    try:
        if ext == ".pdf" or data[:5] == b"%PDF-":
            return _pdf_text(data)
        if ext in OFFICE_EXTENSIONS:
            return _office_text(data, ext)
        if ext in TEXT_EXTENSIONS or not ext:
            return Extracted(data.decode("utf-8"))
    except (UnicodeDecodeError, zipfile.BadZipFile, ElementTree.ParseError, ValueError, KeyError) as exc:
        raise DocumentError(f"could not extract text from {filename}: {exc}") from None
    raise DocumentError(f"unsupported file type for file-extract: {filename}")


def page_count(data: bytes, filename: str) -> tuple[int | None, str]:
    """``(count, unit)``: PDF pages, pptx slides or xlsx sheets; None for other formats."""
    ext = _extension(filename)
    try:
        if ext == ".pdf" or data[:5] == b"%PDF-":
            from pypdf import PdfReader

            return len(PdfReader(io.BytesIO(data)).pages), "pages"
        if ext in (".pptx", ".xlsx"):
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                pattern = _SLIDE if ext == ".pptx" else _SHEET
                return sum(1 for n in archive.namelist() if pattern.match(n)), ("slides" if ext == ".pptx" else "sheets")
    except Exception:  # a count is decoration: an unreadable file gets none
        return None, "pages"
    return None, "pages"


def _pdf_text(data: bytes) -> Extracted:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except PdfReadError as exc:
        raise ValueError(f"not a readable PDF ({exc})") from None
    return Extracted("\n\n".join(p.strip() for p in pages), len(pages))


_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
_S = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_SLIDE = re.compile(r"^ppt/slides/slide(\d+)\.xml$")
_SHEET = re.compile(r"^xl/worksheets/sheet(\d+)\.xml$")


def _office_text(data: bytes, ext: str) -> Extracted:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()

        def xml(name: str) -> ElementTree.Element:
            if archive.getinfo(name).file_size > _MAX_XML_BYTES:
                raise ValueError(f"{name} is too large to read")
            with archive.open(name) as member:
                raw = member.read(_MAX_XML_BYTES + 1)
            if len(raw) > _MAX_XML_BYTES:
                raise ValueError(f"{name} is too large to read")
            return ElementTree.fromstring(raw)

        if ext == ".docx":
            body = xml("word/document.xml")
            paragraphs = ["".join(t.text or "" for t in p.iter(_W + "t")) for p in body.iter(_W + "p")]
            return Extracted("\n".join(p for p in paragraphs if p))
        if ext == ".pptx":
            slides = sorted((int(m.group(1)), n) for n in names if (m := _SLIDE.match(n)))
            texts = [
                f"Slide {number}\n" + "\n".join(t.text or "" for t in xml(name).iter(_A + "t"))
                for number, name in slides
            ]
            return Extracted("\n\n".join(texts), len(slides), "slides")
        shared: list[str] = []
        if "xl/sharedStrings.xml" in names:
            shared = ["".join(t.text or "" for t in si.iter(_S + "t"))
                      for si in xml("xl/sharedStrings.xml").iter(_S + "si")]
        sheets = sorted((int(m.group(1)), n) for n in names if (m := _SHEET.match(n)))
        out = []
        for number, name in sheets:
            rows = []
            for row in xml(name).iter(_S + "row"):
                cells = []
                for cell in row.iter(_S + "c"):
                    value = cell.find(_S + "v")
                    inline = cell.find(f"{_S}is/{_S}t")
                    text = inline.text if inline is not None else (value.text if value is not None else "")
                    if cell.get("t") == "s" and text and text.isdigit() and int(text) < len(shared):
                        text = shared[int(text)]
                    cells.append(text or "")
                rows.append("\t".join(cells))
            out.append(f"Sheet {number}\n" + "\n".join(rows))
        return Extracted("\n\n".join(out), len(sheets), "sheets")


def read_document(path: str | os.PathLike[str]) -> tuple[bytes, str]:
    """``(bytes, file name)`` of a document on disk, refusing files over 100 MB."""
    p = Path(os.fspath(path)).expanduser()
    try:
        size = p.stat().st_size
        if size > MAX_DOCUMENT_BYTES:
            raise DocumentError(f"document '{p}' is {size / 2**20:.1f} MB; at most 100 MB can be extracted")
        if size == 0:
            raise DocumentError(f"document '{p}' is empty")
        return p.read_bytes(), p.name
    except OSError as exc:
        raise DocumentError(f"document '{p}' could not be read: {exc.strerror or exc}") from None
