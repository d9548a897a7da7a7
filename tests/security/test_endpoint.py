"""A ``.env`` cannot redirect the key silently: the first request waits for the user.

In a real kernel against the real simulator on 127.0.0.1: the key is in the environment, a
``.env`` next to the notebook sets the base URL. Nothing reaches the simulator (no chat, no
upload) until ``%kimi trust-endpoint``.
"""

from __future__ import annotations

import pytest

from kimi_jupyter.errors import UntrustedEndpointError
from kimi_jupyter.settings import resolve_settings
from kimi_jupyter.testing import KimiSimulator, Reply

from ..kernels import run, running_kernel, text_of

pytestmark = pytest.mark.timeout(240)

KEY = "sk-endpoint-0123456789abcdef"


def test_a_dotenv_base_url_waits_for_confirmation_in_a_kernel(tmp_path):
    with KimiSimulator(api_key=KEY) as sim:
        (tmp_path / ".env").write_text(f"KIMI_BASE_URL={sim.base_url}\nKIMI_PROVIDER=moonshot\n")
        (tmp_path / "notes.md").write_text("# notes\n")
        sim.queue(Reply(text="Answered."))
        with running_kernel({"MOONSHOT_API_KEY": KEY}, tmp_path) as (_, client):
            run(client, "%load_ext kimi_jupyter\nreport = 'notes.md'")
            reply, msgs = run(client, "%%kimi --display text\nHello")
            shown = text_of(msgs)
            assert "Not sent" in shown and "127.0.0.1" in shown and "%kimi trust-endpoint" in shown, shown
            assert "Traceback" not in shown and reply["status"] == "error"
            _, msgs = run(client, "%%kimi --display text --new\nSummarise {report}")  # an upload waits too
            assert "Not sent" in text_of(msgs)
            assert not sim.requests and not sim.files.all()
            _, msgs = run(client, "%kimi trust-endpoint")
            assert "Trusted for this kernel" in text_of(msgs)
            reply, msgs = run(client, "%%kimi --display text\nHello")
            assert reply["status"] == "ok" and "Answered." in text_of(msgs)


def _settings(tmp_path, url: str, provider: str = "moonshot"):
    (tmp_path / ".env").write_text(f"KIMI_BASE_URL={url}\nKIMI_PROVIDER={provider}\n")
    return resolve_settings(environ={"MOONSHOT_API_KEY": KEY}, cwd=tmp_path)


def test_the_presets_official_https_host_needs_no_confirmation(tmp_path):
    assert _settings(tmp_path, "https://api.moonshot.cn/v1").require_key() == KEY


@pytest.mark.parametrize(("url", "said"), [
    ("https://openrouter.ai/api/v1", "openrouter.ai is the openrouter provider's host, not moonshot's"),
    ("http://api.moonshot.cn/v1", "plain http://"),
    ("https://collector.example.net/v1", "would go to collector.example.net"),
])
def test_another_providers_host_or_a_downgrade_is_named_and_waits(tmp_path, url, said):
    settings = _settings(tmp_path, url)
    with pytest.raises(UntrustedEndpointError, match="trust-endpoint") as refused:
        settings.require_key()
    assert said in str(refused.value) and KEY not in str(refused.value)
    settings.trust_endpoint()
    assert settings.require_key() == KEY
