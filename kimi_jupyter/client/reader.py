"""The lines of one streamed answer, turned into events: what both clients run per line.

A long answer runs `StreamReader.read` tens of thousands of times, so the common line is
handled first, in two steps:

1. a line that fits the stream's learned template (`learn_template`) has only its token
   string decoded (``json.decoder.scanstring``);
2. a ``data: {...}`` line is decoded whole and goes through `TurnState.handle_chunk`; when
   it holds one text or reasoning fragment and nothing else, it may teach the template.

Everything else (comments, multi-line data, glued events, ``[DONE]``) goes through
`SSEDecoder` and the client's own handling of a data payload, which know all the rules.
Every event is fed to the `Response` before it is returned, deltas through the response's
sinks (`Response.delta_sinks`) rather than its type dispatch.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import KimiConnectionError, KimiError, StreamCutError
from ..events import Event, ReasoningDelta, TextDelta, text_slot_setter
from ..response import Response
from .chunks import TurnState, learn_template
from .sse import DONE, SSEDecoder

__all__ = ["StreamReader", "RELEARN_EVERY", "unfinished"]

RELEARN_EVERY = 64  # a template that stops fitting is relearned at most once per 64 decoded chunks
LEARN_MAX = 16_384  # a longer line teaches nothing a short one would not, at several passes over it

_scan = json.decoder.scanstring  # type: ignore[attr-defined]
_decode_at = json.JSONDecoder().raw_decode  # decodes in place: no copy of the line after "data: "
_new = object.__new__
_set_text = text_slot_setter(TextDelta)
_set_reasoning = text_slot_setter(ReasoningDelta)
_NOTHING: tuple[Event, ...] = ()
# No line holds "\n" (lines are split at it), so a template with this head never fits.
_NO_HEAD = "\n"


class StreamReader:
    """Feed it the stream's lines (`read`), then call `close` and `finish`.

    ``read`` returns the line's events, or None once ``[DONE]`` has come (stop reading). ``on_data`` handles a data
    payload the fast steps did not (the client's ``_handle_data``: glued events, garbage,
    in-stream errors); ``on_error_chunk`` raises for a decoded ``{"error": ...}`` chunk.
    """

    __slots__ = (
        "_add_reasoning",
        "_add_text",
        "_decoded",
        "_decoder",
        "_done",
        "_feed",
        "_log",
        "_on_data",
        "_on_error_chunk",
        "_pending",
        "_reasoning_at",
        "_reasoning_cut",
        "_reasoning_head",
        "_reasoning_tail",
        "_relearn_at",
        "_state",
        "_text_at",
        "_text_cut",
        "_text_head",
        "_text_tail",
    )

    def __init__(self, state: TurnState, response: Response,
                 on_data: Callable[[str, TurnState], list[Event]],
                 on_error_chunk: Callable[[dict[str, Any]], None]) -> None:
        self._state = state
        self._feed = response.feed
        self._add_text, self._add_reasoning, self._log = response.delta_sinks()
        self._on_data = on_data
        self._on_error_chunk = on_error_chunk
        self._decoder = SSEDecoder()
        self._pending = self._decoder._data  # non-empty while a multi-line event is being collected
        self._text_head = self._text_tail = self._reasoning_head = self._reasoning_tail = _NO_HEAD
        self._text_at = self._text_cut = self._reasoning_at = self._reasoning_cut = 0
        self._decoded = self._relearn_at = 0
        self._done = False

    def read(self, line: str) -> Sequence[Event] | None:
        pending = self._pending
        if not line and not pending:
            return _NOTHING  # the blank line after each event
        # 1. The learned template: decode the token string only.
        if line.startswith(self._text_head) and line.endswith(self._text_tail):
            at, cut, kind, put, add = self._text_at, self._text_cut, TextDelta, _set_text, self._add_text
        elif line.startswith(self._reasoning_head) and line.endswith(self._reasoning_tail):
            at, cut, kind, put, add = (self._reasoning_at, self._reasoning_cut, ReasoningDelta,
                                       _set_reasoning, self._add_reasoning)
        else:
            at = 0
        if at and not pending:
            try:
                text, end = _scan(line, at)
            except ValueError:
                end = -1
            if end == len(line) - cut:
                if not text:
                    return _NOTHING
                event = _new(kind)
                put(event, text)
                add(text)
                if self._log is not None:
                    self._log(event)
                return (event,)
        # 2. A whole chunk on one data: line.
        if not pending and line[:7] == "data: {":
            try:
                chunk, end = _decode_at(line, 6)
                if end != len(line) and line[end:].strip(" \t\r\n"):  # a trailing "\r" is JSON whitespace
                    chunk = None
            except ValueError:
                chunk = None  # an object split over several data: lines: the decoder joins it
            if type(chunk) is dict:
                events = self._state.handle_chunk(chunk)
                self._decoded += 1
                if len(events) == 1 and type(events[0]) in (TextDelta, ReasoningDelta):
                    self._maybe_learn(line, chunk, type(events[0]) is TextDelta)
                elif "error" in chunk:
                    self._on_error_chunk(chunk)
                return self._fed(events)
        # 3. Everything else.
        data = self._decoder.feed(line.rstrip("\r")) if line else self._decoder.flush()
        if data is None:
            return _NOTHING
        if data == DONE:
            self._done = True
            return None
        return self._fed(self._on_data(data, self._state))

    def close(self) -> list[Event]:
        """The events of a last line that had no line ending (after the last `read`)."""
        if self._done:
            return []
        tail = self._decoder.flush()
        if tail == DONE:
            self._done = True
            return []
        return [] if tail is None else self._fed(self._on_data(tail, self._state))

    def finish(self) -> list[Event]:
        """The closing events (pending tool calls, the one usage, `Done`); raises
        `StreamCutError` / `KimiConnectionError` when ``[DONE]`` never came."""
        if not self._done:
            raise unfinished(self._state)
        return self._fed(self._state.finish())

    def _fed(self, events: list[Event]) -> list[Event]:
        for event in events:
            self._feed(event)
        return events

    def _maybe_learn(self, line: str, chunk: dict[str, Any], is_text: bool) -> None:
        if len(line) > LEARN_MAX:
            return
        head = self._text_head if is_text else self._reasoning_head
        if head != _NO_HEAD and self._decoded < self._relearn_at:
            return
        self._relearn_at = self._decoded + RELEARN_EVERY
        if is_text:
            learned = learn_template(line, chunk, "content")
        else:
            learned = learn_template(line, chunk, "reasoning_content") or learn_template(line, chunk, "reasoning")
        if learned is None:
            return
        head, tail = learned
        if is_text:
            self._text_head, self._text_tail, self._text_at, self._text_cut = head, tail, len(head), len(tail) - 1
        else:
            self._reasoning_head, self._reasoning_tail = head, tail
            self._reasoning_at, self._reasoning_cut = len(head), len(tail) - 1


def unfinished(state: TurnState) -> KimiError:
    """The error for a stream that ended without ``[DONE]``."""
    if not state.saw_content and not state.finish_reason:
        return KimiConnectionError("The server closed the stream before sending anything.")
    return StreamCutError(
        "The stream ended before [DONE]; the partial answer above is kept. "
        "Run the cell again to get a complete answer."
    )
