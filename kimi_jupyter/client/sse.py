"""Server-sent events, reduced to what chat streams need.

Knows lines and nothing about chat: splits text into lines by the SSE rule, yields each
event's ``data`` payload, skips comment lines (``: OPENROUTER PROCESSING``), blank
keep-alives and non-data fields, joins multi-line data, and reports ``[DONE]``. Both clients
use the line splitter and `SSEDecoder` through `client.reader.StreamReader`; `iter_sse` is
the same rules as a plain generator.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

__all__ = ["DONE", "LineSplitter", "SSEDecoder", "iter_sse"]

DONE = "[DONE]"


class LineSplitter:
    """Lines as SSE defines them: ended by CRLF, LF or CR, and nothing else.

    httpx's ``iter_lines`` uses ``str.splitlines``, which also breaks at U+2028, U+2029,
    U+0085 and a few control characters. JSON strings may hold those raw (a server that
    does not escape non-ASCII sends them as they are), so a token containing one would
    cut its chunk in two and be lost.

    Linear time: a line that arrives in many pieces is kept as a list of pieces and joined
    once, when it ends (adding each piece to the line so far would copy it every time,
    quadratic in its length). ``max_line`` (characters) bounds one line: past it,
    `ResponseTooLargeError`.
    """

    __slots__ = ("_more", "_more_size", "_skip_lf", "max_line", "tail")

    def __init__(self, max_line: int | None = None) -> None:
        self.tail = ""
        self._more: list[str] = []  # pieces of an unfinished line after ``tail``
        self._more_size = 0
        self._skip_lf = False  # a long line ended with a CR at the end of a text: a LF next belongs to it
        self.max_line = max_line

    def feed(self, text: str) -> list[str]:
        if self._skip_lf and text:
            self._skip_lf = False
            if text[0] == "\n":
                text = text[1:]
                if not text:
                    return []
        if self.tail:
            if "\n" not in text and "\r" not in text and self.tail[-1] != "\r":
                self._more.append(text)
                self._more_size += len(text)
                if self.max_line is not None and len(self.tail) + self._more_size > self.max_line:
                    self._too_long()
                return []
            if self._more:
                return self._end_long_line(text)
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
        limit = self.max_line
        if limit is not None and len(text) > limit and (
                len(self.tail) > limit or any(len(line) > limit for line in lines)):
            self._too_long()
        return lines

    def _end_long_line(self, text: str) -> list[str]:
        """A line that came in many pieces ends in ``text``: one join, and no pass over the
        whole line for line ends (each piece was checked as it came)."""
        r, n = text.find("\r"), text.find("\n")
        end = n if r < 0 else (r if n < 0 else min(r, n))
        pieces = self._more
        pieces.append(text[:end])
        pieces.insert(0, self.tail)
        line = "".join(pieces)
        self.tail, self._more, self._more_size = "", [], 0
        if self.max_line is not None and len(line) > self.max_line:
            self._too_long()
        rest = text[end:]
        if rest.startswith("\r\n"):
            rest = rest[2:]
        elif rest == "\r":  # maybe the first half of a CRLF
            rest = ""
            self._skip_lf = True
        else:
            rest = rest[1:]
        if not rest:
            return [line]
        lines = self.feed(rest)
        lines.insert(0, line)
        return lines

    def _too_long(self) -> None:
        from ..errors import ResponseTooLargeError

        limit = self.max_line or 0
        shown = f"{limit / (1024 * 1024):g} MiB" if limit >= 1024 * 1024 else f"{limit:,} characters"
        raise ResponseTooLargeError(
            f"The server sent one line of more than {shown} without ending it; the answer was cut "
            "there (what arrived before is kept). Raise %config Kimi.max_line_bytes if a single "
            "chunk can really be this large."
        )

    def close(self) -> list[str]:
        tail = "".join([self.tail, *self._more]) if self._more else self.tail
        self.tail, self._more, self._more_size, self._skip_lf = "", [], 0, False
        if tail[-1:] == "\r":  # a held CR ended its line after all
            return [tail[:-1]]
        return [tail] if tail else []


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
