"""The models the simulator serves, and what each one accepts.

The simulator stands alone (it never imports the client's registry), so it keeps its own
small table. Each row: context window, whether the model thinks (``always``, ``switch``: on
by default and ``thinking: {"type": "disabled"}`` turns it off, ``never``), its thinking
effort levels, and which fixed-sampling rule the server enforces:

=========================  ==========  ========  ===============  ==========
model                      window      thinking  effort levels    sampling
=========================  ==========  ========  ===============  ==========
kimi-k2.5                    262,144   switch    (none)           ``k2.5``
kimi-k2.6                    262,144   switch    low, high, max   ``contract``
kimi-k2.7-code (+ -hs)       262,144   always    low, high, max   ``contract``
kimi-k3                    1,048,576   switch    low, high, max   ``contract``
kimi-k3.1-pro (+ -hs)      1,048,576   switch    low, high, max   ``contract``
kimi-k2-thinking(-turbo)     262,144   always    (none)           (none)
kimi-k2-turbo-preview        262,144   never     (none)           (none)
moonshot-v1-8k/32k/128k    8k/32k/128k never     (none)           (none)
=========================  ==========  ========  ===============  ==========

Sampling rules (any other value of ``temperature``, ``top_p``, ``n``,
``presence_penalty`` or ``frequency_penalty`` is a 400):

* ``k2.5``: temperature 1.0 with thinking, 0.6 without (Moonshot's K2.5 documentation);
* ``contract``: the rule of Moonshot's published vendor contract (the Kimi Vendor Verifier's
  parameter tests): temperature 0.6 without thinking, 0.0, 0.6 or 1.0 with thinking;
  top_p 0.95, n 1 and both penalties 0 for both.

Effort (``thinking.effort``, else ``reasoning_effort``, else ``max``) only changes what a
model with effort levels does; kimi-k2.5 ignores it. kimi-k2.7-code and kimi-k3.1-pro share
their family's window (none is published separately). Ids are looked up without case and
without a gateway's vendor prefix (``moonshotai/Kimi-K2.5`` is kimi-k2.5); an id not in the
table thinks by its name (``*thinking*`` always, ``k2.5``/``k2.6`` switch) and has the
simulator's default window.
"""

from __future__ import annotations

from dataclasses import dataclass

EFFORTS = ("low", "high", "max")
DEFAULT_EFFORT = "max"
DEFAULT_WINDOW = 262_144
K3_WINDOW = 1_048_576


@dataclass(frozen=True)
class SimModel:
    """One served model: window, thinking style, effort levels and sampling rule."""

    id: str
    window: int = DEFAULT_WINDOW
    thinking: str = "never"
    efforts: tuple[str, ...] = ()
    sampling: str | None = None
    # the builtin $web_search only runs with thinking switched off (K2.5/K2.6)
    web_search_needs_thinking_off: bool = False


def _table() -> dict[str, SimModel]:
    k2 = {"efforts": EFFORTS, "sampling": "contract"}
    rows = [
        SimModel("kimi-k2.5", thinking="switch", sampling="k2.5", web_search_needs_thinking_off=True),
        SimModel("kimi-k2.6", thinking="switch", web_search_needs_thinking_off=True, **k2),  # type: ignore[arg-type]
        SimModel("kimi-k2.7-code", thinking="always", **k2),  # type: ignore[arg-type]
        SimModel("kimi-k2.7-code-highspeed", thinking="always", **k2),  # type: ignore[arg-type]
        SimModel("kimi-k3", K3_WINDOW, "switch", **k2),  # type: ignore[arg-type]
        SimModel("kimi-k3.1-pro", K3_WINDOW, "switch", **k2),  # type: ignore[arg-type]
        SimModel("kimi-k3.1-pro-highspeed", K3_WINDOW, "switch", **k2),  # type: ignore[arg-type]
        SimModel("kimi-k2-thinking", thinking="always"),
        SimModel("kimi-k2-thinking-turbo", thinking="always"),
        SimModel("kimi-k2-turbo-preview"),
        SimModel("kimi-latest"),
        SimModel("moonshot-v1-8k", 8192),
        SimModel("moonshot-v1-32k", 32768),
        SimModel("moonshot-v1-128k", 131072),
    ]
    return {row.id: row for row in rows}


MODELS = _table()


def model_spec(model: str) -> SimModel:
    """The table's row for ``model`` (vendor prefix and case ignored), else one guessed from the name."""
    key = model.lower().rsplit("/", 1)[-1]
    known = MODELS.get(key)
    if known is not None:
        return known
    if "thinking" in key:
        return SimModel(model, thinking="always")
    if any(tag in key for tag in ("k2.5", "k2p5", "k2-5")):
        return SimModel(model, thinking="switch", sampling="k2.5", web_search_needs_thinking_off=True)
    if any(tag in key for tag in ("k2.6", "k2p6", "k2-6")):
        return SimModel(model, thinking="switch", efforts=EFFORTS, sampling="contract",
                        web_search_needs_thinking_off=True)
    return SimModel(model)


def model_can_think(model: str) -> str:
    """``"always"``, ``"switch"`` (on unless switched off) or ``"never"``."""
    return model_spec(model).thinking


def fixed_sampling(model: str, thinking: bool) -> dict[str, tuple[float, ...]]:
    """The values each fixed sampling parameter may take on ``model`` (empty: not fixed)."""
    rule = model_spec(model).sampling
    if rule is None:
        return {}
    if rule == "k2.5":
        temperature: tuple[float, ...] = (1.0,) if thinking else (0.6,)
    else:
        temperature = (0.0, 0.6, 1.0) if thinking else (0.6,)
    return {
        "temperature": temperature,
        "top_p": (0.95,),
        "n": (1,),
        "presence_penalty": (0.0,),
        "frequency_penalty": (0.0,),
    }
