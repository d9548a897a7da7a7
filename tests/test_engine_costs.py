"""The mechanisms behind the engine benchmarks (bench/engine.py), pinned without timings.

Flat per-turn cost and bounded memory rest on a few properties: the stored history is
compacted after each turn (old images become placeholders instead of staying as data
URLs), building a request shares the stored message dicts instead of deep-copying them,
async clients are pooled per (settings, event loop), and the request body is encoded once
per turn with the fast encoder, exactly as httpx would have encoded it.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json

import httpx
import pytest

from kimi_jupyter import ask
from kimi_jupyter.client import KimiClient
from kimi_jupyter.client.request import encode_body
from kimi_jupyter.conversation import Conversation, estimate_message_tokens
from kimi_jupyter.session import Session, get_session
from kimi_jupyter.settings import resolve_settings

PLACEHOLDER = "[image removed from history to save context]"


def _photo(seed: int, size: int = 64) -> bytes:
    """A small PNG of noise (distinct per seed, so no two turns send the same bytes)."""
    import numpy as np
    from PIL import Image

    array = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG")
    return buf.getvalue()


def _image_urls(messages):
    return [p["image_url"]["url"] for m in messages if isinstance(m.get("content"), list)
            for p in m["content"] if p.get("type") == "image_url"]


def _settings(**extra):
    return resolve_settings(explicit={"api_key": "sk-test", "base_url": "http://127.0.0.1:9/v1",
                                      "provider": "moonshot", **extra}, environ={})


# -- the stored history is compacted --------------------------------------------------------

def test_many_image_turns_keep_only_what_the_budget_allows(kimi_sim_env):
    turns, budget = 12, 1000
    photos = [_photo(i) for i in range(turns)]
    for i, photo in enumerate(photos):
        r = ask(f"Photo {i}: what is in it?", photo, history=True, display="none", history_budget=budget)
        assert r.error is None, r.error
    conversation = get_session().conversation
    stored = conversation.messages
    kept = _image_urls(stored)
    per_photo = estimate_message_tokens({"role": "user", "content": [{"type": "image_url",
                                                                       "image_url": {"url": kept[-1]}}]})
    assert per_photo * 4 > budget  # the test means something: the budget cannot hold every photo
    # Bounded by the budget, not by the photos sent: the newest are kept, the rest are placeholders.
    assert 1 <= len(kept) <= budget // per_photo + 1
    assert conversation.tokens <= budget or len(kept) == 1
    newest = base64.b64encode(photos[-1]).decode()
    assert kept[-1].endswith(newest)
    placeholders = [p for m in stored if isinstance(m.get("content"), list) for p in m["content"]
                    if p.get("type") == "text" and p.get("text") == PLACEHOLDER]
    # Every photo is either still stored as data or replaced by a placeholder, or its
    # exchange was dropped entirely; none is kept as a data URL outside the budget.
    assert len(kept) + len(placeholders) <= turns
    assert sum(map(len, kept)) < sum(len(base64.b64encode(p)) for p in photos) / 3
    # The cached per-message estimates match the messages that are stored now.
    assert conversation.tokens == sum(estimate_message_tokens(m) for m in stored)
    # The last request carried the history within the budget plus the new photo, and what
    # is stored now is a part of it.
    last = _image_urls(kimi_sim_env.chat_requests[-1].messages)
    assert set(kept) <= set(last) and len(last) <= budget // per_photo + 2


def test_compact_replaces_old_images_by_placeholders_and_keeps_the_latest_exchange():
    conversation = Conversation()
    url = "data:image/png;base64," + "A" * 400_000  # ~300 KB: ~1,050 tokens each
    for i in range(6):
        conversation.add_user([{"type": "text", "text": f"photo {i}"}, {"type": "image_url", "image_url": {"url": url}}])
        conversation.append({"role": "assistant", "content": f"answer {i}"})
    originals = list(conversation.messages)
    conversation.compact(2500)
    stored = conversation.messages
    assert conversation.tokens <= 2500
    assert _image_urls(stored[-2:]) == [url]  # the latest exchange is never trimmed
    assert len(_image_urls(stored)) <= 2
    assert any(p.get("text") == PLACEHOLDER for m in stored if isinstance(m.get("content"), list)
               for p in m["content"])
    # the aged-out messages were replaced by copies: the dicts a caller held are unchanged
    assert all(_image_urls([m]) == [url] for m in originals if m["role"] == "user")


# -- building a request copies nothing ------------------------------------------------------------

def test_for_request_shares_the_stored_dicts():
    conversation = Conversation()
    for i in range(50):
        conversation.add_user(f"question {i}")
        conversation.append({"role": "assistant", "content": f"answer {i}"})
    sent = conversation.for_request(1_000_000, system="Be brief.")
    assert sent[0] == {"role": "system", "content": "Be brief."}
    assert len(sent) == 101
    assert all(a is b for a, b in zip(sent[1:], conversation.messages, strict=True))


def test_for_request_copies_only_messages_whose_media_is_aged_out():
    conversation = Conversation()
    url = "data:image/png;base64," + "A" * 400_000
    for i in range(4):
        conversation.add_user([{"type": "text", "text": f"photo {i}"}, {"type": "image_url", "image_url": {"url": url}}])
        conversation.append({"role": "assistant", "content": f"answer {i}"})
    stored = conversation.messages
    sent = conversation.for_request(2500)
    by_identity = [any(m is s for s in stored) for m in sent]
    lighter = [m for m, shared in zip(sent, by_identity, strict=True) if not shared]
    assert lighter and all(_image_urls([m]) == [] for m in lighter)  # copies only where media went
    assert all(m["role"] == "assistant" or _image_urls([m]) for m, shared in zip(sent, by_identity, strict=True)
               if shared)
    # the copy is shallow: its text part is the stored one, not a duplicate
    copy = lighter[0]
    original = next(m for m in stored if m["content"][0]["text"] == copy["content"][0]["text"])
    assert copy["content"][0] is original["content"][0]
    assert _image_urls([original]) == [url]  # the stored history is unchanged by building a request
    assert len(conversation) == 8


# -- pooled async clients ------------------------------------------------------------------------

def test_aclient_is_pooled_per_connection_and_event_loop():
    """The pool (the httpx client under the Kimi client) is keyed by the connection and the
    loop: another model is a per-call option and shares it; another loop never does."""
    session = Session()
    settings, other = _settings(), _settings(model="moonshot-v1-8k")
    elsewhere = _settings(timeout_read=42.0)

    async def on_one_loop():
        first, again = session.aclient(settings), session.aclient(settings)
        assert session.aclient(_settings())._http is first._http  # equal settings, same pool
        different = session.aclient(other)
        apart = session.aclient(elsewhere)
        concurrent = await asyncio.gather(*(_aclient_in_task(session, settings) for _ in range(5)))
        return first, again, different, apart, concurrent

    first, again, different, apart, concurrent = asyncio.run(on_one_loop())
    assert first._http is again._http
    assert different._http is first._http and different.settings.model == "moonshot-v1-8k"
    assert apart._http is not first._http  # another connection (its timeouts) is another pool
    assert all(c._http is first._http for c in concurrent)  # concurrent aask() calls share one pool
    second_loop_client = asyncio.run(_aclient_in_task(session, settings))
    assert second_loop_client._http is not first._http  # a pool is never shared across event loops
    asyncio.run(_close(first, apart))
    asyncio.run(_close(second_loop_client))


async def _aclient_in_task(session, settings):
    return session.aclient(settings)


async def _close(*clients):
    for client in clients:
        await client.aclose()


def test_concurrent_aask_calls_open_one_async_pool(kimi_sim_env, monkeypatch):
    import httpx

    from kimi_jupyter import aask

    made = []
    original = httpx.AsyncClient.__init__

    def counting_init(self, *args, **kwargs):
        made.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(httpx.AsyncClient, "__init__", counting_init)

    async def main():
        return await asyncio.gather(*(aask(f"question {i}") for i in range(6)))

    responses = asyncio.run(main())
    assert all(r.error is None and r.text for r in responses)
    assert len(kimi_sim_env.chat_requests) == 6
    assert len(made) == 1


# -- the request body ------------------------------------------------------------------------------

def test_body_is_what_httpx_would_send_for_json():
    payload = {"model": "kimi-k2.5", "stream": True, "messages": [
        {"role": "user", "content": [{"type": "text", "text": "é → 東京 \"quoted\" \n\t\u0001 </script>"},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}],
        "max_tokens": 100, "stream_options": {"include_usage": True}}
    expected = httpx.Request("POST", "http://127.0.0.1/", json=payload).content
    assert encode_body(payload) == expected
    assert json.loads(encode_body(payload)) == payload


def test_body_falls_back_to_the_stdlib_for_what_orjson_refuses():
    payload = {"tools": [{"type": "function", "function": {"parameters": {1: "non-string key"}}}]}
    assert json.loads(encode_body(payload)) == json.loads(json.dumps(payload))
    with pytest.raises(ValueError):
        encode_body({"x": {2: float("nan")}})  # orjson refuses the key; the stdlib refuses NaN, as httpx does


def test_the_client_sends_one_json_body_with_its_content_type():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = b'data: {"choices":[{"index":0,"delta":{"content":"ok"}}]}\n\ndata: [DONE]\n\n'
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    settings = _settings()
    with KimiClient(settings, http=httpx.Client(transport=httpx.MockTransport(handler))) as client:
        response = client.chat([{"role": "user", "content": "hello"}])
    assert response.text == "ok"
    (request,) = seen
    assert request.headers["content-type"] == "application/json"
    assert request.headers["content-length"] == str(len(request.content))
    body = json.loads(request.content)
    assert body["messages"] == [{"role": "user", "content": "hello"}] and body["stream"] is True
    assert "sk-test" not in request.content.decode()


def test_a_sent_body_is_released_when_its_request_ends(kimi_sim):
    """httpx keeps a finished request in a reference cycle until the cyclic collector runs;
    the body it holds must be empty by then, or every image turn's tens of MB stay alive."""
    requests: list[httpx.Request] = []
    settings = resolve_settings(explicit={"api_key": "sk-test-simulator", "base_url": kimi_sim.base_url,
                                          "provider": "moonshot"}, environ={})
    http = httpx.Client(event_hooks={"request": [requests.append]})
    with KimiClient(settings, http=http) as client:
        response = client.chat([{"role": "user", "content": "hello " * 1000}])
    assert response.error is None and response.text
    (request,) = requests
    assert int(request.headers["content-length"]) > 6000  # sent whole, with its length
    assert "transfer-encoding" not in request.headers
    assert kimi_sim.chat_requests[0].messages == [{"role": "user", "content": "hello " * 1000}]
    assert b"".join(request.stream) == b""  # released


def test_an_async_sent_body_is_released_too(kimi_sim):
    from kimi_jupyter.client import AsyncKimiClient

    requests: list[httpx.Request] = []
    settings = resolve_settings(explicit={"api_key": "sk-test-simulator", "base_url": kimi_sim.base_url,
                                          "provider": "moonshot"}, environ={})

    async def hook(request):
        requests.append(request)

    async def main():
        async with AsyncKimiClient(settings, http=httpx.AsyncClient(event_hooks={"request": [hook]})) as client:
            return await client.chat([{"role": "user", "content": "hello " * 1000}])

    response = asyncio.run(main())
    assert response.error is None and response.text
    (request,) = requests
    assert "transfer-encoding" not in request.headers
    assert kimi_sim.chat_requests[0].messages == [{"role": "user", "content": "hello " * 1000}]

    async def drain():
        return b"".join([part async for part in request.stream])

    assert asyncio.run(drain()) == b""


def test_the_size_bound_is_an_upper_bound_and_the_history_keeps_it_per_message():
    import json

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from kimi_jupyter.conversation import Conversation
    from kimi_jupyter.sizes import json_bound

    values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                          lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner,
                                                                                       max_size=4), max_leaves=12)

    @settings(max_examples=200, deadline=None)
    @given(values)
    def bounded(value):
        assert len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()) <= json_bound(value)

    bounded()
    conv = Conversation()
    conv.add_user("hello \n\"there\"")
    conv.append({"role": "assistant", "content": "ok"})
    messages, _tokens, size = conv.sized_request(100_000)
    assert size >= len(json.dumps(messages, ensure_ascii=False, separators=(",", ":")).encode())
    assert size == sum(json_bound(m) for m in conv.messages) + len(conv.messages) + 2  # kept, not recomputed
