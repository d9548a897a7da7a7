"""Dialect presets: what differs between the servers that speak "Kimi".

Every server here speaks OpenAI-style chat completions, but each one switches thinking its
own way, enforces (or not) the sampling values a model fixes, names reasoning differently,
reports usage in a different place and may offer Moonshot's Files API. A `Provider`
captures those differences as data so the client stays one piece of code. The response side
is tolerant of every form (see client/chunks.py); the preset mostly shapes the request.

What belongs to a *model* (context window, modalities, prices per provider, fixed
sampling, retirement) lives in :mod:`kimi_jupyter.models`, not here.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

__all__ = ["Prices", "Provider", "PROVIDERS", "get_provider", "infer_provider"]


@dataclass(frozen=True)
class Prices:
    """Prices per 1M tokens. ``input_cached`` applies to cache hits (part of prompt);
    ``cache_write`` to prompt tokens written to the provider's prompt cache (billed at that
    price instead of ``input``; the price depends on the cache TTL, see models.py)."""

    input: float
    output: float
    input_cached: float | None = None
    currency: str = "USD"
    cache_write: float | None = None

    def cost(self, prompt: int, completion: int, cached: int = 0, written: int = 0) -> float:
        cached = min(cached or 0, prompt)
        written = min(written or 0, prompt - cached)
        hit = self.input_cached if self.input_cached is not None else self.input
        write = self.cache_write if self.cache_write is not None else self.input
        return ((prompt - cached - written) * self.input + cached * hit + written * write
                + completion * self.output) / 1_000_000


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
    # Whether the server enforces the sampling values a model fixes (see models.py);
    # self-hosted servers accept any.
    enforces_fixed_sampling: bool = True
    # Patterns matched against the base URL's host to infer this preset.
    hosts: tuple[str, ...] = ()
    # Cloudsway-style URLs carry an endpoint path: base_url contains "{endpoint}".
    needs_endpoint: bool = False
    # Moonshot's Files API (/files: upload, ms://<id> media, file-extract documents).
    files_api: bool = False
    # Whether requests are billed (self-hosted servers are not: no "price unknown" note).
    bills: bool = True
    # Partial mode: a last assistant message with "partial": true is continued (see partial.py).
    partial_mode: bool = False

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


PROVIDERS: dict[str, Provider] = {
    p.name: p
    for p in (
        Provider(
            name="moonshot",
            base_url="https://api.moonshot.cn/v1",
            default_model="kimi-k2.5",
            description="Moonshot AI platform, China (api.moonshot.cn); prices in CNY",
            hosts=("api.moonshot.cn", "*.moonshot.cn"),
            files_api=True,
            partial_mode=True,
        ),
        Provider(
            name="moonshot-intl",
            base_url="https://api.moonshot.ai/v1",
            default_model="kimi-k2.5",
            description="Moonshot AI platform, international (api.moonshot.ai); prices in USD",
            hosts=("api.moonshot.ai", "*.moonshot.ai"),
            files_api=True,
            partial_mode=True,
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
            hosts=("wcode.net", "*.wcode.net"),
        ),
        Provider(
            name="cometapi",
            base_url="https://api.cometapi.com/v1",
            default_model="kimi-k2-thinking",
            description="CometAPI (OpenAI-compatible; thinking chosen by the model id)",
            thinking_style="none",
            stream_usage=True,
            hosts=("*cometapi.com",),
        ),
        Provider(
            name="cloudsway",
            base_url="https://genaiapi.cloudsway.net/v1/ai/{endpoint}",
            default_model="kimi-k2.5",
            description="Cloudsway MaaS (endpoint path inside the URL: set KIMI_ENDPOINT)",
            hosts=("*cloudsway.net", "*cloudsway.com"),
            needs_endpoint=True,
            partial_mode=True,
        ),
        Provider(
            name="openai",
            base_url="http://127.0.0.1:8000/v1",
            default_model="kimi-k2.5",
            description="Any OpenAI-compatible server (vLLM, SGLang, llama.cpp, ...)",
            thinking_style="vllm",
            stream_usage=True,
            enforces_fixed_sampling=False,
            bills=False,
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
