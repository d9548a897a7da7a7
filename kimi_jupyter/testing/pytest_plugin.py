"""pytest fixtures for the Kimi simulator, registered through the ``pytest11`` entry point.

* ``kimi_sim``: a fresh, started :class:`~kimi_jupyter.testing.KimiSimulator` per test
  (``moonshot`` dialect at ``/v1``, API key ``sk-test-simulator``), stopped afterwards.
* ``kimi_sim_env``: ``kimi_sim`` plus the environment a client reads: ``KIMI_BASE_URL``
  (the simulator's ``/v1``), ``MOONSHOT_API_KEY`` (the simulator's key) and
  ``KIMI_PROVIDER=moonshot``; ``KIMI_API_KEY`` is removed so a developer's own key cannot
  win. Yields the simulator.

The simulator is imported inside the fixtures, so loading this plugin costs nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .simulator import KimiSimulator

SIMULATOR_API_KEY = "sk-test-simulator"


@pytest.fixture
def kimi_sim() -> Iterator[KimiSimulator]:
    """A running Kimi simulator (moonshot dialect, key ``sk-test-simulator``)."""
    from .simulator import KimiSimulator

    with KimiSimulator(api_key=SIMULATOR_API_KEY, dialect="moonshot") as sim:
        yield sim


@pytest.fixture
def kimi_sim_env(kimi_sim: KimiSimulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[KimiSimulator]:
    """``kimi_sim`` with ``KIMI_BASE_URL``, ``MOONSHOT_API_KEY`` and ``KIMI_PROVIDER`` set."""
    monkeypatch.setenv("KIMI_BASE_URL", kimi_sim.base_url)
    monkeypatch.setenv("MOONSHOT_API_KEY", SIMULATOR_API_KEY)
    monkeypatch.setenv("KIMI_PROVIDER", "moonshot")
    monkeypatch.delenv("KIMI_API_KEY", raising=False)
    yield kimi_sim
