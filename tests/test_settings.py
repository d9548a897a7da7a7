import pytest

from kimi_jupyter.errors import ConfigError, MissingKeyError
from kimi_jupyter.providers import PROVIDERS, get_provider, infer_provider
from kimi_jupyter.settings import Secret, resolve_settings


def test_defaults_are_moonshot_cn():
    s = resolve_settings(environ={})
    assert (s.provider, s.base_url, s.model) == ("moonshot", "https://api.moonshot.cn/v1", "kimi-k2.5")
    assert s.api_key is None


def test_resolution_order_argument_config_env_dotenv(tmp_path):
    (tmp_path / ".env").write_text("MOONSHOT_API_KEY=from-dotenv-key\nKIMI_MODEL=dotenv-model\nexport KIMI_BASE_URL='https://api.moonshot.ai/v1'\n")
    env = {"KIMI_MODEL": "env-model"}
    s = resolve_settings(environ=env, cwd=tmp_path)
    assert s.model == "env-model" and s.sources["model"] == "environment (KIMI_MODEL)"
    assert s.api_key.get() == "from-dotenv-key" and s.sources["api_key"].startswith(".env")
    assert s.provider == "moonshot-intl" and s.sources["provider"] == "inferred from base URL"
    s = resolve_settings(config={"model": "config-model"}, environ=env, cwd=tmp_path)
    assert s.model == "config-model" and s.sources["model"] == "%config"
    s = resolve_settings(explicit={"model": "arg-model"}, config={"model": "config-model"}, environ=env, cwd=tmp_path)
    assert s.model == "arg-model" and s.sources["model"] == "argument"


def test_kimi_api_key_is_accepted_and_moonshot_key_wins():
    assert resolve_settings(environ={"KIMI_API_KEY": "k1"}).api_key.get() == "k1"
    assert resolve_settings(environ={"KIMI_API_KEY": "k1", "MOONSHOT_API_KEY": "k2"}).api_key.get() == "k2"


@pytest.mark.parametrize("url,name", [
    ("https://api.moonshot.cn/v1", "moonshot"),
    ("https://api.moonshot.ai/v1", "moonshot-intl"),
    ("https://openrouter.ai/api/v1", "openrouter"),
    ("https://wcode.net/api/gpt/v1", "wcode"),
    ("https://api.cometapi.com/v1", "cometapi"),
    ("https://genaiapi.cloudsway.net/v1/ai/abc", "cloudsway"),
    ("http://localhost:8000/v1", "openai"),
])
def test_provider_inferred_from_base_url(url, name):
    assert infer_provider(url).name == name


def test_thinking_switch_per_dialect():
    assert get_provider("moonshot").thinking_fields(False) == {"thinking": {"type": "disabled"}}
    assert get_provider("openrouter").thinking_fields(True) == {"reasoning": {"enabled": True}}
    assert get_provider("vllm").thinking_fields(False) == {"chat_template_kwargs": {"thinking": False}}
    assert get_provider("cometapi").thinking_fields(True) == {}


def test_every_registry_price_names_a_preset_and_a_currency():
    from kimi_jupyter.models import registry

    for model in ("kimi-k2.5", "kimi-k2.6", "kimi-k2-thinking", "kimi-k2-thinking-turbo"):
        info = registry().get(model)
        assert info is not None
        for provider, price in info.prices.items():
            assert provider in PROVIDERS
            assert price.currency in ("CNY", "USD")


def test_cloudsway_endpoint_goes_into_url():
    s = resolve_settings(explicit={"provider": "cloudsway", "endpoint": "my-endpoint"}, environ={})
    assert s.chat_url == "https://genaiapi.cloudsway.net/v1/ai/my-endpoint/chat/completions"
    with pytest.raises(ConfigError, match="KIMI_ENDPOINT"):
        _ = resolve_settings(explicit={"provider": "cloudsway"}, environ={}).chat_url


def test_full_chat_url_in_base_url_is_accepted():
    s = resolve_settings(explicit={"base_url": "https://x.example/v1/chat/completions"}, environ={})
    assert s.chat_url == "https://x.example/v1/chat/completions"


def test_unknown_provider_and_setting_say_what_exists():
    with pytest.raises(ConfigError, match="moonshot-intl"):
        resolve_settings(explicit={"provider": "nope"}, environ={})
    with pytest.raises(ConfigError, match="Known settings"):
        resolve_settings(explicit={"modle": "x"}, environ={})


def test_missing_key_message_says_how_to_set_it():
    with pytest.raises(MissingKeyError) as info:
        resolve_settings(environ={}).require_key()
    assert "MOONSHOT_API_KEY" in str(info.value) and "%config Kimi.api_key" in str(info.value)


def test_secret_never_prints():
    key = "sk-fake-abcdefghij-klmnopqrstuv-123456"
    s = resolve_settings(environ={"MOONSHOT_API_KEY": key})
    for text in (repr(s), str(s), repr(s.api_key), str(s.api_key), str(s.describe())):
        assert key not in text
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(Secret(key))
