"""Typed errors whose message tells the user what to do.

Each HTTP failure of the Kimi API (see docs/kimi-protocol.md, "Errors") maps to one class here.
The message is one short paragraph meant for a notebook user; renderers show ``str(err)``
and nothing else, so never put a traceback-worthy internal detail, let alone the API key, in
it. ``retryable`` and ``retry_after`` drive the client's retry loop.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = [
    "KimiError",
    "ConfigError",
    "MissingKeyError",
    "AuthenticationError",
    "PermissionDeniedError",
    "ModelNotFoundError",
    "ContextTooLongError",
    "ContentFilterError",
    "BadRequestError",
    "RateLimitError",
    "OverloadedError",
    "QuotaExceededError",
    "ServerError",
    "KimiConnectionError",
    "KimiTimeoutError",
    "StreamCutError",
    "MalformedResponseError",
    "RedirectError",
    "ResponseTooLargeError",
    "RemoteFileNotFoundError",
    "FileLimitError",
    "FilesUnsupportedError",
    "RequestTooLargeError",
    "error_from_response",
    "redact",
]


class KimiError(Exception):
    """Base of every error this package raises on purpose."""

    retryable = False

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after

    def __str__(self) -> str:
        return self.message


class ConfigError(KimiError):
    """The settings are incomplete or contradictory."""


class MissingKeyError(ConfigError):
    pass


class UntrustedEndpointError(ConfigError):
    """The key and the base URL come from different places and the user has not confirmed
    the endpoint yet (``%kimi trust-endpoint``): nothing was sent."""


class AuthenticationError(KimiError):
    pass


class PermissionDeniedError(KimiError):
    pass


class ModelNotFoundError(KimiError):
    pass


class ContextTooLongError(KimiError):
    pass


class ContentFilterError(KimiError):
    pass


class BadRequestError(KimiError):
    pass


class RateLimitError(KimiError):
    retryable = True


class OverloadedError(KimiError):
    retryable = True


class QuotaExceededError(KimiError):
    pass


class ServerError(KimiError):
    retryable = True


class KimiConnectionError(KimiError):
    retryable = True


class KimiTimeoutError(KimiError):
    retryable = True


class StreamCutError(KimiError):
    """The stream ended before ``[DONE]``; the partial answer is kept."""

    retryable = False


class MalformedResponseError(KimiError):
    pass


class CellFailed(KimiError):
    """Raised by ``%%kimi`` so that a failed turn fails its cell (Run All, nbclient and
    papermill stop there). IPython shows ``_render_traceback_`` instead of a traceback, so
    the user sees the one-line message and no frames of ours."""

    def _render_traceback_(self) -> list[str]:
        return [str(self)]


class RemoteFileNotFoundError(KimiError):
    """A Files API id the server does not know (deleted, never uploaded, other account)."""


class FileLimitError(BadRequestError):
    """The Files API refused an upload over a limit (file size, file count, storage)."""


class FilesUnsupportedError(ConfigError):
    """The provider has no Files API (its preset says so)."""


class RedirectError(KimiError):
    """The server answered with a redirect: never followed with the key, never retried."""


class ResponseTooLargeError(KimiError):
    """A reply passed one of the wire caps (line, body, decompressed size)."""


class RequestTooLargeError(BadRequestError):
    """The request would be larger than the API accepts (the 100 MB body limit); nothing was sent."""


#: The most of an error body that is read (and shown, cut further) from the server.
ERROR_BODY_BYTES = 64 * 1024
_SHOWN = 300


def redact(text: str, secret: str | tuple[str, ...] | None) -> str:
    """Remove ``secret`` (one key or several) and anything that looks like a bearer token
    from ``text``."""
    from .secrets import redact_text

    text = redact_text(text, secret)
    if secret and isinstance(secret, str) and len(secret) >= 4 and secret in text:
        text = text.replace(secret, "***")
    return re.sub(r"(?i)(bearer\s+)[^\s\"']+", r"\1***", text)


_WAIT = re.compile(r"after\s+(\d+(?:\.\d+)?)\s*s", re.I)


def _parse_error_body(body: str) -> tuple[str, str]:
    try:
        data: Any = json.loads(body)
    except (ValueError, TypeError):
        return "", body.strip()
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        return str(err.get("type") or err.get("code") or ""), str(err.get("message") or "")
    if isinstance(err, str):
        return "", err
    if isinstance(data, dict) and "message" in data:
        return str(data.get("type") or ""), str(data["message"])
    return "", body.strip()


def _retry_after(headers: Any, message: str) -> float | None:
    value = headers.get("retry-after") if headers is not None else None
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
    match = _WAIT.search(message)
    return float(match.group(1)) if match else None


def error_from_response(
    status: int,
    body: str,
    headers: Any = None,
    *,
    base_url: str = "",
    model: str = "",
    secret: str | tuple[str, ...] | None = None,
) -> KimiError:
    """Map an HTTP error response to the typed error that says what to do.

    The body is redacted whole before anything is cut from it, so a key can never be split
    by the cut and partly survive; the message shown is then at most 300 characters.
    """
    body = redact(body[:ERROR_BODY_BYTES], secret)
    kind, server_msg = _parse_error_body(body)
    server_msg = redact(server_msg, secret)  # a JSON-escaped key is whole again once decoded
    if len(server_msg) > _SHOWN:
        server_msg = server_msg[:_SHOWN] + "…"
    kind = kind[:80]
    low = f"{kind} {server_msg}".lower()
    said = f" (server said: {server_msg})" if server_msg else ""

    if status == 401 or "authentication" in kind:
        platform = ""
        if "moonshot.ai" in base_url:
            platform = (" Keys from platform.moonshot.cn do not work on api.moonshot.ai: "
                        "if yours is a .cn key, set KIMI_BASE_URL=https://api.moonshot.cn/v1.")
        elif "moonshot.cn" in base_url:
            platform = (" Keys from platform.moonshot.ai do not work on api.moonshot.cn: "
                        "if yours is an international key, set KIMI_BASE_URL=https://api.moonshot.ai/v1.")
        return AuthenticationError(
            f"The API key was rejected (401).{platform} Check MOONSHOT_API_KEY or "
            f"%config Kimi.api_key.{said}",
            status=status,
        )
    if status == 403 or "permission" in kind:
        return PermissionDeniedError(
            f"This key is not allowed to use {model or 'this model'} (403).{said}", status=status
        )
    if status == 404 or "not_found" in kind:
        return ModelNotFoundError(
            f"Model {model!r} was not found at {base_url or 'the server'} (404). "
            f"Run `%kimi models` to list the models this server offers, then use -m MODEL.{said}",
            status=status,
        )
    if status == 429:
        if "quota" in low or "balance" in low or "exceeded_current" in low:
            return QuotaExceededError(
                "Your balance or quota is exhausted (429); retrying will not help. "
                f"Top up or raise the quota on your provider's console.{said}",
                status=status,
            )
        if "overload" in low:
            return OverloadedError(f"The server is overloaded (429); try again shortly.{said}",
                                   status=status, retry_after=_retry_after(headers, server_msg))
        wait = _retry_after(headers, server_msg)
        return RateLimitError(
            f"Rate limit reached (429){f'; wait {wait:g} s' if wait else ''}.{said}",
            status=status,
            retry_after=wait,
        )
    if status in (400, 413, 422):
        if "content_filter" in kind or "high risk" in low or "content filter" in low:
            return ContentFilterError(
                "The provider refused this request as high risk (content filter). Rephrase the "
                f"prompt or remove the attachment that triggered it.{said}",
                status=status,
            )
        if any(w in low for w in ("context", "token limit", "too long", "maximum length", "exceeded model")):
            return ContextTooLongError(
                "The conversation is too long for the model's context window. Start fresh with "
                "`%%kimi --new` or `%kimi reset`, attach fewer cells/images, or lower "
                f"%config Kimi.frame_budget.{said}",
                status=status,
            )
        if status == 413:
            return BadRequestError(
                f"The request body is too large (413). Send smaller images or a shorter video.{said}",
                status=status,
            )
        return BadRequestError(f"The server rejected the request (400).{said}", status=status)
    if status >= 500:
        return ServerError(f"The server had an error ({status}).{said}", status=status,
                           retry_after=_retry_after(headers, server_msg))
    return KimiError(f"Unexpected HTTP {status}.{said}", status=status)
