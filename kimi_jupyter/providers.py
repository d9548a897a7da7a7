"""Dialect presets: what differs between the servers that speak "Kimi".

Every server here speaks OpenAI-style chat completions, but each one switches thinking its
own way, rejects different sampling parameters, names reasoning differently, reports usage
in a different place and charges in its own currency. A `Provider` captures those
differences as data so the client stays one piece of code. The response side is tolerant
of every form (see client/chunks.py); the preset mostly shapes the request.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

__all__ = ["Prices", "Provider", "PROVIDERS", "get_provider", "infer_provider"]


@dataclass(frozen=True)
class Prices:
    """Prices per 1M tokens. ``input_cached`` applies to cache hits (part of prompt)."""

    input: float
    output: float
    input_cached: float | None = None
    currency: str = "USD"

    def cost(self, prompt: int, completion: int, cached: int = 0) -> float:
        cached = min(cached or 0, prompt)
        hit = self.input_cached if self.input_cached is not None else self.input
        return ((prompt - cached) * self.input + cached * hit + completion * self.output) / 1_000_000


# Sampling parameters kimi-k2.5 fixes itself; sending any other value is a 400.
FIXED_SAMPLING = ("temperature", "top_p", "n", "presence_penalty", "frequency_penalty")


@dataclass(frozen=True)
class Provider:
    name: str
    base_url: str
    default_model: str
    description: str
    # How thinking is switched: "moonshot" (thinking: {type}), "openrouter"
    # (reasoning: {enabled}), "vllm" (chat_template_kwargs), or "none" (model decides).
    thinking_style: str = "moonshot"
    # Ask for stream_options.include_usage (servers that only report usage when asked).
    stream_usage: bool = False
    # Glob patterns of models whose sampling values are fixed by the server.
    fixed_sampling_models: tuple[str, ...] = ("*kimi-k2.5*", "*kimi-k2-5*")
    prices: dict[str, Prices] = field(default_factory=dict)
    # Patterns matched against the base URL's host to infer this preset.
    hosts: tuple[str, ...] = ()
    context_window: int = 262_144
    # Cloudsway-style URLs carry an endpoint path: base_url contains "{endpoint}".
    needs_endpoint: bool = False
    # Moonshot's Files API (/files: upload, ms://<id> media, file-extract documents).
    files_api: bool = False

    def price_for(self, model: str) -> Prices | None:
        if model in self.prices:
            return self.prices[model]
        for pattern, price in self.prices.items():
            if fnmatch.fnmatch(model, pattern):
                return price
        return None

    def fixes_sampling(self, model: str) -> bool:
        return any(fnmatch.fnmatch(model.lower(), p) for p in self.fixed_sampling_models)

    def thinking_fields(self, thinking: bool | None) -> dict[str, Any]:
        """Request fields that switch thinking on or off (None: server default)."""
        if thinking is None:
            return {}
        if self.thinking_style == "moonshot":
            return {"thinking": {"type": "enabled" if thinking else "disabled"}}
        if self.thinking_style == "openrouter":
            return {"reasoning": {"enabled": bool(thinking)}}
        if self.thinking_style == "vllm":
            return {"chat_template_kwargs": {"thinking": bool(thinking)}}
        return {}


_K25_CN = Prices(input=4.00, output=21.00, input_cached=0.70, currency="CNY")
_K25_INTL = Prices(input=0.60, output=3.00, input_cached=0.10, currency="USD")

PROVIDERS: dict[str, Provider] = {
    p.name: p
    for p in (
        Provider(
            name="moonshot",
            base_url="https://api.moonshot.cn/v1",
            default_model="kimi-k2.5",
            description="Moonshot AI platform, China (api.moonshot.cn); prices in CNY",
            prices={"kimi-k2.5": _K25_CN, "kimi-k2.5-*": _K25_CN},
            hosts=("api.moonshot.cn", "*.moonshot.cn"),
            files_api=True,
        ),
        Provider(
            name="moonshot-intl",
            base_url="https://api.moonshot.ai/v1",
            default_model="kimi-k2.5",
            description="Moonshot AI platform, international (api.moonshot.ai); prices in USD",
            prices={"kimi-k2.5": _K25_INTL, "kimi-k2.5-*": _K25_INTL},
            hosts=("api.moonshot.ai", "*.moonshot.ai"),
            files_api=True,
        ),
        Provider(
            name="openrouter",
            base_url="https://openrouter.ai/api/v1",
            default_model="moonshotai/kimi-k2.5",
            description="OpenRouter-style gateways (reasoning in `reasoning`/`reasoning_details`)",
            thinking_style="openrouter",
            stream_usage=True,
            hosts=("openrouter.ai", "*.openrouter.ai"),
        ),
        Provider(
            name="wcode",
            base_url="https://wcode.net/api/gpt/v1",
            default_model="moonshotai/kimi-k2.5",
            description="wcode gateway (OpenRouter-style); CNY 0.0075/1k input, 0.035/1k output",
            thinking_style="openrouter",
            stream_usage=True,
            prices={"moonshotai/kimi-k2.5": Prices(input=7.5, output=35.0, currency="CNY")},
            hosts=("wcode.net", "*.wcode.net"),
        ),
        Provider(
            name="cometapi",
            base_url="https://api.cometapi.com/v1",
            default_model="kimi-k2-thinking",
            description="CometAPI (OpenAI-compatible; thinking chosen by the model id)",
            thinking_style="none",
            stream_usage=True,
            prices={
                "kimi-k2-thinking": Prices(input=1.10, output=4.40, currency="USD"),
                "kimi-k2-thinking-turbo": Prices(input=2.20, output=15.95, currency="USD"),
            },
            hosts=("*cometapi.com",),
        ),
        Provider(
            name="cloudsway",
            base_url="https://genaiapi.cloudsway.net/v1/ai/{endpoint}",
            default_model="kimi-k2.5",
            description="Cloudsway MaaS (endpoint path inside the URL: set KIMI_ENDPOINT)",
            hosts=("*cloudsway.net", "*cloudsway.com"),
            needs_endpoint=True,
        ),
        Provider(
            name="openai",
            base_url="http://127.0.0.1:8000/v1",
            default_model="kimi-k2.5",
            description="Any OpenAI-compatible server (vLLM, SGLang, llama.cpp, ...)",
            thinking_style="vllm",
            stream_usage=True,
            fixed_sampling_models=(),
        ),
    )
}


def get_provider(name: str) -> Provider:
    key = name.strip().lower()
    aliases = {"moonshot-cn": "moonshot", "moonshot-ai": "moonshot-intl", "vllm": "openai",
               "sglang": "openai", "llamacpp": "openai", "llama.cpp": "openai", "comet": "cometapi"}
    key = aliases.get(key, key)
    if key not in PROVIDERS:
        from .errors import ConfigError

        raise ConfigError(
            f"Unknown provider {name!r}. Choose one of: {', '.join(PROVIDERS)} "
            "(set KIMI_PROVIDER or %config Kimi.provider)."
        )
    return PROVIDERS[key]


def infer_provider(base_url: str | None) -> Provider:
    """The preset whose host matches ``base_url``; `openai` for anything unknown."""
    if not base_url:
        return PROVIDERS["moonshot"]
    host = (urlparse(base_url).hostname or "").lower()
    for provider in PROVIDERS.values():
        if any(fnmatch.fnmatch(host, pattern) for pattern in provider.hosts):
            return provider
    return PROVIDERS["openai"]
