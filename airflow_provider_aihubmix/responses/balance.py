"""The account balance as ``GET /dashboard/billing/remain`` answers it, and what is known of its unit.

What public sources establish (none of them AIHubMix's own documentation, which lists the endpoint
without its body):

* public clients that show an AIHubMix balance read ``total_usage`` from the body or from its
  ``data`` object, as the **remaining** balance, and label it in US dollars;
* they read ``total_usage == -0.000002`` as an unlimited key, and an error whose message contains
  ``quota exhausted`` as an exhausted one.

The unit is therefore *reported as USD by public clients*, not established by AIHubMix: the balance
guard that compares it with an estimate is off unless the connection turns it on
(extra ``balance_guard``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: The value public clients read as "no limit on this key".
UNLIMITED_SENTINEL = -0.000002
REMAIN_PATH = "/dashboard/billing/remain"
UNIT_NOTE = (
    "total_usage of GET /dashboard/billing/remain, read as the remaining balance in USD as public "
    "clients read it; AIHubMix does not document the field"
)


@dataclass(frozen=True)
class Balance:
    """The remaining balance: ``remaining_usd`` (``None`` if unlimited or unreadable)."""

    remaining_usd: float | None
    unlimited: bool = False
    note: str = UNIT_NOTE

    def as_dict(self) -> dict[str, Any]:
        return {"remaining_usd": self.remaining_usd, "unlimited": self.unlimited, "source": self.note}

    def describe(self) -> str:
        if self.unlimited:
            return "unlimited (total_usage = -0.000002)"
        if self.remaining_usd is None:
            return "unknown (no total_usage in the answer)"
        return f"{self.remaining_usd:.4f} USD remaining"


def parse_remain(body: Any) -> Balance:
    """The balance in a ``/dashboard/billing/remain`` body (``total_usage`` at the top or in ``data``)."""
    payload = (
        body.get("data") if isinstance(body, Mapping) and isinstance(body.get("data"), Mapping) else body
    )
    value = payload.get("total_usage") if isinstance(payload, Mapping) else None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            value = None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return Balance(remaining_usd=None)
    if abs(value - UNLIMITED_SENTINEL) < 1e-12:
        return Balance(remaining_usd=None, unlimited=True)
    return Balance(remaining_usd=round(float(value), 6))


__all__ = ["REMAIN_PATH", "UNIT_NOTE", "UNLIMITED_SENTINEL", "Balance", "parse_remain"]
