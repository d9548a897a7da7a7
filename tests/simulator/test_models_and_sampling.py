"""Which models the simulator serves, their windows, and the sampling values each one fixes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from kimi_jupyter.testing import KimiSimulator

from .wire import KEY, post, refused, user

NEW_MODELS = ("kimi-k2.6", "kimi-k2.7-code", "kimi-k2.7-code-highspeed", "kimi-k3", "kimi-k3.1-pro",
              "kimi-k3.1-pro-highspeed")
WINDOWS = {"kimi-k2.5": 262_144, "kimi-k2.6": 262_144, "kimi-k2.7-code": 262_144,
           "kimi-k2.7-code-highspeed": 262_144, "kimi-k3": 1_048_576, "kimi-k3.1-pro": 1_048_576,
           "kimi-k3.1-pro-highspeed": 1_048_576, "moonshot-v1-8k": 8192}


def test_models_lists_every_kimi_model_with_its_window(sim: KimiSimulator, http: httpx.Client) -> None:
    listed = {m["id"]: m["context_length"] for m in http.get(sim.base_url + "/models").json()["data"]}
    for model, window in WINDOWS.items():
        assert listed[model] == window
    one = http.get(sim.base_url + "/models/kimi-k3").json()
    assert one["id"] == "kimi-k3" and one["context_length"] == 1_048_576


def test_a_prompt_fits_the_window_of_its_own_model(sim: KimiSimulator, http: httpx.Client) -> None:
    big = "word " * 300_000  # 1.5 MB: ~375,000 tokens, past K2's window, within K3's
    assert post(http, sim, {"model": "kimi-k3", "messages": [user(big)]}).status == 200
    refused(post(http, sim, {"model": "kimi-k2.6", "messages": [user(big)]}), "262144")


def test_context_limit_caps_every_window() -> None:
    with KimiSimulator(api_key=KEY, context_limit=1000) as capped, httpx.Client(
        headers={"Authorization": f"Bearer {KEY}"}
    ) as http:
        listed = {m["id"]: m["context_length"] for m in http.get(capped.base_url + "/models").json()["data"]}
        assert listed["kimi-k3"] == 1000 and listed["moonshot-v1-8k"] == 1000
        refused(post(http, capped, {"model": "kimi-k3", "messages": [user("x" * 8000)]}), "1000")


def _ask(model: str, thinking: bool, **sampling: Any) -> dict[str, Any]:
    return {"model": model, "messages": [user("Say OK.")],
            "thinking": {"type": "enabled" if thinking else "disabled"}, **sampling}


# The newer models accept their defaults: temperature 0.6 without thinking, 0.0, 0.6 or 1.0
# with thinking; top_p 0.95, n 1, penalties 0. K2.5 keeps its own rule: 1.0 / 0.6.
ACCEPTED = [
    (True, {"temperature": 0.6}), (True, {"temperature": 0.0}), (True, {"temperature": 1.0}),
    (False, {"temperature": 0.6}), (True, {"top_p": 0.95}), (False, {"top_p": 0.95}),
    (True, {"n": 1}), (False, {"presence_penalty": 0}), (True, {"frequency_penalty": 0.0}),
]
REFUSED = [
    (True, {"temperature": 1.1}), (True, {"temperature": 2.0}), (True, {"temperature": -0.1}),
    (False, {"temperature": 1.0}), (False, {"temperature": 0.0}), (True, {"top_p": 0.8}),
    (False, {"n": 2}), (True, {"presence_penalty": 0.5}), (False, {"frequency_penalty": 0.5}),
]


@pytest.mark.parametrize("model", ["kimi-k2.6", "kimi-k3", "kimi-k3.1-pro"])
@pytest.mark.parametrize(("thinking", "sampling"), ACCEPTED)
def test_newer_models_accept_their_default_sampling(sim: KimiSimulator, http: httpx.Client, model: str,
                                                    thinking: bool, sampling: dict[str, Any]) -> None:
    assert post(http, sim, _ask(model, thinking, **sampling)).status == 200


@pytest.mark.parametrize("model", ["kimi-k2.6", "kimi-k3"])
@pytest.mark.parametrize(("thinking", "sampling"), REFUSED)
def test_newer_models_refuse_other_sampling(sim: KimiSimulator, http: httpx.Client, model: str,
                                            thinking: bool, sampling: dict[str, Any]) -> None:
    (name,) = sampling
    refused(post(http, sim, _ask(model, thinking, **sampling)), f"invalid {name}")


@pytest.mark.parametrize(("thinking", "temperature", "ok"), [
    (True, 1.0, True), (False, 0.6, True), (True, 0.6, False), (True, 0.0, False), (False, 1.0, False),
])
def test_k25_keeps_its_own_temperature_rule(sim: KimiSimulator, http: httpx.Client, thinking: bool,
                                            temperature: float, ok: bool) -> None:
    answer = post(http, sim, _ask("kimi-k2.5", thinking, temperature=temperature))
    if ok:
        assert answer.status == 200
    else:
        refused(answer, "invalid temperature")


def test_models_without_fixed_sampling_take_any_value(sim: KimiSimulator, http: httpx.Client) -> None:
    body = {"model": "moonshot-v1-8k", "messages": [user("hi")], "temperature": 0.3, "top_p": 0.5}
    assert post(http, sim, body).status == 200


@pytest.mark.parametrize("model", NEW_MODELS)
def test_every_new_model_answers_a_plain_request(sim: KimiSimulator, http: httpx.Client, model: str) -> None:
    answer = post(http, sim, {"model": model, "messages": [user("hello")]})
    assert answer.status == 200 and answer.message["content"] and answer.finish_reason == "stop"
