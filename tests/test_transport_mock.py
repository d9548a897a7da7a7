"""Client behaviour on canned HTTP exchanges (httpx.MockTransport, no server)."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from kimi_jupyter.client import AsyncKimiClient, KimiClient
from kimi_jupyter.events import Done, Failed, Notice, Retrying, TextDelta, Usage
from kimi_jupyter.settings import resolve_settings

KEY = "sk-test-0123456789abcdefghijklmn"


def settings(**kw):
    base = {"api_key": KEY, "base_url": "https://api.moonshot.cn/v1"}
    base.update(kw)
    return resolve_settings(explicit=base, environ={})


def sse(*chunks, done=True):
    lines = [f"data: {json.dumps(c)}\n\n" for c in chunks]
    if done:
        lines.append("data: [DONE]\n\n")
    return "".join(lines).encode()


def text_chunk(text, finish=None, usage=None):
    choice = {"index": 0, "delta": {"content": text} if text else {}, "finish_reason": finish}
    if usage:
        choice["usage"] = usage
    return {"id": "c", "object": "chat.completion.chunk", "model": "kimi-k2.5", "choices": [choice]}


USAGE = {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}
OK_BODY = sse(text_chunk("Hel"), text_chunk("lo"), text_chunk("", "stop", USAGE))


def client_with(handler, sleeps=None, **kw):
    sleeps = [] if sleeps is None else sleeps
    return KimiClient(settings(**kw), http=httpx.Client(transport=httpx.MockTransport(handler)),
                      sleep=sleeps.append)


def test_stream_yields_text_usage_done_and_sends_moonshot_payload():
    seen = {}

    def handler(request):
        seen["body"] = json.loads(request.content)
        seen["auth"] = request.headers["authorization"]
        return httpx.Response(200, content=OK_BODY, headers={"content-type": "text/event-stream"})

    client = client_with(handler, thinking=False, max_tokens=100)
    events = list(client.stream_chat([{"role": "user", "content": "hi"}]))
    assert [e for e in events if isinstance(e, TextDelta)] == [TextDelta("Hel"), TextDelta("lo")]
    assert events[-1] == Done("stop")
    usage = next(e for e in events if isinstance(e, Usage))
    assert usage.prompt == 10 and usage.currency == "CNY" and usage.cost > 0
    body = seen["body"]
    assert body["thinking"] == {"type": "disabled"} and body["max_tokens"] == 100 and body["stream"] is True
    assert "stream_options" not in body and "temperature" not in body
    assert seen["auth"] == f"Bearer {KEY}"


def test_fixed_sampling_params_are_dropped_with_a_notice():
    seen = {}

    def handler(request):
        seen["body"] = json.loads(request.content)
        return httpx.Response(200, content=OK_BODY)

    events = list(client_with(handler).stream_chat([{"role": "user", "content": "x"}], extra={"temperature": 0.3, "seed": 1}))
    assert "temperature" not in seen["body"] and seen["body"]["seed"] == 1
    assert any(isinstance(e, Notice) and "temperature" in e.text for e in events)


def test_openai_compatible_preset_asks_for_stream_usage():
    seen = {}

    def handler(request):
        seen["body"] = json.loads(request.content)
        return httpx.Response(200, content=OK_BODY)

    list(client_with(handler, base_url="http://localhost:9/v1").stream_chat([{"role": "user", "content": "x"}]))
    assert seen["body"]["stream_options"] == {"include_usage": True}
    assert seen["body"]["chat_template_kwargs"] == {"thinking": True}


def test_5xx_retries_with_bounded_backoff_then_succeeds():
    calls = []

    def handler(request):
        calls.append(1)
        if len(calls) < 3:
            return httpx.Response(503, json={"error": {"type": "server_error", "message": "busy"}})
        return httpx.Response(200, content=OK_BODY)

    sleeps = []
    events = list(client_with(handler, sleeps).stream_chat([{"role": "user", "content": "x"}]))
    retries = [e for e in events if isinstance(e, Retrying)]
    assert [r.attempt for r in retries] == [1, 2]
    assert len(sleeps) == 2 and all(0 < s <= 60 for s in sleeps)
    assert 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0  # exponential with jitter
    assert events[-1] == Done("stop")


def test_5xx_gives_up_after_max_retries():
    calls = []

    def handler(request):
        calls.append(1)
        return httpx.Response(500, json={"error": {"type": "server_error", "message": "boom"}})

    events = list(client_with(handler, max_retries=2).stream_chat([{"role": "user", "content": "x"}]))
    assert len(calls) == 3
    assert isinstance(events[-1], Failed) and events[-1].kind == "ServerError"


def test_rate_limit_waits_the_seconds_it_names():
    calls = []

    def handler(request):
        calls.append(1)
        if len(calls) == 1:
            return httpx.Response(429, json={"error": {"type": "rate_limit_reached_error",
                                                        "message": "please try again after 4 seconds"}})
        return httpx.Response(200, content=OK_BODY)

    sleeps = []
    events = list(client_with(handler, sleeps).stream_chat([{"role": "user", "content": "x"}]))
    assert sleeps == [4.0]
    assert events[-1] == Done("stop")


def test_quota_exhausted_fails_at_once():
    calls = []

    def handler(request):
        calls.append(1)
        return httpx.Response(429, json={"error": {"type": "exceeded_current_quota_error", "message": "quota"}})

    events = list(client_with(handler).stream_chat([{"role": "user", "content": "x"}]))
    assert len(calls) == 1 and events[-1].kind == "QuotaExceededError"


def test_stream_cut_before_done_keeps_partial_text_and_says_so():
    def handler(request):
        return httpx.Response(200, content=sse(text_chunk("partial "), text_chunk("answer"), done=False))

    stream = client_with(handler).stream_chat([{"role": "user", "content": "x"}])
    response = stream.until_done()
    assert response.text == "partial answer"
    assert response.cut
    assert "before [DONE]" in response.error and "partial answer" in response.error


def test_transport_cut_mid_stream_is_not_retried():
    def body():
        yield sse(text_chunk("abc"), done=False)
        raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")

    calls = []

    def handler(request):
        calls.append(1)
        return httpx.Response(200, content=body())

    response = client_with(handler).stream_chat([{"role": "user", "content": "x"}]).until_done()
    assert len(calls) == 1 and response.text == "abc" and response.cut
    assert response.error_kind == "StreamCutError"


def test_malformed_chunk_is_skipped_with_notice():
    raw = sse(text_chunk("a")).replace(b"data: [DONE]", b"data: {not json\n\n" + sse(text_chunk("b"), text_chunk("", "stop")).rstrip(b"\n"))

    def handler(request):
        return httpx.Response(200, content=raw)

    events = list(client_with(handler).stream_chat([{"role": "user", "content": "x"}]))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "ab"
    assert any(isinstance(e, Notice) and "malformed" in e.text for e in events)
    assert events[-1] == Done("stop")


def test_error_object_inside_stream_becomes_failure():
    raw = sse(text_chunk("a"), {"error": {"type": "server_error", "message": "engine died"}}, done=False)

    def handler(request):
        return httpx.Response(200, content=raw)

    response = client_with(handler).stream_chat([{"role": "user", "content": "x"}]).until_done()
    assert response.text == "a" and "engine died" in response.error


def test_non_streaming_reply():
    body = {"id": "x", "model": "kimi-k2.5", "choices": [{"index": 0, "message": {"role": "assistant", "content": "whole",
            "reasoning_content": "r"}, "finish_reason": "stop"}], "usage": USAGE}

    def handler(request):
        assert json.loads(request.content)["stream"] is False
        return httpx.Response(200, json=body)

    response = client_with(handler, stream=False).chat([{"role": "user", "content": "x"}])
    assert (response.text, response.reasoning, response.usage.total) == ("whole", "r", 12)


def test_missing_key_is_a_failure_event_not_a_request():
    def handler(request):  # pragma: no cover - must not be called
        raise AssertionError("no request without a key")

    s = resolve_settings(environ={})
    client = KimiClient(s, http=httpx.Client(transport=httpx.MockTransport(handler)))
    events = list(client.stream_chat([{"role": "user", "content": "x"}]))
    assert len(events) == 1 and events[0].kind == "MissingKeyError"


def test_connection_error_retries_then_fails_with_hint():
    def handler(request):
        raise httpx.ConnectError("connection refused")

    sleeps = []
    response = client_with(handler, sleeps).stream_chat([{"role": "user", "content": "x"}]).until_done()
    assert len(sleeps) == 3
    assert "KIMI_BASE_URL" in response.error


def test_keyboard_interrupt_closes_the_response_at_once():
    closed = []

    class Body(httpx.SyncByteStream):
        def __iter__(self):
            yield sse(text_chunk("a"), done=False)
            raise KeyboardInterrupt

        def close(self):
            closed.append(True)

    def handler(request):
        return httpx.Response(200, stream=Body())

    stream = client_with(handler).stream_chat([{"role": "user", "content": "x"}])
    with pytest.raises(KeyboardInterrupt):
        for _ in stream:
            pass
    assert closed == [True]
    assert stream.response.text == "a"


def test_key_never_in_events_reprs_or_logs(caplog):
    caplog.set_level(logging.DEBUG)

    def handler(request):
        return httpx.Response(401, json={"error": {"type": "invalid_authentication_error", "message": f"bad {KEY}"}})

    client = client_with(handler)
    response = client.stream_chat([{"role": "user", "content": "x"}]).until_done()
    texts = [response.error, repr(response), repr(client), repr(client.settings), caplog.text]
    texts += [repr(e) for e in response.events]
    assert all(KEY not in t for t in texts)


async def test_async_twin_streams_and_retries():
    calls = []

    def handler(request):
        calls.append(1)
        if len(calls) == 1:
            return httpx.Response(502, json={"error": {"type": "server_error", "message": "x"}})
        return httpx.Response(200, content=OK_BODY)

    sleeps = []

    async def fake_sleep(s):
        sleeps.append(s)

    client = AsyncKimiClient(settings(), http=httpx.AsyncClient(transport=httpx.MockTransport(handler)), sleep=fake_sleep)
    response = await client.stream_chat([{"role": "user", "content": "x"}]).until_done()
    assert response.text == "Hello" and len(sleeps) == 1 and response.retries == 1
    await client.aclose()
