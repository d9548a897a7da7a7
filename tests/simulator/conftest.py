"""The simulator held to Moonshot's published request contract.

These tests state the rules in the project's own words (``kimi_jupyter/testing/contract.py``
and ``models.py`` list them); ``docs/simulator-contract.md`` says how to check the simulator
against Moonshot's own verifier as well. One simulator serves each test module (``sim``);
``wire.py`` sends requests, streamed or not, and reads the answers.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from kimi_jupyter.testing import KimiSimulator

from .wire import KEY


@pytest.fixture(scope="module")
def sim() -> Iterator[KimiSimulator]:
    with KimiSimulator(api_key=KEY) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10, headers={"Authorization": f"Bearer {KEY}"}) as client:
        yield client


@pytest.fixture(autouse=True)
def _fresh(sim: KimiSimulator) -> None:
    sim.reset()
