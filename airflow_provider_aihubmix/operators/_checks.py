"""Checks an operator makes when it is built (DAG parse time), before any run could buy anything.

Each error names the parameter and what is allowed. Values that are only known at run time
(templates, XComArgs, mapped arguments) are left to the run, which validates them again.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from airflow_provider_aihubmix.catalog.models import (
    FAMILY_PROVIDERS,
    Family,
    ModelSpec,
    models_in_family,
    resolve_model,
)
from airflow_provider_aihubmix.exceptions import AIHubMixValidationError
from airflow_provider_aihubmix.pricing.cost import check_cap_value

# The longest wait a task may ask for: far beyond any generation, and well inside what a
# timedelta (the deferral's timeout) and a sleep can hold, so a typo fails at parse time.
MAX_WAIT_SECONDS = 366 * 24 * 3600
_PLAIN = (str, int, float, bool, type(None))


def output_location(output_uri: Any, output_conn_id: str | None) -> tuple[Any, str | None]:
    """``output_uri`` and ``output_conn_id`` as an operator and the sensor keep them: an Airflow
    ``ObjectStoragePath`` becomes its URI, and its connection unless ``output_conn_id`` names one
    (is not ``"aws_default"``); a string, a template or ``None`` stays as given. Anything else is
    refused naming ``output_uri``.
    """
    if output_uri is None or isinstance(output_uri, str):
        return output_uri, output_conn_id
    # Start-up cost: storage is imported at parse time only for an ObjectStoragePath.
    from airflow_provider_aihubmix.storage.uris import output_uri_text

    uri, path_conn_id = output_uri_text(output_uri)
    if path_conn_id and output_conn_id == "aws_default":
        return uri, path_conn_id
    return uri, output_conn_id


def is_literal(value: Any) -> bool:
    """True for values fixed at parse time (not XComArg, not mapped, not a template)."""
    if isinstance(value, str):
        return "{{" not in value and "{%" not in value
    if isinstance(value, _PLAIN):
        return True
    if isinstance(value, (list, tuple)):
        return all(is_literal(v) for v in value)
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and is_literal(v) for k, v in value.items())
    return False


def _is_number(value: Any) -> bool:
    """A real, finite number: not a bool, not a string, not NaN or infinity."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def check_task_settings(
    *,
    poll_interval: float,
    timeout: float,
    not_found_grace: float,
    max_image_bytes: int | None,
    max_cost_usd: float | None = None,
    flags: Mapping[str, Any] | None = None,
) -> None:
    """Refuse timing, size, cost and switch settings no run could honour; the message names the parameter.

    Checked when the operator is built: a NaN or infinite ``timeout`` would only fail once the
    task is deferred -- after an async model's task was bought -- and a NaN ``max_cost_usd``
    compares false with every estimate, so it would never refuse. A string switch
    (``regenerate="False"``) is truthy: it would buy the request again.
    """
    if max_image_bytes is not None and (
        isinstance(max_image_bytes, bool) or not isinstance(max_image_bytes, int) or max_image_bytes <= 0
    ):
        raise AIHubMixValidationError(
            f"Parameter 'max_image_bytes' must be a positive integer, got {max_image_bytes!r}"
        )
    for name, value, zero_allowed in (
        ("poll_interval", poll_interval, False),
        ("timeout", timeout, False),
        ("not_found_grace", not_found_grace, True),
    ):
        low_ok = _is_number(value) and (value >= 0 if zero_allowed else value > 0)
        if not low_ok or value > MAX_WAIT_SECONDS:
            raise AIHubMixValidationError(
                f"Parameter '{name}' must be a number of seconds {'>= 0' if zero_allowed else '> 0'} and "
                f"at most {MAX_WAIT_SECONDS:,} (366 days), got {value!r}"
            )
    if max_cost_usd is not None:
        check_cap_value(max_cost_usd)
    for name, value in (flags or {}).items():
        if not isinstance(value, bool):
            raise AIHubMixValidationError(
                f"Parameter {name!r} must be True or False, got {value!r} ({type(value).__name__})"
            )


__all__ = ["MAX_WAIT_SECONDS", "check_task_settings", "is_literal", "output_location"]


def family_spec(model: str, family: Family | None, operator: str) -> ModelSpec:
    """The spec an operator of ``family`` sends ``model`` as (the generic operator: ``family`` None).

    A family operator takes its catalog models and a model of its own provider the catalog does not
    list yet (``gpt-image-3`` -> ``openai/gpt-image-3``, sent with the family's schema, warned once);
    a catalog model of another family, or a path of another provider, is refused naming the generic
    operator, which passes any ``provider/model_id`` through.
    """
    spec = resolve_model(model, family=family)
    if family is None or spec.family is family:
        return spec
    allowed = ", ".join(s.name for s in models_in_family(family))
    prefixes = " or ".join(f"{p}/" for p in FAMILY_PROVIDERS.get(family, ()))
    new = f"a new {prefixes} model" if prefixes else "a new 'gemini-...-image...' model"
    if spec.known:
        what = f"is a {spec.family.value} model, not a {family.value} one"
    else:
        what = f"is not a {family.value} model ({new.removeprefix('a new ')} the catalog does not list)"
    raise AIHubMixValidationError(
        f"Parameter 'model' = {model!r} {what}; {operator} takes: {allowed}, or {new} the catalog does "
        "not list yet; AIHubMixGenerateImageOperator passes any 'provider/model_id' through",
        param="model",
    )
