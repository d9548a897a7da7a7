"""Shared test helpers. The simulator fixtures (kimi_sim, kimi_sim_env) come from the
package's own pytest plugin, exactly as a user's test suite would get them."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """No test sees the developer's real key, base URL or .env file."""
    for name in ("MOONSHOT_API_KEY", "KIMI_API_KEY", "KIMI_BASE_URL", "KIMI_MODEL", "KIMI_PROVIDER", "KIMI_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    from kimi_jupyter import session as session_module

    monkeypatch.setattr(session_module, "_SESSION", None)
    yield
