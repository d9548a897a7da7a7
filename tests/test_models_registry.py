"""The model registry against the simulator: windows, prices per provider, /models learning,
retired models, user overrides and `%kimi models`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import kimi_jupyter
from kimi_jupyter.client import KimiClient
from kimi_jupyter.errors import ConfigError
from kimi_jupyter.events import Failed, Notice
from kimi_jupyter.models import PRICE_UNKNOWN, ModelRegistry, registry
from kimi_jupyter.settings import resolve_settings
from kimi_jupyter.testing import KimiSimulator, Reply

KEY = "sk-test-simulator"
USAGE = {"prompt_tokens": 1_000_000, "completion_tokens": 1_000_000, "cached_tokens": 0}


def settings_for(sim: KimiSimulator, **extra):
    return resolve_settings(explicit={"base_url": sim.base_url, "api_key": KEY, "provider": "moonshot",
                                      "max_retries": 0, **extra}, environ={})


@pytest.fixture
def sim():
    with KimiSimulator(api_key=KEY, models=["kimi-k2.5", "kimi-k2.6", "kimi-k2.9-preview", "moonshot-v1-8k"]) as s:
        yield s


def test_prices_belong_to_the_model_and_the_provider():
    reg = ModelRegistry()
    assert reg.price("kimi-k2.5", "moonshot").currency == "CNY"
    assert reg.price("kimi-k2.5", "moonshot-intl").input == 0.60
    assert reg.price("moonshotai/kimi-k2.5", "wcode").output == 35.0  # vendor prefix stripped
    assert reg.price("kimi-k2.5", "openrouter") is None
    assert reg.price("kimi-k2.6", "moonshot") is None  # no built-in k2.6 price: never a borrowed one
    assert reg.window("kimi-k2.6") == 262_144 and reg.window("moonshot-v1-8k") == 8192
    assert reg.get("kimi-k2.6").modalities == ("text", "image", "video")
    assert reg.get("kimi-k2-thinking").thinking == "always"
    assert reg.get("kimi-k2-0905-preview").retired
    assert reg.get("no-such-model") is None


def test_a_k26_request_drops_fixed_sampling_and_is_accepted(sim):
    sim.queue(Reply(text="six", usage=USAGE))
    with KimiClient(settings_for(sim, model="kimi-k2.6")) as client:
        stream = client.stream_chat([{"role": "user", "content": "hi"}], extra={"temperature": 0.2})
        events = list(stream)
    assert any(isinstance(e, Notice) and "temperature" in e.text for e in events)
    assert "temperature" not in sim.chat_requests[-1].json
    assert stream.response.text == "six"
    # No price is known for k2.6 on moonshot: the usage says so instead of a number.
    assert stream.response.usage.cost is None
    assert PRICE_UNKNOWN in stream.response.usage.describe()


def test_known_price_gives_a_cost_and_override_prices_an_unknown_model(sim):
    sim.queue(Reply(text="a", usage=USAGE), Reply(text="b", usage=USAGE))
    with KimiClient(settings_for(sim, model="kimi-k2.5")) as client:
        assert client.chat([{"role": "user", "content": "x"}]).usage.cost == pytest.approx(25.0)
    override = {"kimi-k2.6": {"prices": {"moonshot": {"input": 1.0, "output": 2.0, "currency": "CNY"}}}}
    with KimiClient(settings_for(sim, model="kimi-k2.6", model_overrides=override)) as client:
        usage = client.chat([{"role": "user", "content": "x"}]).usage
    assert usage.cost == pytest.approx(3.0) and usage.currency == "CNY" and usage.note is None


def test_bad_overrides_are_refused_with_the_setting_named():
    with pytest.raises(ConfigError, match="model_overrides"):
        resolve_settings(explicit={"model_overrides": {"kimi-k2.6": {"windw": 5}}}, environ={})


def test_models_list_extends_the_registry_and_the_gauge_uses_the_model_window(sim):
    with KimiClient(settings_for(sim)) as client:
        entries = client.model_entries()
    assert {e["id"] for e in entries} == {"kimi-k2.5", "kimi-k2.6", "kimi-k2.9-preview", "moonshot-v1-8k"}
    learned = registry().get("kimi-k2.9-preview")
    assert learned is not None and learned.source == "server" and learned.context_window == 262_144
    assert settings_for(sim, model="moonshot-v1-8k").context_window == 8192
    from kimi_jupyter.turn import TurnRequest

    meta = TurnRequest("hi", settings_for(sim, model="moonshot-v1-8k")).meta()
    assert meta.context_window == 8192


def test_a_retired_model_404_names_the_available_kimi_models(sim):
    with KimiClient(settings_for(sim, model="kimi-k2-0905-preview")) as client:
        stream = client.stream_chat([{"role": "user", "content": "hi"}])
        failed = [e for e in stream if isinstance(e, Failed)]
    (failure,) = failed
    assert failure.kind == "ModelNotFoundError"
    assert "kimi-k2-0905-preview has been retired" in failure.error
    assert "Available Kimi models here: kimi-k2.9-preview, kimi-k2.6, kimi-k2.5" in failure.error


def test_percent_kimi_models_shows_window_price_modalities_and_current(kimi_sim_env, capsys):
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.testing.globalipapp import start_ipython

    start_ipython()
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "kimi_jupyter")
    ip.config.pop("Kimi", None)
    capsys.readouterr()
    ip.run_line_magic("kimi", "models")
    out = capsys.readouterr().out
    current = next(line for line in out.splitlines() if line.startswith("* "))
    assert re.search(r"\* kimi-k2\.5 +262,144 +¥4 / ¥0\.7 / ¥21 +text, image, video", current)
    k26 = next(line for line in out.splitlines() if " kimi-k2.6 " in line)
    assert PRICE_UNKNOWN in k26 and "262,144" in k26
    assert "8,192" in next(line for line in out.splitlines() if "moonshot-v1-8k" in line)


def test_no_model_window_or_price_is_hard_coded_outside_the_registry():
    package = Path(kimi_jupyter.__file__).parent
    offenders = []
    for path in package.rglob("*.py"):
        rel = path.relative_to(package).as_posix()
        if rel == "models.py" or rel.startswith("testing/"):
            continue
        text = path.read_text(encoding="utf-8")
        if re.search(r"262[_,]?144|Prices\(\s*input\s*=\s*\d", text):
            offenders.append(rel)
    assert offenders == []
