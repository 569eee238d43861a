"""Estimated cost per request and the budget guard that runs before anything is submitted."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from airflow_provider_aihubmix.catalog import ModelSpec
from airflow_provider_aihubmix.exceptions import AIHubMixValidationError

log = logging.getLogger(__name__)

# Wire fields that say how many images one request buys, per family spelling.
_COUNT_FIELDS = ("n", "numberOfImages", "sampleCount")


def expected_image_count(input_: Mapping[str, Any]) -> int:
    """How many images the request asks for: the most any count field says, at least 1."""
    counts = [input_.get(name) for name in _COUNT_FIELDS]
    options = input_.get("sequential_image_generation_options")
    if input_.get("sequential_image_generation") == "auto" and isinstance(options, Mapping):
        counts.append(options.get("max_images", 15))
    return max([c for c in counts if isinstance(c, int) and not isinstance(c, bool)] + [1])


def estimate_cost_usd(spec: ModelSpec, images: int) -> float | None:
    """``images`` x the catalog's per-image price, or ``None`` where no price is published."""
    if spec.price_per_image_usd is None:
        return None
    return round(spec.price_per_image_usd * images, 6)


def check_budget(
    spec: ModelSpec,
    input_: Mapping[str, Any],
    *,
    max_cost_usd: float | None,
    allow_unknown_cost: bool,
) -> float | None:
    """Refuse before submitting when the estimate exceeds ``max_cost_usd``; return the estimate."""
    images = expected_image_count(input_)
    estimate = estimate_cost_usd(spec, images)
    if max_cost_usd is None:
        return estimate
    if estimate is None:
        if not allow_unknown_cost:
            raise AIHubMixValidationError(
                f"Parameter 'max_cost_usd' = {max_cost_usd} cannot be enforced for model {spec.name}: "
                "it has no known per-image price. Set allow_unknown_cost=True to submit anyway, "
                "or remove max_cost_usd."
            )
        log.warning("Model %s has no known price; submitting under allow_unknown_cost=True", spec.name)
        return None
    if estimate > max_cost_usd:
        raise AIHubMixValidationError(
            f"Parameter 'max_cost_usd' = {max_cost_usd}: estimated cost {estimate:.4f} USD "
            f"({images} image(s) x {spec.price_per_image_usd} USD for model {spec.name}) exceeds it; "
            "nothing was submitted."
        )
    return estimate
