"""Injected faults: error statuses, cut and malformed streams, stalls, and a clean stop."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kimi_jupyter.testing import Fault, KimiSimulator, Reply

KEY = "sk-test-simulator"
AUTH = {"Authorization": f"Bearer {KEY}"}
HTTP = httpx.Client(timeout=10)  # one client: building an SSL context per call would dominate the run time


@pytest.fixture(scope="module", autouse=True)
def _close_http() -> Iterator[None]:
    yield
    HTTP.close()


def body(text: str = "hello", stream: bool = False) -> dict[str, Any]:
    return {"model": "kimi-k2.5", "messages": [{"role": "user", "content": text}], "stream": stream}


def chat(sim: KimiSimulator, text: str = "hello") -> httpx.Response:
    return HTTP.post(sim.base_url + "/chat/completions", json=body(text), headers=AUTH, timeout=10)


def data_lines(raw: str) -> list[str]:
    return [line for line in raw.splitlines() if line.startswith("data: ")]


def test_rate_limit_names_the_wait_and_sets_retry_after(kimi_sim: KimiSimulator) -> None:
    kimi_sim.fault(Fault.rate_limit(wait=3), times=1)
    first = chat(kimi_sim)
    assert first.status_code == 429 and first.headers["retry-after"] == "3"
    error = first.json()["error"]
    assert (
        error["type"] == "rate_limit_reached_error" and "please try again after 3 seconds" in error["message"]
    )
    assert chat(kimi_sim).status_code == 200


@pytest.mark.parametrize(
    ("fault", "status", "error_type", "fragment"),
    [
        (Fault.overloaded(), 429, "engine_overloaded_error", "overloaded"),
        (Fault.quota(), 429, "exceeded_current_quota_error", "quota"),
        (Fault.unauthorized(), 401, "invalid_authentication_error", "Invalid Authentication"),
        (Fault.server_error(), 500, "server_error", ""),
        (Fault.server_error(status=502), 502, "server_error", ""),
        (Fault.server_error(status=503), 503, "server_error", ""),
        (Fault.server_error(status=504), 504, "server_error", ""),
        (Fault.content_filter(), 400, "content_filter", "considered high risk"),
        (Fault.context_too_long(), 400, "invalid_request_error", "token limit"),
        (Fault.model_not_found("kimi-k2.5"), 404, "resource_not_found_error", "kimi-k2.5"),
        (
            Fault.status(403, "permission_denied_error", "no access", {"X-Why": "test"}),
            403,
            "permission_denied_error",
            "no access",
        ),
    ],
)
def test_status_faults_answer_in_moonshots_error_format(
    kimi_sim: KimiSimulator, fault: Fault, status: int, error_type: str, fragment: str
) -> None:
    kimi_sim.fault(fault)
    response = chat(kimi_sim)
    assert response.status_code == status
    assert response.json()["error"]["type"] == error_type
    assert fragment in response.json()["error"]["message"]
    if status == 403:
        assert response.headers["x-why"] == "test"


def test_server_error_only_takes_5xx_statuses() -> None:
    with pytest.raises(ValueError, match="500, 502, 503 or 504"):
        Fault.server_error(status=418)


def test_fault_times_and_match_scope(kimi_sim: KimiSimulator) -> None:
    kimi_sim.fault(Fault.overloaded(), times=2)
    assert [chat(kimi_sim).status_code for _ in range(3)] == [429, 429, 200]
    kimi_sim.fault(Fault.server_error(), times=None, match=r"(?i)explode")
    assert chat(kimi_sim, "hello").status_code == 200
    assert chat(kimi_sim, "please EXPLODE").status_code == 500
    assert chat(kimi_sim, "explode again").status_code == 500
    kimi_sim.reset()
    kimi_sim.fault(Fault.quota(), match=lambda messages: len(messages) > 1)
    assert chat(kimi_sim).status_code == 200
    two = {
        "model": "kimi-k2.5",
        "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
    }
    assert HTTP.post(kimi_sim.base_url + "/chat/completions", json=two, headers=AUTH).status_code == 429


def test_faults_come_before_queued_replies(kimi_sim: KimiSimulator) -> None:
    kimi_sim.queue(Reply(text="the queued one"))
    kimi_sim.fault(Fault.overloaded())
    assert chat(kimi_sim).status_code == 429
    assert chat(kimi_sim).json()["choices"][0]["message"]["content"] == "the queued one"


def test_cut_stream_drops_the_connection_before_done(kimi_sim: KimiSimulator) -> None:
    kimi_sim.queue(Reply(text="abcdefgh" * 10, reasoning="r"))
    kimi_sim.fault(Fault.cut(after=3))
    received = []
    url = kimi_sim.base_url + "/chat/completions"
    with (
        pytest.raises(httpx.RemoteProtocolError),
        HTTP.stream("POST", url, json=body(stream=True), headers=AUTH) as r,
    ):
        assert r.status_code == 200
        received.extend(r.iter_lines())
    lines = [line for line in received if line.startswith("data: ")]
    assert len(lines) == 3 and "data: [DONE]" not in lines
    assert chat(kimi_sim).status_code == 200  # the next request is served normally


def test_cut_past_the_end_still_withholds_done(kimi_sim: KimiSimulator) -> None:
    kimi_sim.queue(Reply(text="short"))
    kimi_sim.fault(Fault.cut(after=1000))
    with pytest.raises(httpx.RemoteProtocolError):
        HTTP.post(kimi_sim.base_url + "/chat/completions", json=body(stream=True), headers=AUTH).read()


def test_cut_non_stream_body_is_incomplete(kimi_sim: KimiSimulator) -> None:
    kimi_sim.fault(Fault.cut())
    with pytest.raises(httpx.RemoteProtocolError):
        chat(kimi_sim)


def test_malformed_line_is_slipped_in_and_the_stream_goes_on(kimi_sim: KimiSimulator) -> None:
    kimi_sim.queue(Reply(text="abcdefgh" * 4))
    kimi_sim.fault(Fault.malformed(after=2))
    response = HTTP.post(kimi_sim.base_url + "/chat/completions", json=body(stream=True), headers=AUTH)
    lines = data_lines(response.text)
    assert lines[2] == "data: {not json"
    assert lines[-1] == "data: [DONE]"
    content = "".join(
        json.loads(line[6:])["choices"][0]["delta"].get("content") or "" for line in lines[3:-1]
    )
    assert content.endswith("abcdefgh")
    kimi_sim.fault(Fault.malformed())
    with pytest.raises(json.JSONDecodeError):
        chat(kimi_sim).json()


def test_stall_pauses_the_stream_after_n_chunks(kimi_sim: KimiSimulator) -> None:
    kimi_sim.queue(Reply(text="abcdefgh" * 3))
    kimi_sim.fault(Fault.stall(0.4, after=2))
    arrivals: list[tuple[float, str]] = []
    with HTTP.stream(
        "POST", kimi_sim.base_url + "/chat/completions", json=body(stream=True), headers=AUTH
    ) as r:
        for line in r.iter_lines():
            if line.startswith("data: "):
                arrivals.append((time.monotonic(), line))
    assert arrivals[-1][1] == "data: [DONE]"
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(arrivals)]
    assert gaps[1] >= 0.35 and max(gaps[:1] + gaps[2:]) < 0.35


def test_stall_delays_a_non_stream_answer(kimi_sim: KimiSimulator) -> None:
    kimi_sim.fault(Fault.stall(0.3))
    started = time.monotonic()
    assert chat(kimi_sim).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_chunk_delay_spaces_the_chunks(kimi_sim: KimiSimulator) -> None:
    kimi_sim.queue(Reply(chunks=["a", "b", "c", "d"], chunk_delay=0.05))
    started = time.monotonic()
    response = HTTP.post(kimi_sim.base_url + "/chat/completions", json=body(stream=True), headers=AUTH)
    assert response.text.count("data: ") == 7  # role, 4 pieces, finish, [DONE]
    assert time.monotonic() - started >= 0.25


def test_faults_from_dicts_and_script_rules(kimi_sim: KimiSimulator) -> None:
    assert Fault.from_dict({"kind": "rate_limit", "wait": 7}) == Fault.rate_limit(wait=7)
    assert Fault.from_dict({"kind": "stall", "seconds": 1, "after": 2}) == Fault.stall(1, after=2)
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault.from_dict({"kind": "meteor"})
    with pytest.raises(ValueError, match="bad options"):
        Fault.from_dict({"kind": "quota", "wait": 1})
    kimi_sim.load_script([{"match": "busy", "fault": {"kind": "overloaded"}, "times": 1}])
    assert chat(kimi_sim, "are you busy?").status_code == 429
    assert chat(kimi_sim, "are you busy?").status_code == 200


def test_stop_with_a_stalled_stream_in_flight_is_quick_and_clean() -> None:
    sim = KimiSimulator(api_key=KEY).start()
    sim.queue(Reply(text="abcdefgh" * 4))
    sim.fault(Fault.stall(60, after=1))
    got_first = threading.Event()
    outcome: dict[str, Any] = {}

    def client() -> None:
        try:
            with HTTP.stream(
                "POST", sim.base_url + "/chat/completions", json=body(stream=True), headers=AUTH, timeout=10
            ) as r:
                for line in r.iter_lines():
                    if line.startswith("data: "):
                        got_first.set()
                outcome["finished"] = True
        except httpx.HTTPError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    assert got_first.wait(5)
    time.sleep(0.1)
    started = time.monotonic()
    sim.stop()
    assert time.monotonic() - started < 1.5
    thread.join(5)
    assert not thread.is_alive()
    assert "error" in outcome  # the client sees the stream end without [DONE]
    assert not sim.running
