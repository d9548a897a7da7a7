"""What a request may carry for this model: thinking (effort, keep), prompt cache TTL,
``tool_choice``, ``response_format`` and image sources, decided from the model registry.

The rules are the ones Moonshot's docs and its Kimi Vendor Verifier state for the models
after K2.5 (see ``docs/models.md`` for the sources):

* thinking is ``{"type": "enabled"|"disabled", "keep": "all", "effort": "low"|"high"|"max"}``;
  ``effort`` goes inside ``thinking`` (never also as ``reasoning_effort``: one of the two,
  not both), ``keep: "all"`` is sent to the models that need earlier reasoning back (K3);
  a model that always thinks is never sent ``disabled``; a model without effort levels gets
  none, and the user is told so;
* ``prompt_cache_options: {"ttl": "5m"|"1h"}`` on Moonshot's own platforms;
* ``tool_choice`` only in the forms the model accepts (a named function is accepted by none);
* ``response_format`` ``json_schema`` only where the model supports it, else ``json_object``;
* images as base64 or ``ms://`` only on Moonshot's platforms: a public http(s) image URL is
  refused before sending (gateways may fetch URLs themselves, so they are left alone).

Every value not sent is said in a notice, never dropped silently.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..errors import ConfigError
from ..events import Notice
from ..models import ModelInfo, unknown_model_notice
from ..settings import Settings, public_url

__all__ = ["apply_model_rules"]

_CACHE_PRESETS = ("moonshot", "moonshot-intl")


def apply_model_rules(settings: Settings, payload: dict[str, Any], new_messages: Iterable[dict[str, Any]],
                      notices: list[Notice]) -> None:
    """Fill the model-dependent fields of ``payload`` in place; notices for what is not sent."""
    info = settings.model_info
    told = unknown_model_notice(settings.model) if settings.preset.bills else None
    if told:
        notices.append(Notice(told, "info"))
    _thinking(settings, info, payload, notices)
    if settings.prompt_cache_ttl:
        if settings.preset.name in _CACHE_PRESETS:
            payload["prompt_cache_options"] = {"ttl": settings.prompt_cache_ttl}
        else:
            notices.append(Notice(f"prompt_cache_ttl={settings.prompt_cache_ttl!r} was not sent: only Moonshot's "
                                  "platforms take prompt_cache_options.", "warning"))
    if info is None:
        return
    _response_format(settings, info, payload, notices)
    if not info.public_image_urls and settings.preset.name in _CACHE_PRESETS:  # Moonshot's own rule
        _no_public_images(settings.model, new_messages)


def _thinking(settings: Settings, info: ModelInfo | None, payload: dict[str, Any], notices: list[Notice]) -> None:
    preset = settings.preset
    thinking, effort = settings.thinking, settings.effort
    if preset.thinking_style != "moonshot":
        payload.update(preset.thinking_fields(thinking))
        if effort:
            notices.append(Notice(f"effort={effort!r} was not sent: the {preset.name} provider has no known "
                                  "way to set it.", "warning"))
        return
    always = info is not None and info.always_thinks
    if thinking is False and always:
        notices.append(Notice(f"{settings.model} always thinks: thinking cannot be switched off for it.", "warning"))
        thinking = True
    if thinking is None and not (effort or (info is not None and info.keep_reasoning)):
        return
    if thinking is False:
        payload["thinking"] = {"type": "disabled"}
        if effort:
            notices.append(Notice(f"effort={effort!r} was not sent: thinking is off.", "warning"))
        return
    fields: dict[str, Any] = {"type": "enabled"}
    if info is not None and info.keep_reasoning:
        fields["keep"] = "all"
    if effort:
        if info is not None and effort in info.efforts:
            fields["effort"] = effort
        else:
            why = "has no thinking effort levels" if info is None or not info.efforts else (
                f"takes effort {', '.join(info.efforts)}")
            notices.append(Notice(f"effort={effort!r} was not sent: {settings.model} {why}.", "warning"))
    payload["thinking"] = fields


def _response_format(settings: Settings, info: ModelInfo, payload: dict[str, Any], notices: list[Notice]) -> None:
    fmt = payload.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema" and not info.json_schema:
        payload["response_format"] = {"type": "json_object"}
        notices.append(Notice(f"{settings.model} has no json_schema response format: JSON mode was used and the "
                              "answer is checked against the schema here.", "info"))
    choice = payload.get("tool_choice")
    if choice is not None and (not isinstance(choice, str) or choice not in info.tool_choices):
        del payload["tool_choice"]
        shown = choice if isinstance(choice, str) else "a named function"
        notices.append(Notice(f"tool_choice={shown!r} was not sent: {settings.model} takes "
                              f"{', '.join(info.tool_choices)}.", "warning"))


def _no_public_images(model: str, messages: Iterable[dict[str, Any]]) -> None:
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            continue
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "image_url":
                continue
            url = part.get("image_url")
            url = url.get("url") if isinstance(url, dict) else url
            if isinstance(url, str) and url[:8].lower().startswith(("http://", "https://")):
                shown = public_url(url)[:60]  # no user:password or query from the URL
                raise ConfigError(f"{model} does not take public image URLs ({shown}): pass the image itself "
                                  "(a path, PIL image or bytes) so it goes as base64 or ms://. Nothing was sent.")
