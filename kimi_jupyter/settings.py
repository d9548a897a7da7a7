"""Effective settings, and where each one came from.

Resolution order, highest first: explicit arguments (``ask(model=...)``, magic options) >
``%config Kimi.<name>`` > environment (``MOONSHOT_API_KEY``/``KIMI_API_KEY``,
``KIMI_BASE_URL``, ``KIMI_MODEL``, ``KIMI_PROVIDER``, ``KIMI_ENDPOINT``, ``KIMI_REPLAY``) > a ``.env`` file in
the working directory > the provider preset's defaults > built-in defaults.

``.env`` is read with python-dotenv (quotes, ``export``, inline ``# comments`` as in a
shell), without ``${VAR}`` expansion, and only when it is a regular file of at most 1 MiB.
A ``.env`` that sets ``KIMI_BASE_URL`` while the key comes from the environment (or any
other split of key and URL between sources) makes `Settings.key_destination_notice` return
a one-time warning naming the host the key will go to.

The key is held in a `Secret`, whose repr and str never show it; `%kimi config` shows the
``sources`` so a user can see why a value is what it is.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .errors import ConfigError, MissingKeyError
from .models import CACHE_TTLS, EFFORTS, ModelInfo, ModelOverrides, registry
from .providers import PROVIDERS, Prices, Provider, get_provider, infer_provider
from .secrets import validate_key

__all__ = ["Secret", "Settings", "resolve_settings", "read_dotenv", "public_url", "ENV_VARS", "SETTING_HELP"]

# One line per setting: shown by `%config Kimi`, `%kimi config` and the README.
SETTING_HELP: dict[str, str] = {
    "api_key": "API key (prefer MOONSHOT_API_KEY in the environment or .env; never saved in notebooks)",
    "base_url": "OpenAI-compatible base URL, e.g. https://api.moonshot.cn/v1",
    "model": "model id, e.g. kimi-k2.5 (see %kimi models)",
    "provider": "dialect preset: moonshot, moonshot-intl, openrouter, wcode, cometapi, cloudsway, openai",
    "endpoint": "endpoint path for providers that put it in the URL (cloudsway)",
    "thinking": "ask for the reasoning trace (True), switch it off (False), or server default (None)",
    "max_tokens": "limit on generated tokens, reasoning included (None: server default)",
    "effort": "thinking effort: low, high or max (models with effort levels, e.g. kimi-k3; None: server default)",
    "prompt_cache_ttl": "prompt cache TTL sent as prompt_cache_options: '5m' or '1h' (None: not sent, "
                        "the server's default of 5m applies; Moonshot only)",
    "system": "system prompt sent before the conversation",
    "stream": "stream the answer (True) or wait for the whole reply (False)",
    "timeout_connect": "seconds to wait for a connection",
    "timeout_read": "seconds to wait for the next piece of a streamed answer",
    "max_retries": "retries for 5xx, connection faults and rate limits",
    "retry_backoff": "first backoff in seconds (doubles each retry, with jitter)",
    "retry_max_wait": "longest wait between retries; a longer rate-limit wait fails at once",
    "frame_budget": "token budget of one DataFrame summary",
    "image_max_size": "images are downscaled to fit this (width, height) box",
    "history_budget": "token budget of the conversation sent with each request",
    "display": "auto, widget, markdown, text or none",
    "auto_approve": "run model-proposed code without asking (agent mode)",
    "auto_apply_edits": "apply the agent's cell edits and inserts in JupyterLab without Accept (each still one undo step)",
    "max_steps": "most tool-call steps in one agent turn",
    "max_turn_cost": "most one turn may cost, in the provider's currency",
    "agent_timeout": "wall-clock seconds one agent turn may take",
    "cache": "replay identical requests from the on-disk cache instead of sending (and billing) them again",
    "cache_dir": "folder of the response cache (relative to the working directory)",
    "replay": "with %kimi record FILE: off (send and record every turn), auto (replay recorded turns, record new "
              "ones) or only (replay only: nothing is sent, no key is needed; an unrecorded turn fails)",
    "keep_going": "a %%kimi cell whose turn fails ends as ok (prints the message) instead of failing, so Run All goes on",
    "budget": "most the whole session may cost, in the provider's currency; requests past it are refused",
    "preflight_tokens": "estimate and show the cost before sending prompts larger than this many tokens",
    "max_line_bytes": "longest single line of a streamed answer, in bytes (a longer line ends the answer)",
    "max_response_bytes": "largest answer body, streamed or not, counted after decompression, in bytes",
    "rows_concurrency": "most rows kimi_jupyter.map() keeps in flight at once (it backs off on 429s)",
    "upload_threshold": "images and videos larger than this many bytes are uploaded once through the Files API "
                        "(moonshot, moonshot-intl) and sent as ms://<id>",
    "prices": "price override: {'input': .., 'output': .., 'input_cached': .., 'currency': 'USD'} per 1M tokens",
    "model_overrides": "model registry overrides: {'model-id': {'context_window': .., 'prices': {provider: {..}}, "
                       "'modalities': [..], 'thinking': 'switch|always|never', 'retired': ..}} (see %kimi models)",
}


class Secret:
    """A string that does not print itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def get(self) -> str:
        return self._value

    def masked(self) -> str:
        v = self._value
        return f"{v[:3]}…{v[-4:]}" if len(v) >= 16 else "***"

    def __repr__(self) -> str:
        return f"Secret({self.masked()!r})"

    __str__ = masked

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> Any:  # never pickled in clear by accident
        raise TypeError("Secret values cannot be pickled")


# Environment variables for each setting, in priority order.
ENV_VARS: dict[str, tuple[str, ...]] = {
    "api_key": ("MOONSHOT_API_KEY", "KIMI_API_KEY"),
    "base_url": ("KIMI_BASE_URL",),
    "model": ("KIMI_MODEL",),
    "provider": ("KIMI_PROVIDER",),
    "endpoint": ("KIMI_ENDPOINT",),
    "replay": ("KIMI_REPLAY",),
}


@dataclass(frozen=True)
class Settings:
    api_key: Secret | None = None
    base_url: str = ""
    model: str = ""
    provider: str = "moonshot"
    endpoint: str | None = None
    thinking: bool | None = True
    max_tokens: int | None = None
    effort: str | None = None
    prompt_cache_ttl: str | None = None
    system: str | None = None
    stream: bool = True
    timeout_connect: float = 10.0
    timeout_read: float = 300.0
    max_retries: int = 3
    retry_backoff: float = 1.0
    retry_max_wait: float = 60.0
    frame_budget: int = 1500
    image_max_size: tuple[int, int] = (4096, 2160)
    history_budget: int = 100_000
    display: str = "auto"
    auto_approve: bool = False
    auto_apply_edits: bool = False
    max_steps: int = 10
    max_turn_cost: float | None = None
    agent_timeout: float = 300.0
    prices: Prices | None = None
    model_overrides: ModelOverrides | None = None
    cache: bool = False
    cache_dir: str = ".kimi-cache"
    replay: str = "off"  # off | auto | only (kimi_jupyter.recording)
    budget: float | None = None
    preflight_tokens: int = 20_000
    keep_going: bool = False
    max_line_bytes: int = 16 * 1024 * 1024
    max_response_bytes: int = 64 * 1024 * 1024
    rows_concurrency: int = 8
    upload_threshold: int = 10 * 1024 * 1024
    sources: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def preset(self) -> Provider:
        return get_provider(self.provider)

    @property
    def chat_url(self) -> str:
        return self.api_base.rstrip("/") + "/chat/completions"

    @property
    def api_base(self) -> str:
        base = self.base_url.rstrip("/")
        if base.endswith("/chat/completions"):
            base = base[: -len("/chat/completions")]
        if "{endpoint}" in base:
            if not self.endpoint:
                raise ConfigError(
                    f"The {self.provider} base URL needs your endpoint path: set KIMI_ENDPOINT "
                    "(or %config Kimi.endpoint = '...'), or put the full URL in KIMI_BASE_URL."
                )
            base = base.replace("{endpoint}", self.endpoint.strip("/"))
        return base

    def price(self) -> Prices | None:
        """The price of this model on this provider: ``prices``, else the model registry."""
        return self.prices or registry().price(self.model, self.provider, self.model_overrides,
                                               self.prompt_cache_ttl)

    def price_note(self) -> str | None:
        """What usage lines say instead of a cost: set when a billing provider's price is unknown."""
        if self.price() is None and self.preset.bills:
            from .models import PRICE_UNKNOWN

            return PRICE_UNKNOWN
        return None

    @property
    def model_info(self) -> ModelInfo | None:
        """The registry's entry for this model (user overrides applied); None when unknown."""
        return registry().get(self.model, self.model_overrides)

    @property
    def context_window(self) -> int | None:
        """This model's context window in tokens, when the registry knows it."""
        info = self.model_info
        return info.context_window if info else None

    def require_key(self) -> str:
        if self.api_key:
            problem = validate_key(self.api_key.get())
            if problem:
                raise ConfigError(_key_problem(problem, self.sources))
        if not self.api_key:
            raise MissingKeyError(
                "No API key is set. Put it in the environment before starting Jupyter "
                "(export MOONSHOT_API_KEY=...), in a .env file next to the notebook "
                "(MOONSHOT_API_KEY=...), or for this session with %config Kimi.api_key = '...'. "
                "Keys come from platform.moonshot.cn (or .ai) or from your gateway."
            )
        return self.api_key.get()

    def key_destination_notice(self) -> str | None:
        """A warning when the key and the base URL come from different sources.

        A key from the environment and a URL from a ``.env`` file (or a notebook cell) means
        whoever wrote that file chooses where the key goes. Returns None when both come from
        the same place, when the URL is a provider's built-in default, or when its host is
        one of the known providers' hosts.
        """
        if not self.api_key:
            return None
        key_source = _layer(self.sources.get("api_key", "argument"))
        url_source = self.sources.get("base_url", "default")
        if _layer(url_source) in ("provider default", "default") or key_source == _layer(url_source):
            return None
        try:
            host = urlsplit(self.base_url).hostname or ""
        except ValueError:
            host = ""
        if not host or host in _KNOWN_HOSTS:
            return None
        return (f"Your API key (from {self.sources.get('api_key', 'an argument')}) will be sent to {host}, "
                f"a base URL set by {url_source}. If you did not set that, stop and check it.")

    def describe(self) -> list[tuple[str, str, str]]:
        """(name, shown value, source) rows for `%kimi config`; the key is masked."""
        rows = []
        for f in dataclasses.fields(self):
            if f.name == "sources":
                continue
            value = getattr(self, f.name)
            if f.name == "api_key":
                shown = value.masked() if value else "(not set)"
            elif f.name == "base_url":
                shown = public_url(value)
            else:
                shown = repr(value) if not isinstance(value, str) else (value or "''")
            rows.append((f.name, shown, self.sources.get(f.name, "default")))
        return rows


def public_url(url: str) -> str:
    """``url`` without user:password or query (gateway URLs can carry credentials)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ""
    netloc = parts.netloc
    if parts.username or parts.password:
        netloc = (parts.hostname or "") + (f":{port}" if port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


DOTENV_MAX_BYTES = 1024 * 1024


def read_dotenv(path: Path) -> dict[str, str]:
    """The values of a ``.env`` file, read with python-dotenv.

    Quotes, ``export`` and inline comments follow the shell (``KEY='abc'  # note`` is
    ``abc``); ``${VAR}`` is not expanded. Only a regular file of at most 1 MiB is opened (a
    FIFO or a device named ``.env`` would block); anything unreadable gives no values.
    """
    import io
    import stat

    from dotenv import dotenv_values

    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size > DOTENV_MAX_BYTES:
            return {}
        with open(path, "rb") as f:
            raw = f.read(DOTENV_MAX_BYTES + 1)
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    try:
        values = dotenv_values(stream=io.StringIO(text), interpolate=False)
    except Exception:  # a malformed file gives what python-dotenv could not parse: nothing
        return {}
    return {k: v for k, v in values.items() if isinstance(k, str) and isinstance(v, str)}


def _layer(source: str) -> str:
    """The layer of a source string: ``.env (KIMI_BASE_URL)`` -> ``.env``."""
    return source.split(" (", 1)[0]


def _key_problem(problem: str, sources: Mapping[str, str]) -> str:
    where = f" (from {sources['api_key']})" if "api_key" in sources else ""
    return (f"{problem}{where}. Copy the key again from your provider's console and set it "
            "without quotes or spaces. Nothing was sent; the key is not shown.")


_KNOWN_HOSTS = frozenset(h for h in (urlsplit(p.base_url).hostname for p in PROVIDERS.values())
                         if h and h not in ("localhost", "127.0.0.1"))

_COERCE = {f.name: f.type for f in dataclasses.fields(Settings)}


def _coerce(name: str, value: Any) -> Any:
    if name == "api_key" and isinstance(value, str):
        return Secret(value.strip())
    if name == "image_max_size" and isinstance(value, (int, float)):
        return (int(value), int(value))
    if name == "image_max_size" and isinstance(value, (list, tuple)):
        return (int(value[0]), int(value[1]))
    if name == "replay" and isinstance(value, str):
        return value.strip().lower()
    if name == "prices" and isinstance(value, Mapping):
        return Prices(**dict(value))
    if name == "model_overrides" and isinstance(value, Mapping):
        return ModelOverrides(value)
    if name == "prompt_cache_ttl" and isinstance(value, str) and value.strip().lower() in ("off", "none", ""):
        return None
    if name in ("effort", "prompt_cache_ttl") and isinstance(value, str):
        return value.strip().lower()
    return value


def resolve_settings(
    explicit: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> Settings:
    """Compute the effective settings from every layer, recording each value's source."""
    environ = os.environ if environ is None else environ
    dotenv = read_dotenv(Path(cwd or os.getcwd()) / ".env")
    names = {f.name for f in dataclasses.fields(Settings)} - {"sources"}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}

    for layer_name, layer in ((".env", dotenv), ("environment", environ)):
        for name, env_names in ENV_VARS.items():
            for env_name in env_names:
                if layer.get(env_name):
                    values[name] = layer[env_name]
                    sources[name] = f"{layer_name} ({env_name})"
                    break
    for layer_name, layer in (("%config", config or {}), ("argument", explicit or {})):
        for name, value in layer.items():
            if value is None:
                continue
            if name not in names:
                raise ConfigError(
                    f"Unknown setting {name!r}. Known settings: {', '.join(sorted(names))}."
                )
            values[name] = value
            sources[name] = layer_name

    provider_name = values.get("provider")
    if provider_name:
        preset = get_provider(str(provider_name))
        values["provider"] = preset.name
    else:
        preset = infer_provider(values.get("base_url"))
        values["provider"] = preset.name
        sources["provider"] = "inferred from base URL" if values.get("base_url") else "default"
    if not values.get("base_url"):
        values["base_url"] = preset.base_url
        sources["base_url"] = f"provider default ({preset.name})"
    if not values.get("model"):
        values["model"] = preset.default_model
        sources["model"] = f"provider default ({preset.name})"

    coerced = {}
    for name, value in values.items():
        try:
            coerced[name] = _coerce(name, value)
        except (TypeError, ValueError, IndexError):
            raise ConfigError(_invalid(name, value, sources, "it has the wrong form")) from None
    _check(coerced, sources)
    settings = Settings(sources=sources, **coerced)
    if sources.get("model", "").startswith("provider default"):
        # The default stays while the server lists it; once its /models answer no longer
        # does, the first successor it lists is used (and %kimi config says why).
        try:
            successor = registry().served_successor(settings.model, settings.api_base)
        except ConfigError:
            successor = None
        if successor:
            sources["model"] = f"provider default ({preset.name}): {settings.model} is not served there"
            settings = dataclasses.replace(settings, model=successor)
    return settings


_AT_LEAST_ZERO = {"max_retries", "retry_backoff", "retry_max_wait", "max_turn_cost", "budget"}
_DISPLAYS = ("auto", "widget", "markdown", "text", "none")
_REPLAYS = ("off", "auto", "only")  # kimi_jupyter.recording.MODES


def _invalid(name: str, value: Any, sources: Mapping[str, str], what: str) -> str:
    shown = "***" if name == "api_key" else repr(value)[:80]
    where = f" (from {sources[name]})" if name in sources else ""
    return f"Invalid setting {name}={shown}{where}: {what}. Nothing was sent."


def _check(values: Mapping[str, Any], sources: Mapping[str, str]) -> None:
    """Refuse values that would crash later or go out as an invalid request."""
    import math

    for f in dataclasses.fields(Settings):
        value = values.get(f.name)
        if value is None:
            continue
        kind, floor = str(f.type), 0 if f.name in _AT_LEAST_ZERO else 1
        problem = None
        if kind.startswith("bool") and not isinstance(value, bool):
            problem = "use True or False"
        elif kind.startswith("int") and (isinstance(value, bool) or not isinstance(value, int)
                                         or not floor <= value < 2**31):
            problem = f"use a whole number from {floor} up"
        elif kind.startswith("float") and (isinstance(value, bool) or not isinstance(value, (int, float))
                                           or not math.isfinite(value) or value < 0
                                           or (value == 0 and f.name not in _AT_LEAST_ZERO)):
            problem = "use a positive number" if f.name not in _AT_LEAST_ZERO else "use a number from 0 up"
        elif (kind.startswith("str") and not isinstance(value, str)) or (
                f.name == "api_key" and not isinstance(value, Secret)):
            problem = "use text"
        elif f.name == "api_key" and validate_key(value.get()):
            raise ConfigError(_key_problem(validate_key(value.get()) or "", sources))
        elif f.name == "base_url" and value and not value.lower().startswith(("http://", "https://")):
            problem = "use an http:// or https:// URL such as https://api.moonshot.cn/v1"
        elif f.name == "effort" and value not in EFFORTS:
            problem = f"use one of {', '.join(EFFORTS)} (or None for the server's default)"
        elif f.name == "prompt_cache_ttl" and value not in CACHE_TTLS:
            problem = f"use one of {', '.join(CACHE_TTLS)} (or None to send no prompt_cache_options)"
        elif f.name == "display" and value not in _DISPLAYS:
            problem = f"use one of {', '.join(_DISPLAYS)}"
        elif f.name == "replay" and value not in _REPLAYS:
            problem = f"use one of {', '.join(_REPLAYS)}"
        elif f.name == "image_max_size" and not (len(value) == 2 and all(isinstance(v, int) and v >= 1 for v in value)):
            problem = "use two positive whole numbers (width, height)"
        if problem:
            raise ConfigError(_invalid(f.name, value, sources, problem))
