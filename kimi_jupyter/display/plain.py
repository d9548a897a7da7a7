"""Plain text for terminals (and the ``text`` mode in notebooks).

Reasoning streams first under a ``thinking:`` header, then the answer, as the fragments
arrive; tool steps, retries, notices and errors are single lines; the usage line closes the
turn. Text is written as it comes but the stream is flushed at most ~10 times a second, so
a fast stream costs few system calls (or, in a kernel, few iopub messages).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from ..events import (
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
)
from ..response import Response
from .base import TurnMeta
from .coalesce import Coalescer
from .fmt import preview, retry_line, seconds, turn_usage_line

__all__ = ["PlainRenderer"]

_DIM, _RESET = "\x1b[2m", "\x1b[0m"


class PlainRenderer:
    """Write a turn to ``stream`` (default: ``sys.stdout`` at the time of writing)."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        color: bool | None = None,
        interval: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._color = color
        self._interval = interval
        self._clock = clock
        self._meta = TurnMeta(model="", thinking=False)
        self._reset()

    def _reset(self) -> None:
        self._section = ""  # "", "reasoning" or "answer"
        self._line_start = True
        self._names: dict[str, str] = {}
        self._denied: set[str] = set()
        self._coalescer = Coalescer(lambda _c: self._flush(), self._interval, self._clock)

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stdout

    def start(self, meta: TurnMeta) -> None:
        self._meta = meta
        self._reset()
        if self._color is None:
            isatty = getattr(self.stream, "isatty", None)
            self._color = bool(isatty and isatty())

    def handle(self, event: Event) -> None:
        if isinstance(event, ReasoningDelta):
            if self._section != "reasoning":
                self._line("thinking:")
                self._section = "reasoning"
            self._write(event.text, dim=True)
        elif isinstance(event, TextDelta):
            if self._section != "answer":
                self._end_line()
                if self._section == "reasoning":
                    self._write("\n")  # a blank line between the trace and the answer
                self._section = "answer"
            self._write(event.text)
        elif isinstance(event, ToolCallStarted):
            self._names[event.id] = event.name
            self._line(f"[tool] {event.name} {preview(event.arguments.replace(chr(10), ' '), 80)}".rstrip())
        elif isinstance(event, ApprovalRequested):
            self._names[event.id] = event.name
            self._line(f"[approval] {event.name} is waiting for your yes or no")
        elif isinstance(event, ApprovalResolved):
            if not event.approved:
                self._denied.add(event.id)
            self._line(
                f"[approval] {self._names.get(event.id, 'tool')} {'approved' if event.approved else 'denied'}"
            )
        elif isinstance(event, ToolCallFinished):
            name = self._names.get(event.id, "tool")
            if event.id in self._denied:
                self._line(f"[tool] {name} not run (denied)")
                self._coalescer.feed(event)
                return
            outcome = (
                f"error: {preview(event.error, 120)}" if event.error else f"done in {seconds(event.seconds)}"
            )
            result = "" if event.error else " -> " + preview(event.result.replace("\n", " "), 80)
            self._line(f"[tool] {name} {outcome}{result}")
        elif isinstance(event, Retrying):
            self._line(f"[{retry_line(event)}]")
        elif isinstance(event, Notice):
            self._line(f"[{event.level}] {event.text}")
        elif isinstance(event, Failed):
            self._line(f"[failed: {event.error}]")
        elif isinstance(event, Done) and event.cut:
            self._line("[the stream was cut before the end; the answer is partial]")
        self._coalescer.feed(event)

    def finish(self, response: Response) -> None:
        if not response.done:
            self._line("[interrupted; the answer is partial]")
        line = turn_usage_line(response, self._meta.context_window)
        if line is not None:
            self._line(line)
        self._coalescer.finish()

    def _write(self, text: str, dim: bool = False) -> None:
        if not text:
            return
        self.stream.write(f"{_DIM}{text}{_RESET}" if dim and self._color else text)
        self._line_start = text.endswith("\n")

    def _end_line(self) -> None:
        if not self._line_start:
            self._write("\n")

    def _line(self, text: str) -> None:
        self._end_line()
        self._write(text + "\n")
        self._section = "" if self._section == "reasoning" else self._section

    def _flush(self) -> None:
        flush = getattr(self.stream, "flush", None)
        if flush is not None:
            flush()
