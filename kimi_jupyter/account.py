"""The account balance: ``GET /users/me/balance`` on Moonshot's platforms.

The answer is ``{"code": 0, "data": {"available_balance", "voucher_balance",
"cash_balance"}, "scode", "status"}`` (Moonshot's API reference, "查询余额" / "Check Balance"),
in CNY on api.moonshot.cn and USD on api.moonshot.ai; ``available_balance`` at or below 0
blocks inference, and ``cash_balance`` may be negative (owed). ``%kimi balance`` shows it,
and the budget notice adds it when the session nears its budget. Other providers have no
such endpoint: the user is told so and nothing is sent.
"""

from __future__ import annotations

import math
from typing import Any

from .errors import KimiError
from .events import format_cost

__all__ = ["BALANCE_PROVIDERS", "balance_text", "balance_values"]

BALANCE_PROVIDERS = {"moonshot": "CNY", "moonshot-intl": "USD"}
_FIELDS = ("available_balance", "voucher_balance", "cash_balance")


def balance_values(body: Any) -> dict[str, float] | None:
    """The three balances of a ``/users/me/balance`` body, or None when it has none."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        return None
    values: dict[str, float] = {}
    for name in _FIELDS:
        value = data.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            values[name] = float(value)
    return values if "available_balance" in values else None


def balance_text(client: Any, settings: Any) -> tuple[str, bool]:
    """``(line, ok)`` for ``%kimi balance``: the balances, or why there are none."""
    currency = BALANCE_PROVIDERS.get(settings.provider)
    if currency is None:
        return (f"The {settings.provider} provider has no balance endpoint (only Moonshot's platforms, "
                "moonshot and moonshot-intl, have /users/me/balance). Nothing was sent.", False)
    try:
        values = balance_values(client.balance())
    except KimiError as error:
        return f"%kimi balance: {error}", False
    if values is None:
        return "%kimi balance: the server's answer had no balance in it.", False
    return describe(values, currency), True


def describe(values: dict[str, float], currency: str) -> str:
    parts = [f"available {format_cost(values['available_balance'], currency)}"]
    if "voucher_balance" in values:
        parts.append(f"voucher {format_cost(values['voucher_balance'], currency)}")
    if "cash_balance" in values:
        parts.append(f"cash {format_cost(values['cash_balance'], currency)}")
    text = "Balance: " + ", ".join(parts)
    if values["available_balance"] <= 0:
        text += " (nothing available: requests will be refused until you top up)"
    return text
