"""The wire: sync and async chat completions over httpx, as a stream of events.

``KimiClient.stream_chat`` returns an `EventStream`: iterate it for events, it always ends
with exactly one `Done` or `Failed`, and it never raises for an API or network problem
(those become `Failed` with a message that says what to do). It does raise
KeyboardInterrupt / CancelledError, closing the connection on the way out. Retries happen
only before the first token arrives; once text has streamed, a failure keeps the partial
answer and says it was cut.

Every body is read through `client.bounded` (caps on one line, on the whole body after
decompression, on error bodies; an idle deadline that keep-alive comments do not reset).
Redirects are never followed (the key would go with them) and never retried; an HTML page
in place of the API says to check the base URL.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx

from ..errors import (
    ERROR_BODY_BYTES,
    KimiError,
    MalformedResponseError,
    ModelNotFoundError,
    RateLimitError,
    RedirectError,
    error_from_response,
)
from ..events import Event, Failed, Notice, Retrying
from ..ratelimit import rate_limits
from ..response import Response
from ..settings import Settings
from .bounded import StreamGuard, araw_chunks, aread_capped, html_error, raw_chunks, read_capped
from .chunks import TurnState
from .pool import capped_reads, tuned_async_client, tuned_sync_client
from .reader import StreamReader
from .request import AsyncSentBody, SentBody, auth_headers, build_payload, encode_body, json_headers
from .retry import backoff_delay, from_transport_error, should_retry

__all__ = ["KimiClient", "AsyncKimiClient", "EventStream", "AsyncEventStream"]


_CLOSED_STREAM = httpx.ByteStream(b"")


def _unlink(resp: httpx.Response | None) -> None:
    """Break a closed streamed response's cycle with its stream (httpx's ``Response.stream``
    points back at the response), so the response, its request and the connection
    bookkeeping behind it are freed at once instead of at the next full garbage collection:
    a 10,000-row run otherwise held a few thousand dead requests at a time."""
    if resp is not None and resp.is_closed:
        resp.stream = _CLOSED_STREAM


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

    def _prepare(self, messages: list[dict[str, Any]], stream: bool,
                 **kw: Any) -> tuple[str, bytes, dict[str, str], list[Notice], str | None]:
        """The URL, the encoded body (once per turn, not per retry), the headers, the notices
        (``notices`` passed in are shown first: document summaries, --web) and the prefill."""
        shown = [n for n in kw.pop("notices", None) or () if isinstance(n, Notice)]
        key = self.settings.require_key()
        payload, notices = build_payload(self.settings, messages, stream=stream, **kw)
        prefill = self._sent_prefill(payload)
        body = encode_body(payload)
        return self.settings.chat_url, body, json_headers(key, body), [*shown, *notices], prefill

    def _http_error(self, status: int, body: str, headers: Any) -> KimiError:
        return error_from_response(status, body, headers, base_url=self.settings.base_url,
                                   model=self.settings.model, secret=self._secret)

    @property
    def _secret(self) -> tuple[str, ...]:
        from ..secrets import secrets_of

        return secrets_of(self.settings)

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
        retry_after = error.retry_after
        if retry_after is None and isinstance(error, RateLimitError):
            retry_after = rate_limits().retry_after(s.api_base)  # the reset the headers announced
        return backoff_delay(attempt, s.retry_backoff, s.retry_max_wait, retry_after)

    def _wait_for_limits(self) -> tuple[float, Notice | None]:
        """Seconds to wait before sending because the server said nothing is left, and the notice."""
        wait = rate_limits().wait_before_send(self.settings.api_base)
        if wait <= 0 or wait > self.settings.retry_max_wait:
            return 0.0, None
        return wait, Notice(f"Waiting {wait:.1f} s: the server's rate limit has nothing left until it resets.",
                            "info")

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

    def _host(self, url: str | None = None) -> str:
        try:
            return httpx.URL(url or self.settings.api_base).host or "the server"
        except Exception:
            return "the server"

    def _error_limit(self) -> int:
        return ERROR_BODY_BYTES + 4096  # a little over: a key cut at the end is redacted, then cut off

    def _check_status(self, resp: httpx.Response) -> None:
        """Redirects and HTML pages: clear, final errors (the body is not read). The rate-limit
        headers are recorded first, whatever the status (a 429 carries them too)."""
        rate_limits().record(self.settings.api_base, resp.headers)
        status = resp.status_code
        if 300 <= status < 400:
            location = resp.headers.get("location") or ""
            try:
                target = httpx.URL(resp.url).join(location).host if location else ""
            except Exception:
                target = ""
            where = f" to {target}" if target else ""
            raise RedirectError(
                f"The server at {self._host(str(resp.url))} redirected the request{where} ({status}). "
                "Requests are never sent on to another address with your key, and not retried: if the "
                "API has moved, set KIMI_BASE_URL to the new address yourself.", status=status)
        if status < 400 and "text/html" in (resp.headers.get("content-type") or "").lower():
            raise html_error(self._host(str(resp.url)))

    def _body_json(self, body: bytes | bytearray, resp: httpx.Response) -> Any:
        try:
            return json.loads(body)
        except ValueError:
            if body.lstrip()[:1] == b"<":
                raise html_error(self._host(str(resp.url))) from None
            raise MalformedResponseError("The server's reply was not JSON.") from None

    def _error_of(self, resp: httpx.Response, body: bytes | bytearray) -> KimiError:
        return self._http_error(resp.status_code, body.decode("utf-8", "replace"), resp.headers)

    def _opened(self, resp: httpx.Response, stream: bool, state: TurnState,
                body: bytes | bytearray | None) -> list[Event]:
        """The simulator notice; a whole non-streamed answer (``body``, read bounded)."""
        events: list[Event] = [SIMULATED] if "x-kimi-simulator" in resp.headers else []
        if not stream:
            assert body is not None
            events += state.handle_message(self._body_json(body, resp))
            events += state.finish()
        return events

    def _guard(self, resp: httpx.Response, url: str) -> StreamGuard:
        s = self.settings
        return StreamGuard(resp, max_line=s.max_line_bytes, max_total=s.max_response_bytes,
                           idle=s.timeout_read, host=self._host(url))

    @staticmethod
    def _sent_prefill(payload: dict[str, Any]) -> str | None:
        """The prefix of a partial-mode request: the answer starts with it (partial.py)."""
        messages = payload.get("messages") or []
        last = messages[-1] if messages else None
        if isinstance(last, dict) and last.get("partial") is True and isinstance(last.get("content"), str):
            return last["content"] or None
        return None

    def _learn(self, body: Any) -> list[dict[str, Any]]:
        from ..models import registry

        data = body.get("data") if isinstance(body, dict) else body
        entries = [m for m in data or [] if isinstance(m, dict) and isinstance(m.get("id"), str) and m["id"]]
        registry().learn(self.settings.api_base, entries)
        return entries

    def _suggest_models(self, error: KimiError, listed: list[str] | None) -> KimiError:
        """A 404 for the model: say whether it is retired and which Kimi models the server has."""
        from ..models import not_found_hint

        hint = not_found_hint(self.settings.model, listed)
        return ModelNotFoundError(f"{error.message} {hint}" if hint else error.message, status=error.status)

    def __repr__(self) -> str:  # never shows the key
        return f"{type(self).__name__}(base_url={self.settings.base_url!r}, model={self.settings.model!r})"


class KimiClient(_Base):
    """Synchronous client. One httpx.Client, reused across requests (connection pooling)."""

    def __init__(self, settings: Settings, *, http: httpx.Client | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        super().__init__(settings)
        self._http = http or tuned_sync_client(timeout=_timeout(settings))
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
            url, body, headers, notices, prefill = self._prepare(messages, stream, **kw)
        except KimiError as error:
            failed = _failed(error, False)
            feed(failed)
            yield failed
            return
        for notice in notices:
            feed(notice)
            yield notice
        wait, waiting = self._wait_for_limits()
        if waiting is not None:
            feed(waiting)
            yield waiting
            self._sleep(wait)
        attempt = 0
        while True:
            attempt += 1
            state = TurnState(self.settings.price(), self.settings.price_note(), prefill)
            sent = SentBody(body)  # its bytes are released when this attempt ends
            resp = None
            try:
                with self._http.stream("POST", url, content=sent, headers=headers, follow_redirects=False) as resp:
                    self._check_status(resp)
                    if resp.status_code >= 400:
                        raise self._error_of(resp, read_capped(resp, self._error_limit(), keep_head=True))
                    answer = None if stream else read_capped(resp, self.settings.max_response_bytes)
                    for event in self._opened(resp, stream, state, answer):
                        feed(event)
                        yield event
                    if stream:
                        yield from self._stream_body(resp, state, response, url)
                return
            except KimiError as error:
                failure = error
            except httpx.HTTPError as exc:
                failure = self._transport_error(exc, url, state.saw_content)
            finally:
                sent.release()
                _unlink(resp)
            wait = self._retry_plan(failure, attempt, state.saw_content)
            if wait is None:
                if isinstance(failure, ModelNotFoundError):
                    failure = self._suggest_models(failure, self._listed_or_none())
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

    def _stream_body(self, resp: httpx.Response, state: TurnState, response: Response,
                     url: str) -> Iterator[Event]:
        """The SSE body: events fed to ``response`` and yielded, ending with `Done`."""
        reader = StreamReader(state, response, self._handle_data, self._raise_error_chunk)
        read = reader.read
        guard = self._guard(resp, url)
        tick = guard.tick
        chunks = raw_chunks(resp)
        for lines in guard.batches(chunks):
            content = False
            for line in lines:
                events = read(line)
                if events is None:
                    break
                if events:
                    content = True
                    yield from events
            else:
                tick(content)
                continue
            _drain_sync(resp, chunks)
            break
        else:
            for line in guard.close():
                if reader.read(line) is None:
                    break
        yield from reader.close()
        yield from reader.finish()

    def list_models(self) -> list[str]:
        return _model_ids(self.model_entries())

    def model_entries(self) -> list[dict[str, Any]]:
        """The server's ``/models`` entries; the model registry learns from them."""
        return self._learn(self._get("/models"))

    def _listed_or_none(self) -> list[str] | None:
        try:
            return _model_ids(self.model_entries())
        except KimiError:
            return None

    def balance(self) -> Any:
        """The account balance body of ``GET /users/me/balance`` (Moonshot's platforms)."""
        return self._get("/users/me/balance")

    def estimate_tokens(self, messages: list[dict[str, Any]]) -> int:
        body = self._post("/tokenizers/estimate-token-count", {"model": self.settings.model, "messages": messages})
        return int((body.get("data") or {}).get("total_tokens") or 0)

    def _get(self, path: str) -> Any:
        return self._call("GET", path, None)

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        return self._call("POST", path, body)

    def _call(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        key = self.settings.require_key()
        url = self.settings.api_base + path
        try:
            with self._http.stream(method, url, json=body, headers=auth_headers(key),
                                   follow_redirects=False) as resp:
                self._check_status(resp)
                if resp.status_code >= 400:
                    raise self._error_of(resp, read_capped(resp, self._error_limit(), keep_head=True))
                return self._body_json(read_capped(resp, self.settings.max_response_bytes), resp)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, url, False) from None

class AsyncKimiClient(_Base):
    """The async twin: same events, same retries, on httpx.AsyncClient."""

    def __init__(self, settings: Settings, *, http: httpx.AsyncClient | None = None,
                 sleep: Callable[[float], Any] = asyncio.sleep):
        super().__init__(settings)
        self._http = http or tuned_async_client(timeout=_timeout(settings))
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
            url, body, headers, notices, prefill = self._prepare(messages, stream, **kw)
        except KimiError as error:
            failed = _failed(error, False)
            feed(failed)
            yield failed
            return
        for notice in notices:
            feed(notice)
            yield notice
        wait, waiting = self._wait_for_limits()
        if waiting is not None:
            feed(waiting)
            yield waiting
            await self._sleep(wait)
        attempt = 0
        while True:
            attempt += 1
            state = TurnState(self.settings.price(), self.settings.price_note(), prefill)
            sent = AsyncSentBody(body)  # its bytes are released when this attempt ends
            resp = None
            try:
                async with self._http.stream("POST", url, content=sent, headers=headers,
                                             follow_redirects=False) as resp:
                    self._check_status(resp)
                    if resp.status_code >= 400:
                        raise self._error_of(resp, await aread_capped(resp, self._error_limit(), keep_head=True))
                    answer = None if stream else await aread_capped(resp, self.settings.max_response_bytes)
                    for event in self._opened(resp, stream, state, answer):
                        feed(event)
                        yield event
                    if stream:
                        reader = StreamReader(state, response, self._handle_data, self._raise_error_chunk)
                        guard = self._guard(resp, url)
                        finished = False
                        chunks = araw_chunks(resp)
                        async for lines in guard.abatches(chunks):
                            content = False
                            for line in lines:
                                events = reader.read(line)
                                if events is None:
                                    finished = True
                                    break
                                if events:
                                    content = True
                                    for event in events:
                                        yield event
                            if finished:
                                break
                            guard.tick(content)
                        if not finished:
                            for line in guard.close():
                                if reader.read(line) is None:
                                    break
                        else:
                            await _drain(chunks)
                        for event in reader.close() + reader.finish():
                            yield event
                return
            except KimiError as error:
                failure = error
            except httpx.HTTPError as exc:
                failure = self._transport_error(exc, url, state.saw_content)
            finally:
                sent.release()
                _unlink(resp)
            wait = self._retry_plan(failure, attempt, state.saw_content)
            if wait is None:
                if isinstance(failure, ModelNotFoundError):
                    failure = self._suggest_models(failure, await self._listed_or_none())
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
        return _model_ids(await self.model_entries())

    async def model_entries(self) -> list[dict[str, Any]]:
        """The server's ``/models`` entries; the model registry learns from them."""
        key = self.settings.require_key()
        url = self.settings.api_base + "/models"
        try:
            async with self._http.stream("GET", url, headers=auth_headers(key), follow_redirects=False) as resp:
                self._check_status(resp)
                if resp.status_code >= 400:
                    raise self._error_of(resp, await aread_capped(resp, self._error_limit(), keep_head=True))
                body = await aread_capped(resp, self.settings.max_response_bytes)
                return self._learn(self._body_json(body, resp))
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, url, False) from None

    async def _listed_or_none(self) -> list[str] | None:
        try:
            return _model_ids(await self.model_entries())
        except KimiError:
            return None


async def _drain(chunks: Any, limit: int = 64 * 1024, seconds: float = 0.25) -> bool:
    """After ``[DONE]``: read what is left of the body, bounded in bytes and time, so that
    httpcore puts the connection back in the pool (a body left unread closes it, and every
    concurrent ``aask()`` then pays a new connection, and a TLS handshake on HTTPS)."""
    async def rest() -> bool:
        read = 0
        async for raw in chunks:
            read += len(raw)
            if read > limit:
                return False
        return True

    try:
        return await asyncio.wait_for(rest(), seconds)
    except (asyncio.TimeoutError, httpx.HTTPError, KimiError):
        return False


def _drain_sync(resp: httpx.Response, chunks: Iterator[bytes], limit: int = 64 * 1024,
                seconds: float = 0.25) -> bool:
    """`_drain` for the sync client: each read capped to ``seconds`` (`pool.capped_reads`),
    the whole at most about twice that. Without a cappable connection nothing is read."""
    deadline = time.monotonic() + seconds
    with capped_reads(resp, seconds) as capped:
        if not capped:
            return False
        read = 0
        try:
            for raw in chunks:
                read += len(raw)
                if read > limit or time.monotonic() > deadline:
                    return False
        except (httpx.HTTPError, KimiError):
            return False
    return True


def _model_ids(body: Any) -> list[str]:
    data = body.get("data") if isinstance(body, dict) else body
    ids = [m.get("id") for m in data or [] if isinstance(m, dict) and m.get("id")]
    return sorted(ids)

