"""The per-token template of the sync client (``learn_template`` and ``_stream_body``).

The template is a shortcut, so the tests hold it to one rule: a stream read through it gives
exactly the events the general path gives (SSE decoder, ``json.loads`` of every chunk,
``TurnState``), for well-formed and hostile streams alike; and on the simulator's real
dialects it is actually taken.
"""

from __future__ import annotations

import asyncio
import json
import re

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kimi_jupyter.client import AsyncKimiClient, KimiClient
from kimi_jupyter.client.chunks import TurnState, learn_template
from kimi_jupyter.client.sse import DONE, iter_sse
from kimi_jupyter.events import ReasoningDelta, TextDelta
from kimi_jupyter.settings import resolve_settings
from kimi_jupyter.testing import Reply

KEY = "sk-test-template"
BASE = "http://127.0.0.1:9/v1"


def chunk(delta=None, *, cid="chatcmpl-1", finish=None, extra_choice=None, top=None, **choice_keys):
    choice = {"index": 0, "delta": {} if delta is None else delta, **choice_keys, "finish_reason": finish}
    if extra_choice:
        choice.update(extra_choice)
    body = {"id": cid, "object": "chat.completion.chunk", "created": 1, "model": "kimi-k2.5", "choices": [choice]}
    body.update(top or {})
    return body


def line(body, **dumps):
    return "data: " + json.dumps(body, **dumps)


# -- learn_template ----------------------------------------------------------------------


@pytest.mark.parametrize("separators", [(",", ":"), (", ", ": ")])
def test_a_text_chunk_splits_around_its_token(separators):
    body = chunk({"content": "Hello"})
    text = line(body, separators=separators)
    head, tail = learn_template(text, body, "content")
    assert text == head + "Hello" + tail
    assert head.endswith('"') and tail.startswith('"')


def test_the_split_survives_escapes_and_a_token_that_also_appears_elsewhere():
    body = chunk({"content": 'chatcmpl-1 "quoted" \u00e9\n'}, cid="chatcmpl-1")
    text = line(body)
    head, tail = learn_template(text, body, "content")
    assert head.endswith('"content": "') and text.startswith(head) and text.endswith(tail)


def test_reasoning_and_a_role_next_to_the_token():
    body = chunk({"role": "assistant", "reasoning_content": "hmm"})
    assert learn_template(line(body), body, "reasoning_content") is not None
    assert learn_template(line(body), body, "content") is None


@pytest.mark.parametrize("body", [
    chunk({"content": "x"}, finish="stop"),
    chunk({"content": "x"}, extra_choice={"usage": {"prompt_tokens": 1}}),
    chunk({"content": "x"}, top={"usage": {"prompt_tokens": 1}}),
    chunk({"content": "x", "reasoning_content": "y"}),
    chunk({"content": "x", "tool_calls": []}),
    chunk({"content": ""}),
    chunk({"content": ["not", "text"]}),
    chunk({"reasoning": "openrouter's field"}),
])
def test_a_chunk_that_means_more_than_one_fragment_is_never_a_template(body):
    assert learn_template(line(body), body, "content") is None


def test_a_second_choice_is_never_a_template():
    body = chunk({"content": "x"})
    body["choices"].append({"index": 1, "delta": {"content": "y"}, "finish_reason": None})
    assert learn_template(line(body), body, "content") is None


def test_duplicate_keys_follow_json_loads():
    text = 'data: {"model":"m","choices":[{"delta":{"content":"a","content":"b"},"finish_reason":null}]}'
    body = json.loads(text[6:])
    head, tail = learn_template(text, body, "content")
    assert json.loads((head + "z" + tail)[6:])["choices"][0]["delta"]["content"] == "z"


def test_a_token_hidden_in_another_string_is_not_taken_for_the_slot():
    text = 'data: {"model":"\\"content\\":\\"x\\"","choices":[{"delta":{"content":"x"},"finish_reason":null}]}'
    body = json.loads(text[6:])
    head, tail = learn_template(text, body, "content")
    assert json.loads((head + "PROBE" + tail)[6:])["model"] == '"content":"x"'


# -- the stream: template path == general path ----------------------------------------------


def client_for(body: bytes) -> KimiClient:
    def handler(request):
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    settings = resolve_settings(explicit={"api_key": KEY, "base_url": BASE, "provider": "moonshot",
                                          "model": "kimi-k2.5", "max_retries": 0}, environ={})
    return KimiClient(settings, http=httpx.Client(transport=httpx.MockTransport(handler)))


def sse_lines_of(body: str) -> list[str]:
    """The body's lines by the SSE rule (CRLF, LF, CR), independently of the client."""
    lines = re.split(r"\r\n|\r|\n", body)
    return lines[:-1] if lines and lines[-1] == "" else lines


def general_path(client: KimiClient, lines: list[str]) -> tuple[list, bool]:
    """What the client meant before the template: SSE decoder, then every chunk decoded.
    Returns the events up to the end of the turn, and whether ``[DONE]`` came."""
    state = TurnState(client.settings.price())
    events: list = []
    for data in iter_sse(lines):
        if data == DONE:
            return events + state.finish(), True
        events += client._handle_data(data, state)
    return events + (state.finish(cut=True) if state.saw_content else []), False


def async_events_of(body: bytes) -> tuple[list, object]:
    def handler(request):
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    settings = resolve_settings(explicit={"api_key": KEY, "base_url": BASE, "provider": "moonshot",
                                          "model": "kimi-k2.5", "max_retries": 0}, environ={})

    async def run():
        http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        async with AsyncKimiClient(settings, http=http) as client:
            stream = client.stream_chat([{"role": "user", "content": "hi"}])
            return [event async for event in stream], stream.response

    return asyncio.run(run())


def events_of(client: KimiClient) -> tuple[list, object]:
    stream = client.stream_chat([{"role": "user", "content": "hi"}])
    return list(stream), stream.response


tokens = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8)


@st.composite
def sse_lines(draw):
    """A stream the way servers send them, with the odd lines they also send."""
    lines = [line(chunk({"role": "assistant", "content": ""})), ""]
    cid = "chatcmpl-1"
    for _ in range(draw(st.integers(1, 40))):
        kind = draw(st.sampled_from(["text", "text", "text", "reasoning", "reasoning", "new-id", "spaced",
                                     "comment", "role-text", "multiline", "usage", "garbage", "glued",
                                     "raw-unicode", "raw-unicode"]))
        token = draw(tokens)
        if kind == "text":
            lines += [line(chunk({"content": token}, cid=cid), separators=(",", ":")), ""]
        elif kind == "reasoning":
            lines += [line(chunk({"reasoning_content": token}, cid=cid), separators=(",", ":")), ""]
        elif kind == "new-id":
            cid = f"chatcmpl-{draw(st.integers(2, 5))}"
            lines += [line(chunk({"content": token}, cid=cid), separators=(",", ":")), ""]
        elif kind == "spaced":
            lines += [line(chunk({"content": token}, cid=cid)), ""]
        elif kind == "raw-unicode":  # U+2028 and kin unescaped, as servers with ensure_ascii=False send them
            raw = token + "\u2028\u0085\u2029"
            lines += [line(chunk({"content": raw}, cid=cid), separators=(",", ":"), ensure_ascii=False), ""]
        elif kind == "comment":
            lines += [": OPENROUTER PROCESSING", ""]
        elif kind == "role-text":
            lines += [line(chunk({"role": "assistant", "content": token}, cid=cid)), ""]
        elif kind == "multiline":
            lines += ["data: " + part for part in json.dumps(chunk({"content": token}, cid=cid), indent=1).split("\n")]
            lines += [""]
        elif kind == "usage":
            lines += [line(chunk({"content": token}, cid=cid, extra_choice={"usage": {"prompt_tokens": 3}})), ""]
        elif kind == "garbage":
            lines += ["data: {" + token, ""]
        elif kind == "glued":  # two events without the blank line between them
            lines += [line(chunk({"content": token}, cid=cid)), line(chunk({"content": token + "!"}, cid=cid)), ""]
    lines += [line(chunk({}, finish="stop", cid=cid, extra_choice={"usage": {"prompt_tokens": 5,
                                                                               "completion_tokens": 7}})), ""]
    if draw(st.booleans()):
        lines += ["data: [DONE]", ""]
    return lines


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=sse_lines())
def test_any_stream_gives_the_same_events_as_the_general_path(lines):
    body = "\n".join(lines) + "\n"
    client = client_for(body.encode())
    expected, done = general_path(client, sse_lines_of(body))
    events, response = events_of(client)
    if done:
        assert events == expected
    else:  # the same events, then the failure that says the stream was cut
        assert events[:-1] == expected
        assert type(events[-1]).__name__ == "Failed" and events[-1].partial == response.cut
    assert response.text == "".join(e.text for e in events if type(e) is TextDelta)
    assert response.reasoning == "".join(e.text for e in events if type(e) is ReasoningDelta)
    assert response.events == events
    # The async client reads through the same StreamReader: the same events, the same snapshot.
    async_events, async_response = async_events_of(body.encode())
    assert async_events == events and async_response.text == response.text
    assert async_response.events == events


def test_a_cut_stream_keeps_what_the_template_path_read():
    lines = [line(chunk({"content": "a"})), "", line(chunk({"content": "b"})), "", line(chunk({"content": "c"}))]
    _, response = events_of(client_for("\n".join(lines).encode()))
    assert response.text == "abc" and response.cut and "ended before [DONE]" in response.error


# -- on the simulator: the template is really taken ------------------------------------------


@pytest.mark.parametrize("dialect", ["moonshot", "vllm"])
def test_the_simulators_streams_decode_almost_no_chunk_whole(kimi_sim, dialect, monkeypatch):
    sim = kimi_sim
    words = [f"w{i} " for i in range(300)]
    sim.queue(Reply(text="".join(words), reasoning="think " * 100, chunk_chars=5))
    settings = resolve_settings(explicit={"api_key": "sk-test-simulator", "base_url": sim.url_for(dialect),
                                          "provider": "openai", "model": "kimi-k2.5"}, environ={})
    decoded = []
    real_loads = json.loads

    def counting_loads(text, *args, **kwargs):
        if isinstance(text, str) and "chat.completion.chunk" in text:  # the client's, not the server's
            decoded.append(text)
        return real_loads(text, *args, **kwargs)

    with KimiClient(settings) as client:
        monkeypatch.setattr(json, "loads", counting_loads)
        response = client.chat([{"role": "user", "content": "hi"}])
        monkeypatch.setattr(json, "loads", real_loads)
    assert response.error is None and response.text == "".join(words)
    assert response.reasoning == "think " * 100
    chunks = sum(1 for e in response.events if type(e) in (TextDelta, ReasoningDelta))
    assert chunks > 200
    # The first chunk of each kind teaches the template; the probe check decodes once more.
    assert len(decoded) <= 12, decoded[:12]


def test_line_separators_inside_a_token_survive_the_real_server(kimi_sim):
    # The simulator writes JSON with ensure_ascii=False, as servers that send raw UTF-8 do:
    # these characters arrive unescaped, and splitlines() would cut the chunk at each.
    text = "first\u2028second\u2029third\u0085fourth, 中文 too"
    kimi_sim.queue(Reply(text=text, reasoning="why\u2028not", chunk_chars=4))
    settings = resolve_settings(explicit={"api_key": "sk-test-simulator", "base_url": kimi_sim.base_url,
                                          "provider": "moonshot", "model": "kimi-k2.5"}, environ={})
    with KimiClient(settings) as client:
        response = client.chat([{"role": "user", "content": "hi"}])

    async def async_chat():
        async with AsyncKimiClient(settings) as client:
            return await client.chat([{"role": "user", "content": "hi"}])

    kimi_sim.queue(Reply(text=text, reasoning="why\u2028not", chunk_chars=4))
    for result in (response, asyncio.run(async_chat())):
        assert result.error is None and not [n for n in result.notices if "malformed" in n], result.notices
        assert result.text == text and result.reasoning == "why\u2028not"
