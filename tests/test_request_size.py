"""The local whole-request size check (``request_size.py``): pure sizing, and a real client
refusing an oversized request before anything reaches the simulator."""

from __future__ import annotations

import json

import pytest

from kimi_jupyter.client import KimiClient
from kimi_jupyter.errors import RequestTooLargeError
from kimi_jupyter.events import Failed
from kimi_jupyter.request_size import check_request_size, largest_parts, request_body_bytes
from kimi_jupyter.settings import resolve_settings


def video(size: int, mime: str = "video/mp4") -> dict:
    return {"type": "video_url", "video_url": {"url": f"data:{mime};base64," + "A" * size}}


@pytest.mark.parametrize("messages", [
    [{"role": "user", "content": "hello"}],
    [{"role": "system", "content": "be brief"}, {"role": "user", "content": [{"type": "text", "text": "é\"\\n" * 50},
                                                                            video(5000)]}],
    [{"role": "assistant", "content": "", "reasoning_content": "r" * 9000,
      "tool_calls": [{"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
     {"role": "tool", "tool_call_id": "a", "name": "f", "content": "x" * 10_000}],
])
def test_the_estimate_is_an_upper_bound_close_to_the_real_body(messages):
    real = len(json.dumps({"model": "kimi-k2.5", "messages": messages, "stream": True}, ensure_ascii=False).encode())
    estimate = request_body_bytes(messages)
    assert real <= estimate <= real + 1200


def test_the_largest_parts_are_named_biggest_first():
    messages = [{"role": "user", "content": [video(3000), {"type": "text", "text": "t" * 10}, video(7000)]}]
    (first, _), (second, what) = largest_parts(messages, 2)
    assert first > second and what == "a video in user message 1 (inline)"


def test_over_the_limit_the_message_says_what_to_do():
    messages = [{"role": "user", "content": [video(6000), {"type": "text", "text": "hi"}]},
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ms://cs1"}}]}]
    with pytest.raises(RequestTooLargeError) as caught:
        check_request_size(messages, limit=5000)
    text = str(caught.value)
    assert "over the 0.0 MB limit" in text and "a video in user message 1 (inline)" in text
    assert "upload_threshold" in text and "--new" in text
    assert check_request_size(messages, limit=10_000) > 6000


def test_an_oversized_request_never_reaches_the_server(kimi_sim):
    settings = resolve_settings(explicit={"base_url": kimi_sim.base_url, "api_key": "sk-test-simulator",
                                          "provider": "moonshot"}, environ={})
    big = [{"role": "user", "content": [video(51_000_000), video(51_000_000), {"type": "text", "text": "compare"}]}]
    with KimiClient(settings) as client:
        events = list(client.stream_chat(big))
    (failed,) = [e for e in events if isinstance(e, Failed)]
    assert failed.kind == "RequestTooLargeError" and "102.0 MB" in failed.error
    assert kimi_sim.requests == []
