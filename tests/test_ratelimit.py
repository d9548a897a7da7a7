"""Rate-limit headers against the simulator: read, shown in `%kimi usage`, and obeyed (a wait
before sending when nothing is left; a 429's retry after the announced reset)."""

from __future__ import annotations

import time

import pytest

from kimi_jupyter.client import KimiClient
from kimi_jupyter.events import Notice, Retrying
from kimi_jupyter.ratelimit import parse_duration, parse_rate_limit_headers, rate_limits
from kimi_jupyter.settings import resolve_settings
from kimi_jupyter.testing import Fault, KimiSimulator, Reply
from kimi_jupyter.testing.ratelimit import RateLimits

KEY = "sk-test-simulator"
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(autouse=True)
def _fresh_limits():
    rate_limits().clear()
    yield
    rate_limits().clear()


def settings_for(sim, **extra):
    return resolve_settings(explicit={"base_url": sim.base_url, "api_key": KEY, "provider": "moonshot",
                                      "retry_backoff": 0.05, **extra}, environ={})


@pytest.mark.parametrize(("text", "seconds"), [("1s", 1.0), ("6m0s", 360.0), ("250ms", 0.25), ("1.5", 1.5),
                                               ("1h2m3s", 3723.0), ("soon", None), ("", None)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


def test_headers_are_read_and_shown():
    info = parse_rate_limit_headers({"x-ratelimit-limit-requests": "100", "x-ratelimit-remaining-requests": "5",
                                     "x-ratelimit-reset-requests": "20s", "x-ratelimit-remaining-tokens": "900"})
    assert info.remaining_requests == 5 and info.reset_requests == 20.0 and info.low
    assert info.describe() == "5 of 100 requests left, resets in 20 s; 900 tokens left"
    assert parse_rate_limit_headers({"content-type": "application/json"}) is None


def test_the_client_waits_for_the_reset_instead_of_hitting_a_429():
    with KimiSimulator(api_key=KEY, rate_limits=RateLimits(requests=2, window=1.0)) as sim:
        with KimiClient(settings_for(sim)) as client:
            client.chat(HI)
            client.chat(HI)
            status = rate_limits().status(settings_for(sim).api_base)
            assert status["remaining_requests"] == 0 and status["limit_requests"] == 2 and status["low"]
            started = time.monotonic()
            stream = client.stream_chat(HI)
            events = list(stream)
        assert stream.response.error is None
        assert any(isinstance(e, Notice) and "rate limit has nothing left" in e.text for e in events)
        assert time.monotonic() - started > 0.3
        assert [r.status for r in sim.chat_requests] == [200, 200, 200]


def test_a_429_that_follows_the_headers_is_retried_after_its_wait():
    with KimiSimulator(api_key=KEY, rate_limits=RateLimits(requests=1, window=1.0)) as sim:
        with KimiClient(settings_for(sim)) as first, KimiClient(settings_for(sim)) as second:
            first.chat(HI)
            rate_limits().clear()  # another process used the limit: this client does not know
            stream = second.stream_chat(HI)
            events = list(stream)
        assert stream.response.error is None
        (retrying,) = [e for e in events if isinstance(e, Retrying)]
        assert retrying.wait == 1.0  # the Retry-After the simulator sent with its 429
        assert [r.status for r in sim.chat_requests] == [200, 429, 200]


def test_a_429_without_retry_after_waits_for_the_announced_reset(kimi_sim):
    headers = {"x-ratelimit-limit-requests": "10", "x-ratelimit-remaining-requests": "0",
               "x-ratelimit-reset-requests": "400ms"}
    kimi_sim.fault(Fault.status(429, "rate_limit_reached_error", "Too many requests", headers), times=1)
    kimi_sim.queue(Reply(text="fine"))
    with KimiClient(settings_for(kimi_sim)) as client:
        stream = client.stream_chat(HI)
        events = list(stream)
    (retrying,) = [e for e in events if isinstance(e, Retrying)]
    assert 0.2 <= retrying.wait <= 0.4
    assert stream.response.text == "fine"


def test_token_limits_count_the_prompt_and_max_tokens():
    with KimiSimulator(api_key=KEY, rate_limits=RateLimits(tokens=1000, window=30.0)) as sim:
        with KimiClient(settings_for(sim, max_tokens=600, max_retries=0, retry_max_wait=1.0)) as client:
            assert client.chat(HI).error is None
            info = rate_limits().latest(settings_for(sim).api_base)
            assert info.limit_tokens == 1000 and 380 <= info.remaining_tokens < 400
            failed = client.chat(HI)
        assert "Rate limit reached (429)" in failed.error and "max TPM: 1000" in failed.error


def test_percent_kimi_usage_shows_the_limits(kimi_sim_env, capsys):
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.testing.globalipapp import start_ipython

    start_ipython()
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "kimi_jupyter")
    ip.config.pop("Kimi", None)
    kimi_sim_env.fault(Fault.status(429, "engine_overloaded_error", "busy", {
        "x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "59",
        "x-ratelimit-reset-requests": "1s", "Retry-After": "0"}), times=1)
    kimi_sim_env.queue(Reply(text="ok"))
    ip.run_cell("%%kimi --new\nhello")
    capsys.readouterr()
    ip.run_line_magic("kimi", "usage")
    out = capsys.readouterr().out
    assert "Rate limits (as of" in out and "59 of 60 requests left, resets in 1 s" in out
