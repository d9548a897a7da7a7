"""Server-sent events, reduced to what chat streams need.

Knows lines and nothing about chat: splits text into lines by the SSE rule, yields each
event's ``data`` payload, skips comment lines (``: OPENROUTER PROCESSING``), blank
keep-alives and non-data fields, joins multi-line data, and reports ``[DONE]``. Both clients
use the line splitter and `SSEDecoder` through `client.reader.StreamReader`; `iter_sse` is
the same rules as a plain generator.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator

__all__ = ["DONE", "SSEDecoder", "split_lines", "iter_lines", "aiter_lines", "iter_sse"]

DONE = "[DONE]"


class _LineSplitter:
    """Lines as SSE defines them: ended by CRLF, LF or CR, and nothing else.

    httpx's ``iter_lines`` uses ``str.splitlines``, which also breaks at U+2028, U+2029,
    U+0085 and a few control characters. JSON strings may hold those raw (a server that
    does not escape non-ASCII sends them as they are), so a token containing one would
    cut its chunk in two and be lost.
    """

    __slots__ = ("tail",)

    def __init__(self) -> None:
        self.tail = ""

    def feed(self, text: str) -> list[str]:
        if self.tail:
            text = self.tail + text
        if "\r" in text:
            held = text[-1] == "\r"  # maybe the first half of a CRLF: decide with the next text
            if held:
                text = text[:-1]
            lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
            self.tail = lines.pop() + ("\r" if held else "")
        else:
            lines = text.split("\n")
            self.tail = lines.pop()
        return lines

    def close(self) -> list[str]:
        tail, self.tail = self.tail, ""
        if tail[-1:] == "\r":  # a held CR ended its line after all
            return [tail[:-1]]
        return [tail] if tail else []


def split_lines(text: str) -> list[str]:
    """``text`` cut into SSE lines (CRLF, LF or CR); a last line without an ending counts."""
    splitter = _LineSplitter()
    return splitter.feed(text) + splitter.close()


def iter_lines(texts: Iterable[str]) -> Iterator[str]:
    """The SSE lines of a stream of decoded text (``httpx.Response.iter_text()``)."""
    splitter = _LineSplitter()
    for text in texts:
        yield from splitter.feed(text)
    yield from splitter.close()


async def aiter_lines(texts: AsyncIterator[str]) -> AsyncIterator[str]:
    """The async twin of `iter_lines` (``httpx.Response.aiter_text()``)."""
    splitter = _LineSplitter()
    async for text in texts:
        for line in splitter.feed(text):
            yield line
    for line in splitter.close():
        yield line


class SSEDecoder:
    """Feed lines (without their line ending); get back complete data payloads."""

    __slots__ = ("_data",)

    def __init__(self) -> None:
        self._data: list[str] = []

    def feed(self, line: str) -> str | None:
        if not line:  # blank line: dispatch the pending event
            return self.flush()
        if line[0] == ":":  # comment / keep-alive
            return None
        if line.startswith("data:"):
            value = line[5:]
            if value[:1] == " ":
                value = value[1:]
            if self._data and value.startswith("{") and self._data[-1].endswith("}"):
                # A server that omits the blank line between events: dispatch the previous one.
                pending = self.flush()
                self._data.append(value)
                return pending
            self._data.append(value)
        # "event:", "id:", "retry:" and unknown fields carry nothing chat needs.
        return None

    def flush(self) -> str | None:
        if not self._data:
            return None
        data = "\n".join(self._data)
        self._data.clear()  # in place: iter_sse holds this list
        return data


def iter_sse(lines: Iterable[str]) -> Iterator[str]:
    """The data payloads of ``lines``. Same rules as `SSEDecoder`, with the common case
    (one ``data:`` line, then a blank line) inlined: this loop runs once per token."""
    decoder = SSEDecoder()
    pending = decoder._data
    for line in lines:
        if not line:
            if pending:
                yield pending[0] if len(pending) == 1 else "\n".join(pending)
                pending.clear()
            continue
        if line.startswith("data: ") and not pending and line[-1] != "\r":
            pending.append(line[6:])
            continue
        data = decoder.feed(line.rstrip("\r"))
        if data is not None:
            yield data
    tail = decoder.flush()
    if tail is not None:
        yield tail
