"""The model registry: what each model id can do and what it costs, per provider.

A model's context window, input modalities, thinking switch, fixed sampling values, prices
and retirement belong to the model, not to the provider that serves it, so they live here
and nowhere else. Three layers, later ones winning:

1. built-in entries (below), from Moonshot's platform docs and the gateway seeds. Every
   number, its source and the date it was read are in ``docs/models.md`` (the table there
   is the one a user reads; keep the two in step):

   * ``kimi-k2.5`` and ``kimi-k2.6``: 262,144-token window; text, image and video input;
     thinking switched per request (``thinking: {"type": "enabled"|"disabled"}``);
     sampling fixed by the server (temperature 1.0 thinking / 0.6 not, top_p 0.95, n 1,
     penalties 0; any other value is a 400). kimi-k2.5 costs, per 1M tokens, CNY 4.00 input
     (0.70 on a cache hit) and 21.00 output on api.moonshot.cn, USD 0.60 / 0.10 / 3.00 on
     api.moonshot.ai; the wcode gateway charges CNY 7.5 input and 35 output for
     ``moonshotai/kimi-k2.5``. kimi-k2.6 on api.moonshot.ai: USD 0.95 / 0.16 / 4.00; no CNY
     price is built in for it (set ``Kimi.prices`` or ``Kimi.model_overrides``).
   * ``kimi-k2.7-code`` (+ ``-highspeed``): 262,144 tokens, always thinks; USD 0.95 / 0.19 /
     4.00 (highspeed 1.90 / 0.38 / 8.00) on api.moonshot.ai.
   * ``kimi-k3``: 1,048,576 tokens, always thinks, thinking effort ``low`` / ``high`` /
     ``max`` (default max), ``tool_choice`` ``required`` accepted, ``response_format``
     ``json_schema``; public image URLs refused (base64 or ``ms://`` only); USD 3.00 input,
     0.30 cached, 15.00 output, cache writes 3.00 (TTL 5m) or 6.00 (TTL 1h) on
     api.moonshot.ai. ``kimi-k3.1-pro`` (+ ``-highspeed``): the same request rules and
     window; no price is built in (none was published where this was checked).
   * ``kimi-k2-thinking`` / ``kimi-k2-thinking-turbo`` (always think, text only; CometAPI
     USD 1.10 / 4.40 and 2.20 / 15.95), ``kimi-k2-turbo-preview`` (never thinks), and the
     ``moonshot-v1-*`` models (8k/32k/128k windows).
   * ``kimi-k2-0711-preview`` and ``kimi-k2-0905-preview`` are known to be retired; their
     404 names the successors.

2. what the server's ``GET /models`` says (:meth:`ModelRegistry.learn`): an id not built in
   is added with the window the server reports (``context_length``), if any;
3. the user's overrides, one setting ``Kimi.model_overrides = {"kimi-k2.6": {"prices":
   {"moonshot": {"input": .., "output": .., "input_cached": .., "currency": "CNY"}},
   "context_window": 262144}}`` (keys: ``context_window``, ``modalities``, ``thinking``,
   ``fixed_sampling``, ``prices``, ``retired``, ``efforts``, ``tool_choices``,
   ``json_schema``, ``keep_reasoning``, ``web_search``, ``cache_write``, ``successors``).

Lookups accept a gateway's vendor prefix (``moonshotai/kimi-k2.5`` finds ``kimi-k2.5``) and
ignore case. An unknown model has no price: cost is then "price unknown: set Kimi.prices",
never a number borrowed from another model.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .providers import Prices

__all__ = [
    "CACHE_TTLS",
    "EFFORTS",
    "FIXED_K2_SAMPLING",
    "ModelInfo",
    "ModelOverrides",
    "ModelRegistry",
    "PRICE_UNKNOWN",
    "registry",
]

PRICE_UNKNOWN = "price unknown: set Kimi.prices"

# The sampling values kimi-k2.5/k2.6 fix; "temperature" depends on thinking (on, off).
FIXED_K2_SAMPLING: Mapping[str, Any] = {
    "temperature": (1.0, 0.6),
    "top_p": 0.95,
    "n": 1,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
}
THINKING_STYLES = ("switch", "always", "never")


@dataclass(frozen=True)
class ModelInfo:
    """One model id: window (tokens), input modalities, thinking, fixed sampling, prices.

    ``thinking``: ``"switch"`` (per request), ``"always"`` or ``"never"``. ``prices`` maps a
    provider preset name to its `Prices` (currency included). ``source``: ``built-in``,
    ``server`` (learned from ``/models``) or ``override``.
    """

    id: str
    context_window: int | None = None
    modalities: tuple[str, ...] = ("text",)
    thinking: str = "never"
    fixed_sampling: Mapping[str, Any] = field(default_factory=dict)
    prices: Mapping[str, Prices] = field(default_factory=dict)
    retired: bool = False
    source: str = "built-in"
    # Thinking effort levels the model takes (``thinking.effort``); empty: no effort control.
    efforts: tuple[str, ...] = ()
    # ``tool_choice`` values the server accepts (a named function is accepted by none).
    tool_choices: tuple[str, ...] = ("auto", "none")
    # ``response_format: {"type": "json_schema", ...}`` (else only ``json_object``).
    json_schema: bool = False
    # Send ``thinking.keep = "all"`` and keep every earlier answer's reasoning in the history
    # (K3: required in multi-turn conversations and tool loops).
    keep_reasoning: bool = False
    # Moonshot's builtin ``$web_search`` (it needs thinking off, so not on always-thinking models).
    web_search: bool = False
    # Price per 1M tokens written to the prompt cache, per provider and TTL ("5m", "1h").
    cache_write: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    # What a retired model's error suggests instead.
    successors: tuple[str, ...] = ()
    # Public http(s) image URLs in ``image_url`` parts (Kimi: base64 or ms:// only).
    public_image_urls: bool = False

    def price(self, provider: str, cache_ttl: str | None = None) -> Prices | None:
        """The price on ``provider``; with its cache-write price for ``cache_ttl`` (the
        server's default TTL, 5m, when None) where the model publishes one."""
        price = self.prices.get(provider)
        write = (self.cache_write.get(provider) or {}).get(cache_ttl or "5m")
        if price is not None and write is not None and price.cache_write is None:
            price = dataclasses.replace(price, cache_write=write)
        return price

    @property
    def always_thinks(self) -> bool:
        return self.thinking == "always"

    @property
    def fixes_sampling(self) -> bool:
        return bool(self.fixed_sampling)

    def takes(self, modality: str) -> bool:
        return modality in self.modalities

    def merged(self, patch: Mapping[str, Any], source: str) -> ModelInfo:
        """A copy with the keys of ``patch`` applied (prices merge per provider)."""
        changes: dict[str, Any] = {"source": source}
        for key, value in patch.items():
            if key == "prices":
                prices = dict(self.prices)
                for provider, price in dict(value).items():
                    prices[str(provider)] = price if isinstance(price, Prices) else Prices(**dict(price))
                changes["prices"] = prices
            elif key == "modalities":
                changes["modalities"] = tuple(value)
            elif key in ("efforts", "tool_choices", "successors"):
                changes[key] = tuple(value)
            elif key == "cache_write":
                changes[key] = {str(p): {str(t): float(v) for t, v in dict(ttls).items()}
                                for p, ttls in dict(value).items()}
            elif key in ("context_window", "thinking", "fixed_sampling", "retired", "json_schema",
                         "keep_reasoning", "web_search", "public_image_urls"):
                changes[key] = value
            else:
                raise ValueError(f"unknown model field {key!r}")
        return dataclasses.replace(self, **changes)


_K2_MEDIA = ("text", "image", "video")
_WINDOW = 262_144
_K3_WINDOW = 1_048_576
EFFORTS = ("low", "high", "max")
CACHE_TTLS = ("5m", "1h")
_WITH_REQUIRED = ("auto", "none", "required")


def _usd(inp: float, cached: float, out: float) -> Prices:
    return Prices(input=inp, output=out, input_cached=cached, currency="USD")


def _built_in() -> list[ModelInfo]:
    k25_cn = Prices(input=4.00, output=21.00, input_cached=0.70, currency="CNY")
    k25_intl = _usd(0.60, 0.10, 3.00)
    k3 = {"efforts": EFFORTS, "tool_choices": _WITH_REQUIRED, "json_schema": True, "keep_reasoning": True}
    newer = ("kimi-k2.6", "kimi-k3")
    return [
        ModelInfo("kimi-k2.5", _WINDOW, _K2_MEDIA, "switch", FIXED_K2_SAMPLING,
                  {"moonshot": k25_cn, "moonshot-intl": k25_intl,
                   "wcode": Prices(input=7.5, output=35.0, currency="CNY")},
                  web_search=True, successors=newer),
        ModelInfo("kimi-k2.6", _WINDOW, _K2_MEDIA, "switch", FIXED_K2_SAMPLING,
                  {"moonshot-intl": _usd(0.95, 0.16, 4.00)}, json_schema=True, web_search=True,
                  successors=("kimi-k3",)),
        ModelInfo("kimi-k2.7-code", _WINDOW, ("text", "image"), "always", FIXED_K2_SAMPLING,
                  {"moonshot-intl": _usd(0.95, 0.19, 4.00)}),
        ModelInfo("kimi-k2.7-code-highspeed", _WINDOW, ("text", "image"), "always", FIXED_K2_SAMPLING,
                  {"moonshot-intl": _usd(1.90, 0.38, 8.00)}),
        ModelInfo("kimi-k3", _K3_WINDOW, ("text", "image"), "always", FIXED_K2_SAMPLING,
                  {"moonshot-intl": _usd(3.00, 0.30, 15.00)},
                  cache_write={"moonshot-intl": {"5m": 3.00, "1h": 6.00}}, **k3),  # type: ignore[arg-type]
        ModelInfo("kimi-k3.1-pro", _K3_WINDOW, ("text", "image"), "always", FIXED_K2_SAMPLING, **k3),  # type: ignore[arg-type]
        ModelInfo("kimi-k3.1-pro-highspeed", _K3_WINDOW, ("text", "image"), "always", FIXED_K2_SAMPLING,
                  **k3),  # type: ignore[arg-type]
        ModelInfo("kimi-k2-thinking", _WINDOW, ("text",), "always",
                  prices={"cometapi": Prices(input=1.10, output=4.40, currency="USD")}),
        ModelInfo("kimi-k2-thinking-turbo", _WINDOW, ("text",), "always",
                  prices={"cometapi": Prices(input=2.20, output=15.95, currency="USD")}),
        ModelInfo("kimi-k2-turbo-preview", _WINDOW, ("text",), "never"),
        ModelInfo("kimi-k2-0905-preview", _WINDOW, ("text",), "never", retired=True, successors=newer),
        ModelInfo("kimi-k2-0711-preview", 131_072, ("text",), "never", retired=True, successors=newer),
        ModelInfo("moonshot-v1-8k", 8_192),
        ModelInfo("moonshot-v1-32k", 32_768),
        ModelInfo("moonshot-v1-128k", 131_072),
    ]


def _key(model_id: str) -> str:
    """Lookup key: lower case, without a gateway's ``vendor/`` prefix."""
    return model_id.strip().lower().rsplit("/", 1)[-1]


class ModelOverrides:
    """The ``model_overrides`` setting: ``{model id: {field: value}}``, hashable and checked."""

    __slots__ = ("_data", "_hash")

    def __init__(self, data: Mapping[str, Mapping[str, Any]] | None = None):
        clean: dict[str, dict[str, Any]] = {}
        for model_id, patch in dict(data or {}).items():
            if not isinstance(model_id, str) or not isinstance(patch, Mapping):
                raise ValueError("use {'model-id': {'context_window': ..., 'prices': {...}}}")
            ModelInfo(model_id).merged(patch, "override")  # raises on unknown fields or bad prices
            if "thinking" in patch and patch["thinking"] not in THINKING_STYLES:
                raise ValueError(f"thinking must be one of {', '.join(THINKING_STYLES)}")
            clean[model_id] = dict(patch)
        self._data = clean
        self._hash = hash(json.dumps(clean, sort_keys=True, default=repr))

    def items(self) -> Iterable[tuple[str, dict[str, Any]]]:
        return self._data.items()

    def __bool__(self) -> bool:
        return bool(self._data)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ModelOverrides) and other._data == self._data

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return repr(self._data)


class ModelRegistry:
    """Built-in entries, what ``/models`` taught it, and per-lookup user overrides."""

    def __init__(self, entries: Iterable[ModelInfo] | None = None):
        self._lock = threading.Lock()
        self._entries: dict[str, ModelInfo] = {}
        self._served: dict[str, tuple[str, ...]] = {}  # base URL -> ids its /models listed
        for entry in _built_in() if entries is None else entries:
            self._entries[_key(entry.id)] = entry

    def get(self, model_id: str, overrides: ModelOverrides | None = None) -> ModelInfo | None:
        """The entry for ``model_id`` with the user's overrides applied; None when unknown."""
        with self._lock:
            info = self._entries.get(_key(model_id))
        for override_id, patch in (overrides.items() if overrides else ()):
            if _key(override_id) == _key(model_id):
                info = (info or ModelInfo(model_id, source="override")).merged(patch, "override")
        return info

    def price(self, model_id: str, provider: str, overrides: ModelOverrides | None = None,
              cache_ttl: str | None = None) -> Prices | None:
        info = self.get(model_id, overrides)
        return info.price(provider, cache_ttl) if info else None

    def window(self, model_id: str, overrides: ModelOverrides | None = None) -> int | None:
        info = self.get(model_id, overrides)
        return info.context_window if info else None

    def learn(self, base_url: str, entries: Iterable[Mapping[str, Any]]) -> list[ModelInfo]:
        """Add what a server's ``/models`` list says; returns the entries of the listed ids."""
        listed: list[ModelInfo] = []
        with self._lock:
            for raw in entries:
                model_id = raw.get("id") if isinstance(raw, Mapping) else None
                if not isinstance(model_id, str) or not model_id:
                    continue
                window = raw.get("context_length") or raw.get("context_window") or raw.get("max_model_len")
                window = window if isinstance(window, int) and not isinstance(window, bool) and window > 0 else None
                key = _key(model_id)
                known = self._entries.get(key)
                if known is None:
                    known = ModelInfo(model_id, window, source="server")
                    self._entries[key] = known
                elif known.context_window is None and window:
                    known = dataclasses.replace(known, context_window=window)
                    self._entries[key] = known
                if known.retired:  # the server still serves it: not retired for this key
                    known = dataclasses.replace(known, retired=False)
                listed.append(dataclasses.replace(known, id=model_id))
            self._served[base_url] = tuple(m.id for m in listed)
        return listed

    def served_successor(self, model_id: str, base_url: str) -> str | None:
        """The first successor of ``model_id`` that the server at ``base_url`` listed, when
        its last ``/models`` answer did not list ``model_id`` itself (else None)."""
        served = self.served(base_url)
        if served is None or model_id in served:
            return None
        info = self.get(model_id)
        return next((m for m in info.successors if m in served), None) if info else None

    def served(self, base_url: str) -> tuple[str, ...] | None:
        """The ids the server at ``base_url`` listed last time, if it was asked."""
        with self._lock:
            return self._served.get(base_url)

    def kimi_ids(self, ids: Iterable[str]) -> list[str]:
        """The Kimi chat models among ``ids`` that are not known to be retired, newest first."""
        out = []
        for model_id in ids:
            info = self.get(model_id)
            if "kimi" in model_id.lower() and not (info and info.retired):
                out.append(model_id)
        return sorted(out, reverse=True)


_REGISTRY = ModelRegistry()


def registry() -> ModelRegistry:
    """The process-wide registry (``/models`` answers extend it)."""
    return _REGISTRY


# -- what the user sees ------------------------------------------------------------------------


def not_found_hint(model: str, listed: Iterable[str] | None) -> str:
    """The sentence added to a 404 for ``model``: retired or not, and the Kimi models served."""
    info = _REGISTRY.get(model)
    retired = ""
    if info is not None and info.retired:
        retired = f"{model} has been retired."
        successors = [m for m in info.successors if listed is None or m in listed]
        if successors:
            retired = f"{model} has been retired; its successors: {', '.join(successors)}."
    elif info is not None and info.successors and listed is not None:
        offered = [m for m in info.successors if m in listed]
        if offered:
            retired = f"This server no longer lists {model}; its successors here: {', '.join(offered)}."
    if listed is None:
        return retired
    kimi = _REGISTRY.kimi_ids(listed)
    if not kimi:
        return retired
    offer = f"Available Kimi models here: {', '.join(kimi[:6])} (set %config Kimi.model = {kimi[0]!r})."
    return f"{retired} {offer}".strip()


_TOLD_UNKNOWN: set[str] = set()
_TOLD_LOCK = threading.Lock()


def unknown_model_notice(model: str) -> str | None:
    """One sentence, once per model id per process, for a model the registry does not know
    (built in or overridden): what is taken from the server's ``/models`` and what is not."""
    info = _REGISTRY.get(model)
    if info is not None and info.source != "server":
        return None
    with _TOLD_LOCK:
        if _key(model) in _TOLD_UNKNOWN:
            return None
        _TOLD_UNKNOWN.add(_key(model))
    window = (f"the server's /models gives its window ({info.context_window:,} tokens)"
              if info is not None and info.context_window else "its window is unknown")
    return (f"{model} is not in kimi_jupyter's model registry: {window}; no price, effort or structured-output "
            "support is assumed (set Kimi.model_overrides to describe it).")


def thinking_text(info: ModelInfo | None) -> str:
    """``switch`` / ``always`` / ``never``, with the effort levels: the %kimi models column."""
    if info is None:
        return "?"
    text = {"switch": "on/off", "always": "always", "never": "no"}.get(info.thinking, info.thinking)
    return text + (f", effort {'|'.join(info.efforts)}" if info.efforts else "")


def _price_text(price: Prices | None) -> str:
    if price is None:
        return PRICE_UNKNOWN
    from .events import format_cost

    cached = price.input_cached if price.input_cached is not None else price.input
    return " / ".join(format_cost(v, price.currency) for v in (price.input, cached, price.output))


def models_report(
    base_url: str,
    current: str,
    provider: str,
    entries: Iterable[Mapping[str, Any]],
    overrides: ModelOverrides | None = None,
) -> str:
    """The ``%kimi models`` text: id, window, price on ``provider``, modalities, thinking;
    ``*`` = current."""
    rows = [("", "model", "window", "price per 1M (input / cached / output)", "input", "thinking")]
    ids = sorted({str(e["id"]) for e in entries if isinstance(e, Mapping) and e.get("id")})
    if current not in ids:
        ids.append(current)
    for model_id in ids:
        info = _REGISTRY.get(model_id, overrides)
        window = f"{info.context_window:,}" if info and info.context_window else "?"
        price = _price_text(info.price(provider) if info else None)
        modalities = ", ".join(info.modalities) if info else "?"
        mark = "*" if model_id == current else " "
        if info is not None and info.retired:
            modalities += " (retired)"
        rows.append((mark, model_id, window, price, modalities, thinking_text(info)))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = [
        f"{r[0]:<{widths[0]}} {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]:<{widths[3]}}  "
        f"{r[4]:<{widths[4]}}  {r[5]}".rstrip()
        for r in rows
    ]
    head = f"Models at {base_url} on {provider} (* current: {current}):"
    missing = "" if current in {str(e.get("id")) for e in entries if isinstance(e, Mapping)} else (
        f"\n{current} is not in this server's list: requests with it will fail. Pick one above with -m MODEL."
    )
    return "\n".join([head, *lines]) + missing


def fixes_sampling(preset: Any, model: str) -> bool:
    """Whether ``model`` on a server of ``preset`` refuses sampling values other than its own."""
    if not preset.enforces_fixed_sampling:
        return False
    info = registry().get(model)
    return bool(info and info.fixes_sampling)
