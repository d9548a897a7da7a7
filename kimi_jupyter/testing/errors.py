"""API errors as the simulator sends them.

Every refusal the simulator makes (validation, authentication, injected faults, unknown
paths) is an :class:`ApiError`: an HTTP status plus Moonshot's error body
``{"error": {"type": ..., "message": ...}}``. Raising one anywhere while a request is
handled turns into exactly that response, so the modules that decide *whether* to refuse
stay free of HTTP plumbing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ApiError(Exception):
    """An error response: ``status``, Moonshot ``error_type``, ``message`` and extra headers."""

    def __init__(
        self,
        status: int,
        error_type: str,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {error_type}: {message}")
        self.status = status
        self.error_type = error_type
        self.message = message
        self.headers: dict[str, str] = dict(headers or {})

    def body(self, *, with_code: bool = False) -> dict[str, Any]:
        """The JSON error body; ``with_code`` adds ``code`` as OpenRouter and vLLM do."""
        error: dict[str, Any] = {"type": self.error_type, "message": self.message}
        if with_code:
            error["code"] = self.status
        return {"error": error}


def invalid_request(message: str) -> ApiError:
    """A 400 ``invalid_request_error``, the answer to most malformed requests."""
    return ApiError(400, "invalid_request_error", message)


def not_found(message: str) -> ApiError:
    """A 404 ``resource_not_found_error`` (unknown model or path)."""
    return ApiError(404, "resource_not_found_error", message)
