"""Server-sent events, reduced to what chat streams need.

Knows lines and nothing about chat: yields each event's ``data`` payload, skips comment
lines (``: OPENROUTER PROCESSING``), blank keep-alives and non-data fields, joins multi-line
data, and reports ``[DONE]``. One decoder serves the sync and the async client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator

__all__ = ["DONE", "SSEDecoder", "iter_sse", "aiter_sse"]

DONE = "[DONE]"


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


async def aiter_sse(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    decoder = SSEDecoder()
    async for line in lines:
        data = decoder.feed(line.rstrip("\r"))
        if data is not None:
            yield data
    tail = decoder.flush()
    if tail is not None:
        yield tail
