"""Every read from the wire, bounded in memory and time.

A server (or anything between us and it) can send a body that never ends, one line that
never ends, a gzip bomb (1 MB on the wire, 1 GiB decompressed), or keep-alive comments
forever. The clients read every body through here:

* `BodyDecoder` undoes ``Content-Encoding`` itself, at most `STEP` bytes of output per
  call (zlib's ``max_length``), so a compressed body costs at most one step of memory
  beyond what has been counted. httpx's own decoder inflates a whole network read at once
  (about 64 MiB for 64 KiB of zeros), which is why the raw bytes are read (``iter_raw``)
  and decoded here. Encodings other than gzip and deflate (we ask for only these) go
  through httpx's decoder.
* `read_capped` reads a whole body (a non-streamed answer, an error) up to a cap:
  past it, it raises `ResponseTooLargeError`, or for an error body keeps the first part.
* `StreamGuard` (`StreamGuard.batches`) counts a streamed body (`Settings.max_response_bytes`), splits it into SSE
  lines with a cap on one line (`Settings.max_line_bytes`), spots an HTML page in place of
  the stream, and keeps an idle deadline that counts from the last piece of the answer,
  not the last byte: a server that sends only ``: PROCESSING`` comments times out after
  `Settings.timeout_read` like a silent one.

The per-chunk work is a length sum, one ``time.monotonic()`` and the line split; nothing
runs per line, so the streaming hot path keeps its speed.
"""

from __future__ import annotations

import codecs
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

from ..errors import KimiTimeoutError, MalformedResponseError, ResponseTooLargeError
from .sse import LineSplitter

__all__ = ["STEP", "BodyDecoder", "StreamGuard", "read_capped", "aread_capped", "html_error", "mib", "raw_chunks", "araw_chunks"]

STEP = 1024 * 1024  # most decompressed bytes produced per call


def mib(n: int) -> str:
    return f"{n / (1024 * 1024):g} MiB" if n >= 1024 * 1024 else f"{n:,} bytes"


def html_error(url_host: str) -> MalformedResponseError:
    return MalformedResponseError(
        f"The server at {url_host} answered with an HTML page, not the API: check KIMI_BASE_URL "
        "(it should end in /v1 for most providers). Not retried."
    )


class BodyDecoder:
    """Raw body bytes in, decoded bytes out, never more than `STEP` at a time."""

    __slots__ = ("_fallback", "_first", "_z")

    def __init__(self, headers: Any, response: Any = None) -> None:
        encoding = (headers.get("content-encoding") or "").strip().lower() if headers is not None else ""
        if response is not None and response.is_stream_consumed:
            encoding = ""  # read already (an in-memory test response): httpx decoded it
        self._z: Any = None
        self._fallback: Any = None
        self._first = True
        if encoding in ("gzip", "x-gzip"):
            self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._z = zlib.decompressobj()
        elif encoding and encoding != "identity" and response is not None:
            # br, zstd, or a chain: httpx knows them (each network read inflated at once).
            self._fallback = response._get_content_decoder()

    def feed(self, raw: bytes) -> Iterator[bytes]:
        z = self._z
        if z is None:
            if self._fallback is not None:
                out = self._fallback.decode(raw)
                if out:
                    yield out
            elif raw:
                yield raw
            return
        try:
            data = z.decompress(raw, STEP)
        except zlib.error:
            if not self._first:
                raise MalformedResponseError("The server's compressed reply is damaged.") from None
            # "deflate" without the zlib header, as some servers send it.
            self._z = z = zlib.decompressobj(-zlib.MAX_WBITS)
            try:
                data = z.decompress(raw, STEP)
            except zlib.error:
                raise MalformedResponseError("The server's compressed reply is damaged.") from None
        self._first = False
        if data:
            yield data
        while z.unconsumed_tail:
            data = z.decompress(z.unconsumed_tail, STEP)
            if data:
                yield data

    def flush(self) -> bytes:
        if self._fallback is not None:
            return bytes(self._fallback.flush())
        if self._z is not None:
            return self._z.flush(STEP)
        return b""


def _too_large(limit: int, what: str) -> ResponseTooLargeError:
    kept = "; what arrived before is kept" if what == "streamed answer" else ""
    return ResponseTooLargeError(
        f"The server's {what} passed {mib(limit)} (after decompression) and was cut off there{kept}. "
        "Raise %config Kimi.max_response_bytes if you expect replies this large."
    )


def _add(buf: bytearray, piece: bytes, limit: int, keep_head: bool, what: str) -> bool:
    """Append ``piece``; True when the cap is reached (``keep_head``) or raise."""
    if len(buf) + len(piece) <= limit:
        buf += piece
        return False
    if keep_head:
        buf += piece[: limit - len(buf)]
        return True
    raise _too_large(limit, what)


def _past(deadline: float | None, what: str) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise KimiTimeoutError(f"The server's {what} took too long to arrive; it was not read further.")


def read_capped(resp: Any, limit: int, *, keep_head: bool = False, what: str = "reply",
                sink: Any = None, deadline: float | None = None) -> bytearray:
    """The decoded body of ``resp`` (a streamed httpx response), at most ``limit`` bytes.

    Past the cap: raises `ResponseTooLargeError`, or with ``keep_head`` returns the first
    ``limit`` bytes (for error bodies, only a short part of which is ever shown). With
    ``sink`` (a binary file) the body is written there as it arrives and nothing is kept;
    ``deadline`` (``time.monotonic()``) bounds the whole read.
    """
    decoder = BodyDecoder(resp.headers, resp)
    buf = bytearray()
    size = 0
    for raw in raw_chunks(resp):
        _past(deadline, what)
        for piece in decoder.feed(raw):
            if sink is None:
                if _add(buf, piece, limit, keep_head, what):
                    return buf
                continue
            size += len(piece)
            if size > limit:
                raise _too_large(limit, what)
            sink.write(piece)
    _add(buf, decoder.flush(), limit, keep_head, what)
    if sink is not None and buf:
        sink.write(buf)
        return bytearray()
    return buf  # not copied into bytes: json.loads and decode take it as it is


async def aread_capped(resp: Any, limit: int, *, keep_head: bool = False, what: str = "reply",
                       sink: Any = None, deadline: float | None = None) -> bytearray:
    """The async twin of `read_capped`."""
    decoder = BodyDecoder(resp.headers, resp)
    buf = bytearray()
    size = 0
    async for raw in araw_chunks(resp):
        _past(deadline, what)
        for piece in decoder.feed(raw):
            if sink is None:
                if _add(buf, piece, limit, keep_head, what):
                    return buf
                continue
            size += len(piece)
            if size > limit:
                raise _too_large(limit, what)
            sink.write(piece)
    _add(buf, decoder.flush(), limit, keep_head, what)
    if sink is not None and buf:
        sink.write(buf)
        return bytearray()
    return buf


class StreamGuard:
    """The bounded SSE body: raw chunks in (`lines`), lines out, with the caps and the idle
    deadline. Call `tick` after each chunk's lines are handled, saying whether they held
    any of the answer."""

    __slots__ = ("_decoder", "_host", "_idle", "_last", "_limit", "_sniff", "_splitter", "_text", "_total")

    def __init__(self, resp: Any, *, max_line: int, max_total: int, idle: float, host: str) -> None:
        self._decoder = BodyDecoder(resp.headers, resp)
        self._text = codecs.getincrementaldecoder("utf-8")("replace")
        self._splitter = LineSplitter(max_line)
        self._limit = max_total
        self._total = 0
        self._idle = idle
        self._host = host
        self._last = time.monotonic()
        self._sniff = True

    def batches(self, raws: Iterator[bytes]) -> Iterator[list[str]]:
        """The complete lines of the body, a list per decoded piece (at most `STEP` bytes
        of a compressed body, one network read of a plain one)."""
        feed = self._decoder.feed
        split = self._splitter.feed
        decode = self._text.decode
        for raw in raws:
            for data in feed(raw):
                self._total += len(data)
                if self._total > self._limit:
                    raise _too_large(self._limit, "streamed answer")
                if self._sniff:
                    self._check_html(data)
                yield split(decode(data))

    async def abatches(self, raws: AsyncIterator[bytes]) -> AsyncIterator[list[str]]:
        """The async twin of `batches`."""
        feed = self._decoder.feed
        split = self._splitter.feed
        decode = self._text.decode
        async for raw in raws:
            for data in feed(raw):
                self._total += len(data)
                if self._total > self._limit:
                    raise _too_large(self._limit, "streamed answer")
                if self._sniff:
                    self._check_html(data)
                yield split(decode(data))

    def _check_html(self, data: bytes) -> None:
        head = data.lstrip()
        if head:
            self._sniff = False
            if head[:1] == b"<":
                raise html_error(self._host)

    def close(self) -> list[str]:
        """The last lines (a last line without a line ending included)."""
        tail = self._decoder.flush()
        lines = self._splitter.feed(self._text.decode(tail, final=True))
        return lines + self._splitter.close()

    def tick(self, content: bool) -> None:
        now = time.monotonic()
        if content:
            self._last = now
        elif now - self._last > self._idle:
            raise KimiTimeoutError(
                f"The server sent no part of the answer for {self._idle:g} s (only keep-alive "
                "comments or empty lines). Raise %config Kimi.timeout_read if the model needs "
                "longer to start."
            )


def raw_chunks(resp: Any) -> Iterator[bytes]:
    """The raw (still encoded) body of a streamed httpx response. A response that was read
    already (httpx builds in-memory responses, as in ``MockTransport``, read) gives its
    decoded content; `BodyDecoder` then leaves it as it is."""
    if resp.is_stream_consumed:
        return iter((resp.content,))
    return resp.iter_raw()  # type: ignore[no-any-return]


async def araw_chunks(resp: Any) -> AsyncIterator[bytes]:
    """The async twin of `raw_chunks`."""
    if resp.is_stream_consumed:
        yield resp.content
        return
    async for raw in resp.aiter_raw():
        yield raw
