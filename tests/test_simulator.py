"""The simulator's lifecycle, scripting, recording, token counting, demo reply, CLI and load."""

from __future__ import annotations

import ast
import asyncio
import base64
import io
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

import kimi_jupyter.testing as testing
from kimi_jupyter.testing import Fault, KimiSimulator, RecordedRequest, Reply, ToolCall
from kimi_jupyter.testing.tokens import count_prompt, image_size, text_tokens

KEY = "sk-test-simulator"
AUTH = {"Authorization": f"Bearer {KEY}"}
HTTP = httpx.Client(timeout=10)  # one client: building an SSL context per call would dominate the run time


@pytest.fixture(scope="module", autouse=True)
def _close_http() -> Iterator[None]:
    yield
    HTTP.close()


def ask(sim: KimiSimulator, *messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    payload = {"model": "kimi-k2.5", "messages": list(messages), **extra}
    response = HTTP.post(sim.base_url + "/chat/completions", json=payload, headers=AUTH, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def say(sim: KimiSimulator, text: str, **extra: Any) -> str:
    return ask(sim, {"role": "user", "content": text}, **extra)["choices"][0]["message"]["content"]


def image_url(width: int, height: int, fmt: str = "PNG") -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "blue").save(buffer, format=fmt)
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buffer.getvalue()).decode()


# -- public surface and lifecycle --------------------------------------------------------------
def test_public_names_are_exported_lazily() -> None:
    assert sorted(testing.__all__) == ["Fault", "KimiSimulator", "RecordedRequest", "Reply", "ToolCall"]
    for name in testing.__all__:
        assert getattr(testing, name).__name__ == name
    with pytest.raises(AttributeError):
        _ = testing.NoSuchThing  # type: ignore[attr-defined]


def test_urls_and_start_stop_without_a_with_block() -> None:
    sim = KimiSimulator()
    with pytest.raises(RuntimeError):
        _ = sim.base_url
    assert sim.start() is sim and sim.start() is sim  # idempotent
    try:
        assert sim.base_url == f"http://127.0.0.1:{sim.port}/v1"
        assert sim.url_for("openrouter") == f"http://127.0.0.1:{sim.port}/openrouter/v1"
        assert sim.url_for("vllm").endswith("/vllm/v1") and sim.url_for("llamacpp").endswith("/llamacpp/v1")
        assert sim.url_for("cloudsway").startswith(f"http://127.0.0.1:{sim.port}/cloudsway/v1/ai/")
        assert HTTP.get(sim.base_url + "/models").status_code == 200
    finally:
        sim.stop()
    sim.stop()  # a second stop is harmless
    with pytest.raises(httpx.ConnectError):
        HTTP.get(f"http://127.0.0.1:{sim.port}/v1/models", timeout=2)


def test_only_loopback_hosts_and_known_dialects() -> None:
    with pytest.raises(ValueError, match="loopback"):
        KimiSimulator(host="0.0.0.0")
    with pytest.raises(ValueError, match="unknown dialect"):
        KimiSimulator(dialect="gemini")
    with KimiSimulator(host="localhost") as sim:
        assert sim.base_url.startswith("http://localhost:")
    with KimiSimulator() as sim, pytest.raises(ValueError):
        sim.url_for("nope")


def test_two_simulators_run_side_by_side() -> None:
    with KimiSimulator() as one, KimiSimulator() as two:
        one.queue("from one")
        two.queue("from two")
        assert one.port != two.port
        assert say(two, "x") == "from two" and say(one, "x") == "from one"


async def test_usable_from_an_async_test(kimi_sim: KimiSimulator) -> None:
    kimi_sim.queue(Reply(text="async hello"))
    async with httpx.AsyncClient(headers=AUTH) as client:
        response = await client.post(
            kimi_sim.base_url + "/chat/completions",
            json={"model": "kimi-k2.5", "messages": [{"role": "user", "content": "hi"}]},
        )
    assert response.json()["choices"][0]["message"]["content"] == "async hello"


# -- queue, rules, scripts ---------------------------------------------------------------------
def test_queue_is_fifo_and_accepts_strings_dicts_and_callables(kimi_sim: KimiSimulator) -> None:
    kimi_sim.queue(Reply(text="one"), "two", {"text": "three"})
    kimi_sim.queue(lambda messages: Reply(text=f"echo {messages[-1]['content']}"))
    assert [say(kimi_sim, "x") for _ in range(3)] == ["one", "two", "three"]
    assert say(kimi_sim, "ping") == "echo ping"
    assert say(kimi_sim, "x").startswith("*(Simulated reply")


def test_rules_match_the_last_user_text_and_are_reusable(kimi_sim: KimiSimulator) -> None:
    kimi_sim.on(r"(?i)weather", Reply(text="Sunny."))
    kimi_sim.on(lambda messages: len(messages) > 2, "long conversation")
    kimi_sim.on("once", "only once", times=1)
    assert say(kimi_sim, "What's the WEATHER?") == "Sunny."
    assert say(kimi_sim, "weather again") == "Sunny."
    assert say(kimi_sim, "once") == "only once"
    assert say(kimi_sim, "once").startswith("*(Simulated reply")
    long = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
    ]
    assert ask(kimi_sim, *long)["choices"][0]["message"]["content"] == "long conversation"


def test_queue_beats_rules_and_rules_beat_the_default(kimi_sim: KimiSimulator) -> None:
    kimi_sim.on("hello", "rule")
    kimi_sim.queue("queued")
    assert say(kimi_sim, "hello") == "queued"
    assert say(kimi_sim, "hello") == "rule"
    assert say(kimi_sim, "other").startswith("*(Simulated reply")
    kimi_sim.reset()
    assert say(kimi_sim, "hello").startswith("*(Simulated reply")


def run_agent(sim: KimiSimulator, question: str, max_steps: int = 5) -> tuple[list[dict[str, Any]], str]:
    """A minimal agent loop: execute every requested tool call with a fake result."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": question}]
    for _ in range(max_steps):
        message = ask(sim, *messages)["choices"][0]["message"]
        messages.append(message)
        if not message.get("tool_calls"):
            return messages, message["content"]
        for call in message["tool_calls"]:
            result = f"ran {call['function']['name']}"
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": call["id"],
                    "name": call["function"]["name"],
                    "content": result,
                }
            )
    raise AssertionError("the scripted agent did not finish")


SCRIPT = [
    {
        "match": "(?i)plot",
        "reply": {
            "reasoning": "Load the data first.",
            "tool_calls": [{"name": "run_python", "arguments": {"code": "df = load()"}}],
        },
    },
    {
        "match": "(?i)plot",
        "after_tool": "run_python",
        "step": 1,
        "reply": {
            "reasoning": "Now plot.",
            "tool_calls": [{"name": "run_python", "arguments": {"code": "df.plot()"}}],
        },
    },
    {"match": "(?i)plot", "after_tool": "run_python", "reply": "Here is the plot of `df`."},
    {"after_tool": "*", "reply": "Some tool finished."},
    {"match": "hello", "reply": "Hi from the script!", "comment": "comments are allowed"},
]


def test_multi_step_agent_script_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "agent.json"
    path.write_text(json.dumps(SCRIPT), encoding="utf-8")
    with KimiSimulator(api_key=KEY, script=path) as sim:
        messages, answer = run_agent(sim, "Please plot the sales")
        assert answer == "Here is the plot of `df`."
        calls = [m["tool_calls"][0]["function"]["arguments"] for m in messages if m.get("tool_calls")]
        assert calls == ['{"code": "df = load()"}', '{"code": "df.plot()"}']
        assert [m["tool_calls"][0]["id"] for m in messages if m.get("tool_calls")] == [
            "functions.run_python:0",
            "functions.run_python:1",
        ]
        _, again = run_agent(sim, "plot it once more")  # rules are reusable: the notebook can re-run
        assert again == "Here is the plot of `df`."
        assert say(sim, "hello") == "Hi from the script!"


def test_after_tool_rules_answer_only_tool_results(kimi_sim: KimiSimulator) -> None:
    kimi_sim.load_script({"rules": SCRIPT})
    kimi_sim.on("lookup", Reply(reasoning="r", tool_calls=[ToolCall("get_weather", {"city": "Rome"})]))
    _, answer = run_agent(kimi_sim, "lookup the weather")
    assert answer == "Some tool finished."  # the plain "lookup" rule does not answer its own tool result


def test_bad_scripts_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown rule keys"):
        testing.KimiSimulator(script=_write(tmp_path, [{"matsch": "x", "reply": "y"}]))
    with pytest.raises(ValueError, match="unknown reply keys"):
        testing.KimiSimulator(script=_write(tmp_path, [{"match": "x", "reply": {"txt": "y"}}]))
    with pytest.raises(ValueError, match="exactly one of"):
        testing.KimiSimulator(script=_write(tmp_path, [{"match": "x"}]))
    with pytest.raises(ValueError, match="JSON list"):
        testing.KimiSimulator(script=_write(tmp_path, "just a string"))


def _write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "script.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_reply_from_dict_and_validation() -> None:
    reply = Reply.from_dict(
        {"text": "t", "tool_calls": [{"name": "f_1", "arguments": {"a": 1}, "id": "x"}], "chunk_delay": 0.1}
    )
    assert reply.tool_calls == (ToolCall("f_1", {"a": 1}, "x"),)
    assert reply.tool_calls[0].arguments_json == '{"a": 1}'
    assert Reply.from_dict("plain") == Reply(text="plain")
    with pytest.raises(ValueError):
        Reply(usage={"tokens": 3})
    with pytest.raises(ValueError):
        Reply(finish_reason="done")
    with pytest.raises(ValueError):
        Reply(chunk_chars=0)


# -- recording ---------------------------------------------------------------------------------
def test_every_request_is_recorded_with_headers_body_dialect_and_status(kimi_sim: KimiSimulator) -> None:
    HTTP.get(kimi_sim.base_url + "/models", headers=AUTH)
    say(kimi_sim, "record me")
    HTTP.post(
        kimi_sim.url_for("openrouter") + "/chat/completions",
        json={"bad": 1},
        headers={"Authorization": "Bearer nope"},
    )
    records = kimi_sim.requests
    assert all(isinstance(r, RecordedRequest) for r in records)
    models, chat, refused = records
    assert (models.method, models.path, models.json, models.dialect, models.status) == (
        "GET",
        "/v1/models",
        None,
        "moonshot",
        200,
    )
    assert (
        chat.headers["Authorization"] == f"Bearer {KEY}" and chat.headers["authorization"] == f"Bearer {KEY}"
    )
    assert (
        chat.json["messages"] == [{"role": "user", "content": "record me"}]
        and chat.messages == chat.json["messages"]
    )
    assert (refused.dialect, refused.status, refused.headers["Authorization"]) == (
        "openrouter",
        401,
        "Bearer nope",
    )
    assert kimi_sim.chat_requests == [chat, refused]
    records.clear()  # a snapshot: the simulator's log is untouched
    assert len(kimi_sim.requests) == 3
    kimi_sim.reset()
    assert kimi_sim.requests == []


# -- tokens, estimate, balance ------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP"])
def test_image_sizes_are_read_from_headers(fmt: str) -> None:
    url = image_url(123, 45, fmt)
    data = base64.b64decode(url.split(",", 1)[1])
    assert image_size(data) == (fmt.lower(), 123, 45)


def test_webp_lossless_and_extended_headers() -> None:
    for options in ({"lossless": True}, {"exif": b"Exif\x00\x00"}):
        buffer = io.BytesIO()
        Image.new("RGBA", (300, 200)).save(buffer, format="WEBP", **options)
        assert image_size(buffer.getvalue()) == ("webp", 300, 200)
    assert image_size(b"not an image") is None


def test_estimate_token_count_counts_text_and_image_pixels(kimi_sim: KimiSimulator) -> None:
    def estimate(messages: list[dict[str, Any]]) -> int:
        response = HTTP.post(
            kimi_sim.base_url + "/tokenizers/estimate-token-count",
            json={"model": "kimi-k2.5", "messages": messages},
            headers=AUTH,
        )
        assert response.status_code == 200
        return response.json()["data"]["total_tokens"]

    text_only = estimate([{"role": "user", "content": "12345678"}])
    assert text_only == 3 + 4 + 2 == count_prompt([{"role": "user", "content": "12345678"}]).total
    small = estimate(
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": image_url(56, 56)}}]}]
    )
    large = estimate(
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": image_url(560, 280)}}]}]
    )
    assert large - small == 20 * 10 - 2 * 2  # one token per 28x28 patch
    video = "data:video/mp4;base64," + base64.b64encode(b"\x00" * 1500).decode()
    assert (
        estimate([{"role": "user", "content": [{"type": "video_url", "video_url": {"url": video}}]}])
        == 3 + 4 + 2000
    )
    assert kimi_sim.chat_requests == []


def test_text_tokens_rule() -> None:
    assert [text_tokens(s) for s in ("", "a", "abcd", "abcde", "é")] == [0, 1, 1, 2, 1]


def test_balance(kimi_sim: KimiSimulator) -> None:
    body = HTTP.get(kimi_sim.base_url + "/users/me/balance", headers=AUTH).json()
    assert body["data"]["available_balance"] == 50.0 and body["status"] is True


# -- the demo reply ----------------------------------------------------------------------------
def test_default_reply_describes_the_question_and_attachments(kimi_sim: KimiSimulator) -> None:
    video = "data:video/mp4;base64," + base64.b64encode(b"\x00" * 2048).decode()
    content = [
        {"type": "image_url", "image_url": {"url": image_url(640, 480)}},
        {"type": "image_url", "image_url": {"url": image_url(32, 16, "JPEG")}},
        {"type": "video_url", "video_url": {"url": video}},
        {"type": "text", "text": "What is in these pictures?"},
    ]
    body = ask(kimi_sim, {"role": "user", "content": content})
    message = body["choices"][0]["message"]
    text = message["content"]
    assert text.startswith("*(Simulated reply - no real model was called.)*")
    assert "What is in these pictures?" in text
    assert "image/png, 640×480 px" in text and "image/jpeg, 32×16 px" in text
    assert "video/mp4, 2.0 KB" in text and "```" not in text
    assert "(2 images, 1 video)" in message["reasoning_content"]
    assert say(kimi_sim, "What is in these pictures?") == say(
        kimi_sim, "What is in these pictures?"
    )  # deterministic


@pytest.mark.parametrize("prompt", ["Write a function to add numbers", "plot the sales", "fix this code"])
def test_default_reply_has_valid_python_when_code_is_asked_for(kimi_sim: KimiSimulator, prompt: str) -> None:
    text = say(kimi_sim, prompt)
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    ast.parse(code)


def test_default_reply_without_thinking_and_in_json_mode(kimi_sim: KimiSimulator) -> None:
    body = ask(kimi_sim, {"role": "user", "content": "hi"}, thinking={"type": "disabled"})
    assert "reasoning_content" not in body["choices"][0]["message"]
    data = json.loads(say(kimi_sim, "give me json", response_format={"type": "json_object"}))
    assert data["simulated"] is True and data["question"] == "give me json"


# -- the command line --------------------------------------------------------------------------
def _first_line(process: subprocess.Popen[str], timeout: float) -> str:
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    return lines.get(timeout=timeout).strip()


def test_command_line_prints_the_url_and_serves(tmp_path: Path) -> None:
    script = _write(tmp_path, [{"match": "ping", "reply": "pong"}])
    command = [sys.executable, "-m", "kimi_jupyter.testing", "--api-key", "sk-cli", "--script", str(script)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        url = _first_line(process, timeout=20)
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        headers = {"Authorization": "Bearer sk-cli"}
        assert "kimi-k2.5" in [
            m["id"] for m in HTTP.get(url + "/models", headers=headers, timeout=5).json()["data"]
        ]
        payload = {"model": "kimi-k2.5", "messages": [{"role": "user", "content": "ping"}]}
        answer = HTTP.post(url + "/chat/completions", json=payload, headers=headers, timeout=5).json()
        assert answer["choices"][0]["message"]["content"] == "pong"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        finally:
            process.kill() if process.poll() is None else None
            process.communicate(timeout=5)
    assert process.returncode == 0


def test_command_line_refuses_non_loopback_hosts() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kimi_jupyter.testing", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "loopback" in result.stderr


# -- load --------------------------------------------------------------------------------------
async def test_fifty_concurrent_streams_each_get_their_own_answer(kimi_sim: KimiSimulator) -> None:
    kimi_sim.on(
        None,
        lambda messages: Reply(text=f"answer to {messages[-1]['content']}", chunk_chars=3, chunk_delay=0.005),
    )

    async def one(client: httpx.AsyncClient, i: int) -> str:
        payload = {
            "model": "kimi-k2.5",
            "stream": True,
            "messages": [{"role": "user", "content": f"question {i}"}],
        }
        text = ""
        async with client.stream("POST", kimi_sim.base_url + "/chat/completions", json=payload) as response:
            assert response.status_code == 200
            async for line in response.aiter_lines():
                if line.startswith("data: {"):
                    choices = json.loads(line[6:])["choices"]
                    text += (choices[0]["delta"].get("content") or "") if choices else ""
        return text

    limits = httpx.Limits(max_connections=60)
    async with httpx.AsyncClient(headers=AUTH, limits=limits, timeout=30) as client:
        answers = await asyncio.wait_for(asyncio.gather(*(one(client, i) for i in range(50))), timeout=60)
    assert answers == [f"answer to question {i}" for i in range(50)]
    assert len(kimi_sim.chat_requests) == 50


def test_twenty_thousand_chunks_stream_quickly(kimi_sim: KimiSimulator) -> None:
    kimi_sim.queue(Reply(chunks=[f"{i % 10}" for i in range(20_000)]))
    payload = {"model": "kimi-k2.5", "stream": True, "messages": [{"role": "user", "content": "long"}]}
    started = time.perf_counter()
    with HTTP.stream(
        "POST", kimi_sim.base_url + "/chat/completions", json=payload, headers=AUTH, timeout=30
    ) as r:
        raw = r.read()
    elapsed = time.perf_counter() - started
    assert raw.count(b'"content":"') == 20_000 + 1  # the pieces plus the opening role chunk
    assert raw.endswith(b"data: [DONE]\n\n")
    assert elapsed < 3.0, elapsed  # about 0.3 s here; generous for slow CI machines


def test_fixtures_from_the_plugin(kimi_sim_env: KimiSimulator) -> None:
    assert os.environ["KIMI_BASE_URL"] == kimi_sim_env.base_url
    assert os.environ["MOONSHOT_API_KEY"] == KEY and os.environ["KIMI_PROVIDER"] == "moonshot"
    assert "KIMI_API_KEY" not in os.environ
    assert kimi_sim_env.running and kimi_sim_env.dialect == "moonshot"
    assert (
        HTTP.get(kimi_sim_env.base_url + "/models", headers={"Authorization": "Bearer wrong"}).status_code
        == 401
    )


def test_a_fault_in_one_simulator_does_not_leak_into_a_fresh_one(kimi_sim: KimiSimulator) -> None:
    kimi_sim.fault(Fault.quota(), times=None)
    with KimiSimulator(api_key=KEY) as other:
        assert (
            HTTP.post(
                other.base_url + "/chat/completions",
                json={"model": "kimi-k2.5", "messages": [{"role": "user", "content": "x"}]},
                headers=AUTH,
            ).status_code
            == 200
        )
