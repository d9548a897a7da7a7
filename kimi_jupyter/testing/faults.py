"""Injected failures: error statuses and broken streams.

A :class:`Fault` describes one way a request goes wrong. Status faults answer with an
error response in Moonshot's format (429 with ``Retry-After``, 5xx, content filter...);
transport faults damage a reply that is otherwise sent normally: ``cut`` drops the
connection mid-body, ``malformed`` slips a line of broken JSON into the stream, ``stall``
stops sending for a while (woken early when the simulator stops, so it never hangs a
test). Faults are queued with ``KimiSimulator.fault(...)`` or named in a script with
``{"fault": {"kind": "rate_limit", "wait": 2}}`` (see :meth:`Fault.from_dict`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ApiError

STATUS = "status"
CUT = "cut"
MALFORMED = "malformed"
STALL = "stall"


@dataclass(frozen=True)
class Fault:
    """One injected failure; build it with the class-method constructors."""

    kind: str
    code: int = 0
    error_type: str = ""
    message: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    after: int = 0
    seconds: float = 0.0

    @property
    def is_status(self) -> bool:
        """True when the fault replaces the reply with an error response."""
        return self.kind == STATUS

    def error(self) -> ApiError:
        """The error response of a status fault."""
        return ApiError(self.code, self.error_type, self.message, self.headers)

    # -- status faults ---------------------------------------------------------------
    @classmethod
    def status(cls, code: int, type: str, message: str, headers: Mapping[str, str] | None = None) -> Fault:
        """Any error response: HTTP ``code``, error ``type``, ``message`` and extra headers."""
        return cls(STATUS, code, type, message, dict(headers or {}))

    @classmethod
    def rate_limit(cls, wait: int = 1) -> Fault:
        """429 ``rate_limit_reached_error`` naming the wait, with ``Retry-After: wait``."""
        message = (
            "Your account org-simulator request reached organization max RPM: 3, "
            f"please try again after {wait} seconds"
        )
        return cls.status(429, "rate_limit_reached_error", message, {"Retry-After": str(wait)})

    @classmethod
    def overloaded(cls) -> Fault:
        """429 ``engine_overloaded_error``: retry with backoff."""
        message = "The engine is currently overloaded, please try again later"
        return cls.status(429, "engine_overloaded_error", message)

    @classmethod
    def quota(cls) -> Fault:
        """429 ``exceeded_current_quota_error``: the balance is spent; do not retry."""
        message = (
            "Your account org-simulator is suspended or has insufficient balance: "
            "you exceeded your current quota, please check your plan and billing details"
        )
        return cls.status(429, "exceeded_current_quota_error", message)

    @classmethod
    def unauthorized(cls) -> Fault:
        """401 ``invalid_authentication_error``, as for a wrong key."""
        return cls.status(401, "invalid_authentication_error", "Invalid Authentication")

    @classmethod
    def server_error(cls, status: int = 500) -> Fault:
        """A 5xx ``server_error`` (500, 502, 503 or 504)."""
        if status not in (500, 502, 503, 504):
            raise ValueError(f"server_error status must be 500, 502, 503 or 504, not {status}")
        messages = {
            500: "Internal server error, please try again later",
            502: "Bad gateway: the upstream inference service did not answer",
            503: "Service temporarily unavailable, please try again later",
            504: "Gateway timeout: the request took longer than 5 minutes",
        }
        return cls.status(status, "server_error", messages[status])

    @classmethod
    def content_filter(cls) -> Fault:
        """400 ``content_filter``: the request was refused as high risk."""
        message = "The request was rejected because it was considered high risk"
        return cls.status(400, "content_filter", message)

    @classmethod
    def context_too_long(cls, tokens: int = 300000, limit: int = 262144) -> Fault:
        """400 ``invalid_request_error`` saying the context (token) limit was exceeded."""
        return cls.status(400, "invalid_request_error", context_limit_message(tokens, limit))

    @classmethod
    def model_not_found(cls, model: str = "kimi-k2.5") -> Fault:
        """404 ``resource_not_found_error`` naming the model."""
        return cls.status(404, "resource_not_found_error", model_not_found_message(model))

    # -- transport faults ------------------------------------------------------------
    @classmethod
    def cut(cls, after: int = 1) -> Fault:
        """Send ``after`` chunks, then drop the connection without ``[DONE]``."""
        return cls(CUT, after=after)

    @classmethod
    def malformed(cls, after: int = 1) -> Fault:
        """After ``after`` chunks send ``data: {not json``, then carry on normally."""
        return cls(MALFORMED, after=after)

    @classmethod
    def stall(cls, seconds: float, after: int = 0) -> Fault:
        """After ``after`` chunks send nothing for ``seconds`` (cut short by ``stop()``)."""
        return cls(STALL, after=after, seconds=float(seconds))

    # -- scripts ---------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fault:
        """Build a fault from a script entry such as ``{"kind": "rate_limit", "wait": 2}``.

        ``kind`` names a constructor (``rate_limit``, ``overloaded``, ``quota``,
        ``unauthorized``, ``server_error``, ``content_filter``, ``context_too_long``,
        ``model_not_found``, ``cut``, ``malformed``, ``stall``, ``status``); the other keys
        are its keyword arguments.
        """
        options = dict(data)
        kind = options.pop("kind", None)
        constructors: dict[str, Callable[..., Fault]] = {
            "rate_limit": cls.rate_limit,
            "overloaded": cls.overloaded,
            "quota": cls.quota,
            "unauthorized": cls.unauthorized,
            "server_error": cls.server_error,
            "content_filter": cls.content_filter,
            "context_too_long": cls.context_too_long,
            "model_not_found": cls.model_not_found,
            "cut": cls.cut,
            "malformed": cls.malformed,
            "stall": cls.stall,
            "status": cls.status,
        }
        if kind not in constructors:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(constructors)}")
        try:
            return constructors[kind](**options)
        except TypeError as exc:
            raise ValueError(f"bad options for fault {kind!r}: {exc}") from None


def context_limit_message(tokens: int, limit: int) -> str:
    """Moonshot's wording for a prompt over the model's context window."""
    return (
        f"Invalid request: Your request exceeded model token limit: {limit} "
        f"(the context length limit); the prompt has {tokens} tokens"
    )


def model_not_found_message(model: str) -> str:
    """Moonshot's wording for an unknown (or retired) model id."""
    return f"Not found the model {model} or Permission denied"
