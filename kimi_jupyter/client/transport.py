"""The wire: sync and async chat completions over httpx, as a stream of events.

``KimiClient.stream_chat`` returns an `EventStream`: iterate it for events, it always ends
with exactly one `Done` or `Failed`, and it never raises for an API or network problem
(those become `Failed` with a message that says what to do). It does raise
KeyboardInterrupt / CancelledError, closing the connection on the way out. Retries happen
only before the first token arrives; once text has streamed, a failure keeps the partial
answer and says it was cut.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx

from ..errors import (
    KimiError,
    MalformedResponseError,
    error_from_response,
)
from ..events import Event, Failed, Notice, Retrying
from ..response import Response
from ..settings import Settings
from .chunks import TurnState
from .reader import StreamReader
from .request import AsyncSentBody, SentBody, auth_headers, build_payload, encode_body, json_headers
from .retry import backoff_delay, from_transport_error, should_retry
from .sse import aiter_lines, iter_lines

__all__ = ["KimiClient", "AsyncKimiClient", "EventStream", "AsyncEventStream"]


def _timeout(settings: Settings) -> httpx.Timeout:
    return httpx.Timeout(connect=settings.timeout_connect, read=settings.timeout_read,
                         write=settings.timeout_read, pool=settings.timeout_connect)


SIMULATED = Notice("Simulated reply: this answer comes from the bundled Kimi simulator, not from Kimi.", "info")


def _failed(error: KimiError, partial: bool, retries: int = 0) -> Failed:
    message = str(error)
    if retries and error.retryable and not partial:  # shown live; the saved output must say they were bounded
        message += f" (gave up after {retries} {'retry' if retries == 1 else 'retries'})"
    return Failed(message, type(error).__name__, partial=partial)


def _error_chunk(chunk: dict[str, Any]) -> dict[str, Any] | None:
    """Some servers report a failure inside the stream as ``{"error": {...}}``."""
    err = chunk.get("error")
    return err if isinstance(err, dict) and not chunk.get("choices") else None


class EventStream:
    """Iterable of a turn's events; ``.response`` is their snapshot; close() stops it.

    The client feeds each event to ``response`` before yielding it (inside its per-line
    loop, so the snapshot costs no generator layer of its own): ``response`` is current
    whenever an event is seen, and complete once the stream is.
    """

    def __init__(self, events: Iterator[Event], response: Response):
        self._events = events
        self.response = response

    def __iter__(self) -> Iterator[Event]:
        return self._events

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        close = getattr(self._events, "close", None)
        if close is not None:
            close()

    def until_done(self) -> Response:
        for _ in self:
            pass
        return self.response


class AsyncEventStream:
    """The async twin of `EventStream`."""

    def __init__(self, events: AsyncIterator[Event], response: Response):
        self._events = events
        self.response = response

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._events

    async def __aenter__(self) -> AsyncEventStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        aclose = getattr(self._events, "aclose", None)
        if aclose is not None:
            await aclose()

    async def until_done(self) -> Response:
        async for _ in self:
            pass
        return self.response


class _Base:
    def __init__(self, settings: Settings):
        self.settings = settings

    def _prepare(self, messages: list[dict[str, Any]], stream: bool, **kw: Any) -> tuple[str, bytes, dict[str, str], list[Notice]]:
        """The URL, the encoded body (once per turn, not per retry), the headers, the notices."""
        key = self.settings.require_key()
        payload, notices = build_payload(self.settings, messages, stream=stream, **kw)
        body = encode_body(payload)
        return self.settings.chat_url, body, json_headers(key, body), notices

    def _http_error(self, status: int, body: str, headers: Any) -> KimiError:
        return error_from_response(status, body, headers, base_url=self.settings.base_url,
                                   model=self.settings.model, secret=self._secret)

    @property
    def _secret(self) -> str | None:
        return self.settings.api_key.get() if self.settings.api_key else None

    def _transport_error(self, exc: httpx.HTTPError, url: str, saw_content: bool) -> KimiError:
        return from_transport_error(exc, url, self.settings.timeout_read, saw_content, self._secret)

    def _decode(self, data: str) -> dict[str, Any] | None:
        try:
            chunk = json.loads(data)
        except ValueError:
            # Two events glued without a blank line: try each line on its own.
            return None
        return chunk if isinstance(chunk, dict) else None

    def _retry_plan(self, error: KimiError, attempt: int, saw_content: bool) -> float | None:
        s = self.settings
        if not should_retry(error, attempt, s.max_retries, s.retry_max_wait, saw_content):
            return None
        return backoff_delay(attempt, s.retry_backoff, s.retry_max_wait, error.retry_after)

    def _handle_data(self, data: str, state: TurnState) -> list[Event]:
        """The events of one SSE data payload (a list: this runs once per token)."""
        try:
            chunk = json.loads(data)
        except ValueError:
            chunk = None
        if isinstance(chunk, dict):
            if "error" in chunk:
                self._raise_error_chunk(chunk)
            return state.handle_chunk(chunk)
        # Two events glued without a blank line, or garbage: try each line on its own.
        parts = [self._decode(line) for line in data.split("\n")] if "\n" in data else [None]
        if any(p is None for p in parts):
            return [Notice("Skipped a malformed chunk from the server.", "warning")]
        events: list[Event] = []
        for part in parts:
            assert part is not None
            if "error" in part:
                self._raise_error_chunk(part)
            events.extend(state.handle_chunk(part))
        return events

    def _raise_error_chunk(self, chunk: dict[str, Any]) -> None:
        err = _error_chunk(chunk)
        if err is not None:
            code = err.get("code")
            status = code if isinstance(code, int) and 400 <= code < 600 else 500
            raise self._http_error(status, json.dumps({"error": err}), None)

    def _json_or_raise(self, resp: httpx.Response) -> Any:
        if resp.status_code >= 400:
            raise self._http_error(resp.status_code, resp.text, resp.headers)
        try:
            return resp.json()
        except ValueError:
            raise MalformedResponseError("The server's reply was not JSON.") from None

    def _opened(self, resp: httpx.Response, stream: bool, state: TurnState) -> list[Event]:
        """Check the status; the simulator notice; a whole non-streamed answer."""
        if resp.status_code >= 400:
            resp.read()
            raise self._http_error(resp.status_code, resp.text, resp.headers)
        events: list[Event] = [SIMULATED] if "x-kimi-simulator" in resp.headers else []
        if not stream:
            resp.read()
            try:
                body = resp.json()
            except ValueError as exc:
                raise MalformedResponseError("The server's reply was not JSON.") from exc
            events += state.handle_message(body)
            events += state.finish()
        return events

    def __repr__(self) -> str:  # never shows the key
        return f"{type(self).__name__}(base_url={self.settings.base_url!r}, model={self.settings.model!r})"


class KimiClient(_Base):
    """Synchronous client. One httpx.Client, reused across requests (connection pooling)."""

    def __init__(self, settings: Settings, *, http: httpx.Client | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        super().__init__(settings)
        self._http = http or httpx.Client(timeout=_timeout(settings))
        self._sleep = sleep

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> KimiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stream_chat(self, messages: list[dict[str, Any]], *, stream: bool | None = None, **kw: Any) -> EventStream:
        response = Response(model=self.settings.model)
        use_stream = self.settings.stream if stream is None else stream
        return EventStream(self._events(messages, use_stream, kw, response), response)

    def chat(self, messages: list[dict[str, Any]], **kw: Any) -> Response:
        return self.stream_chat(messages, **kw).until_done()

    def _events(self, messages: list[dict[str, Any]], stream: bool, kw: dict[str, Any],
                response: Response) -> Iterator[Event]:
        """Every event of the turn, each fed to ``response`` before it is yielded: the
        request, its retries, and the body (a `StreamReader` per streamed attempt)."""
        feed = response.feed
        try:
            url, body, headers, notices = self._prepare(messages, stream, **kw)
        except KimiError as error:
            failed = _failed(error, False)
            feed(failed)
            yield failed
            return
        for notice in notices:
            feed(notice)
            yield notice
        attempt = 0
        while True:
            attempt += 1
            state = TurnState(self.settings.price())
            sent = SentBody(body)  # its bytes are released when this attempt ends
            try:
                with self._http.stream("POST", url, content=sent, headers=headers) as resp:
                    for event in self._opened(resp, stream, state):
                        feed(event)
                        yield event
                    if stream:
                        yield from self._stream_body(resp, state, response)
                return
            except KimiError as error:
                failure = error
            except httpx.HTTPError as exc:
                failure = self._transport_error(exc, url, state.saw_content)
            finally:
                sent.release()
            wait = self._retry_plan(failure, attempt, state.saw_content)
            if wait is None:
                closing = state.finish(cut=True) if state.saw_content else []
                closing.append(_failed(failure, state.saw_content, attempt - 1))
                for event in closing:
                    feed(event)
                    yield event
                return
            retrying = Retrying(attempt, wait, str(failure))
            feed(retrying)
            yield retrying
            self._sleep(wait)

    def _stream_body(self, resp: httpx.Response, state: TurnState, response: Response) -> Iterator[Event]:
        """The SSE body: events fed to ``response`` and yielded, ending with `Done`."""
        reader = StreamReader(state, response, self._handle_data, self._raise_error_chunk)
        read = reader.read
        for line in iter_lines(resp.iter_text()):
            events = read(line)
            if events is None:
                break
            yield from events
        yield from reader.close()
        yield from reader.finish()

    def list_models(self) -> list[str]:
        return _model_ids(self._get("/models"))

    def estimate_tokens(self, messages: list[dict[str, Any]]) -> int:
        body = self._post("/tokenizers/estimate-token-count", {"model": self.settings.model, "messages": messages})
        return int((body.get("data") or {}).get("total_tokens") or 0)

    def _get(self, path: str) -> Any:
        key = self.settings.require_key()
        url = self.settings.api_base + path
        try:
            resp = self._http.get(url, headers=auth_headers(key))
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, url, False) from None
        return self._json_or_raise(resp)

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        key = self.settings.require_key()
        url = self.settings.api_base + path
        try:
            resp = self._http.post(url, json=body, headers=auth_headers(key))
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, url, False) from None
        return self._json_or_raise(resp)

class AsyncKimiClient(_Base):
    """The async twin: same events, same retries, on httpx.AsyncClient."""

    def __init__(self, settings: Settings, *, http: httpx.AsyncClient | None = None,
                 sleep: Callable[[float], Any] = asyncio.sleep):
        super().__init__(settings)
        self._http = http or httpx.AsyncClient(timeout=_timeout(settings))
        self._sleep = sleep

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncKimiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def stream_chat(self, messages: list[dict[str, Any]], *, stream: bool | None = None, **kw: Any) -> AsyncEventStream:
        response = Response(model=self.settings.model)
        use_stream = self.settings.stream if stream is None else stream
        return AsyncEventStream(self._events(messages, use_stream, kw, response), response)

    async def chat(self, messages: list[dict[str, Any]], **kw: Any) -> Response:
        return await self.stream_chat(messages, **kw).until_done()

    async def _events(self, messages: list[dict[str, Any]], stream: bool, kw: dict[str, Any],
                      response: Response) -> AsyncIterator[Event]:
        """As `KimiClient._events`: every event, each fed to ``response`` before it is yielded."""
        feed = response.feed
        try:
            url, body, headers, notices = self._prepare(messages, stream, **kw)
        except KimiError as error:
            failed = _failed(error, False)
            feed(failed)
            yield failed
            return
        for notice in notices:
            feed(notice)
            yield notice
        attempt = 0
        while True:
            attempt += 1
            state = TurnState(self.settings.price())
            sent = AsyncSentBody(body)  # its bytes are released when this attempt ends
            try:
                async with self._http.stream("POST", url, content=sent, headers=headers) as resp:
                    if resp.status_code >= 400 or not stream:
                        await resp.aread()  # then _opened's read() has the body already
                    for event in self._opened(resp, stream, state):
                        feed(event)
                        yield event
                    if stream:
                        reader = StreamReader(state, response, self._handle_data, self._raise_error_chunk)
                        async for line in aiter_lines(resp.aiter_text()):
                            events = reader.read(line)
                            if events is None:
                                break
                            for event in events:
                                yield event
                        for event in reader.close() + reader.finish():
                            yield event
                return
            except KimiError as error:
                failure = error
            except httpx.HTTPError as exc:
                failure = self._transport_error(exc, url, state.saw_content)
            finally:
                sent.release()
            wait = self._retry_plan(failure, attempt, state.saw_content)
            if wait is None:
                closing = state.finish(cut=True) if state.saw_content else []
                closing.append(_failed(failure, state.saw_content, attempt - 1))
                for event in closing:
                    feed(event)
                    yield event
                return
            retrying = Retrying(attempt, wait, str(failure))
            feed(retrying)
            yield retrying
            await self._sleep(wait)

    async def list_models(self) -> list[str]:
        key = self.settings.require_key()
        url = self.settings.api_base + "/models"
        try:
            resp = await self._http.get(url, headers=auth_headers(key))
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, url, False) from None
        return _model_ids(self._json_or_raise(resp))


def _model_ids(body: Any) -> list[str]:
    data = body.get("data") if isinstance(body, dict) else body
    ids = [m.get("id") for m in data or [] if isinstance(m, dict) and m.get("id")]
    return sorted(ids)

