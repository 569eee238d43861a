"""``on_possibly_billed``: what a task does with a request that may have been billed.

The operator parameter of that name, else the AIHubMix connection's extra of that name, else
``"fail"``. Import-light (DAG parsing checks the parameter); :mod:`~.engine.resend` and
:func:`~.engine.decide.decide` act on it.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from airflow_provider_aihubmix.exceptions import AIHubMixValidationError

PARAM = "on_possibly_billed"


class PossiblyBilledPolicy(str, Enum):
    """``on_possibly_billed``: what a task does when its request may have been billed."""

    FAIL = "fail"
    RESEND_ONCE = "resend_once"


ALLOWED = tuple(p.value for p in PossiblyBilledPolicy)


def parse_policy(value: Any, *, where: str = f"parameter {PARAM!r}") -> PossiblyBilledPolicy | None:
    """``value`` as a policy; None stays None (unset: the connection's, else ``"fail"``).

    :raises AIHubMixValidationError: ``value`` is not one of :data:`ALLOWED` (names ``where``).
    """
    if value is None or isinstance(value, PossiblyBilledPolicy):
        return value
    if isinstance(value, str) and value.strip().lower() in ALLOWED:
        return PossiblyBilledPolicy(value.strip().lower())
    raise AIHubMixValidationError(
        f"{where} must be one of {', '.join(repr(a) for a in ALLOWED)}, got {value!r}", param=PARAM
    )


def connection_policy(extra: Any) -> PossiblyBilledPolicy:
    """The connection's default (its extra ``on_possibly_billed``), else ``"fail"``.

    :raises AIHubMixValidationError: the extra holds a value not in :data:`ALLOWED`.
    """
    value = extra.get(PARAM) if isinstance(extra, dict) else None
    return parse_policy(value, where=f"Connection extra {PARAM!r}") or PossiblyBilledPolicy.FAIL


__all__ = ["ALLOWED", "PARAM", "PossiblyBilledPolicy", "connection_policy", "parse_policy"]
