"""Estimated cost per request and per image, usage totals, and the budget guard run before submitting.

Estimates come only from prices the catalog publishes per image. Token-billed models (gpt-image)
report token ``usage`` but AIHubMix publishes no per-token price here, so their cost stays
``None`` -- an invented number would be worse than an honest "unknown" next to the real usage.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from airflow_provider_aihubmix.catalog import ModelSpec, UnknownModelError, resolve_model
from airflow_provider_aihubmix.exceptions import AIHubMixValidationError

log = logging.getLogger(__name__)

# Wire fields that say how many images one request buys, per family spelling.
_COUNT_FIELDS = ("n", "numberOfImages", "sampleCount")


def expected_image_count(input_: Mapping[str, Any]) -> int:
    """How many images the request asks for: the most any count field says, at least 1."""
    counts = [input_.get(name) for name in _COUNT_FIELDS]
    if input_.get("sequential_image_generation") == "auto":
        # Seedream sequences: up to max_images, which the API defaults to 15 when unset.
        options = input_.get("sequential_image_generation_options")
        counts.append(options.get("max_images", 15) if isinstance(options, Mapping) else 15)
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


class CostBasis(str, Enum):
    """Where an estimate comes from; recorded beside it so a reader knows how far to trust it."""

    CATALOG_PRICE_PER_IMAGE = "catalog_price_per_image"
    TOKEN_USAGE_UNPRICED = "token_usage_unpriced"  # usage is known, a price per token is not
    UNPRICED = "unpriced"


@dataclass(frozen=True)
class CostBreakdown:
    """Estimated cost of one task instance's stored images, image by image."""

    basis: CostBasis
    price_per_image_usd: float | None
    #: One entry per stored image: ``{"index", "uri", "estimated_cost_usd"}``.
    images: list[dict[str, Any]] = field(default_factory=list)

    @property
    def total_usd(self) -> float | None:
        if self.price_per_image_usd is None:
            return None
        return round(sum(image["estimated_cost_usd"] for image in self.images), 6)

    def as_dict(self) -> dict[str, Any]:
        """The manifest's ``cost`` field (JSON-serialisable)."""
        return {
            "basis": self.basis.value,
            "price_per_image_usd": self.price_per_image_usd,
            "total_usd": self.total_usd,
            "images": [dict(image) for image in self.images],
        }


def price_per_image_usd(model: str | ModelSpec) -> float | None:
    """The catalog's per-image price for ``model``; ``None`` for unpriced or unresolvable models."""
    if isinstance(model, ModelSpec):
        return model.price_per_image_usd
    try:
        return resolve_model(model, warn=False).price_per_image_usd
    except UnknownModelError:
        # A sensor collecting a task of an unnamed model: nothing to price it with.
        return None


def cost_basis(price: float | None, usage: Mapping[str, Any] | None) -> CostBasis:
    if price is not None:
        return CostBasis.CATALOG_PRICE_PER_IMAGE
    if usage and any(token_counts(usage).values()):
        return CostBasis.TOKEN_USAGE_UNPRICED
    return CostBasis.UNPRICED


def cost_breakdown(
    model: str | ModelSpec, records: Sequence[Mapping[str, Any]], *, usage: Mapping[str, Any] | None = None
) -> CostBreakdown:
    """Per-image and total estimate for the stored ``records`` (XCom records, which carry ``uri``)."""
    price = price_per_image_usd(model)
    images = [
        {
            "index": int(record.get("index", i)),
            "uri": str(record.get("uri", "")),
            "estimated_cost_usd": price,
        }
        for i, record in enumerate(records)
    ]
    return CostBreakdown(basis=cost_basis(price, usage), price_per_image_usd=price, images=images)


def token_counts(usage: Mapping[str, Any] | None) -> dict[str, int]:
    """The integer counters of a usage object, nested ones flattened with dots.

    OpenAI-style usage nests details (``input_tokens_details.image_tokens``); Gemini-style uses
    ``usageMetadata.promptTokenCount``. Both flatten to ``{"dotted.name": count}``.
    """
    counts: dict[str, int] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, bool):
            return
        if isinstance(value, int):
            counts[prefix] = value
        elif isinstance(value, Mapping):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)

    walk("", usage or {})
    return counts


def total_usage(usages: Iterable[Mapping[str, Any] | None]) -> dict[str, int]:
    """Sum the integer counters of several usage objects (e.g. every mapped task's manifest)."""
    total: dict[str, int] = {}
    for usage in usages:
        for name, count in token_counts(usage).items():
            total[name] = total.get(name, 0) + count
    return total


def totals_line(
    *, images: int, estimated_cost_usd: float | None, usage: Mapping[str, Any] | None, reused: bool = False
) -> str:
    """The one line every task logs at its end, e.g. ``AIHubMix totals: 3 image(s), estimated ...``."""
    cost = "unknown (no published price)" if estimated_cost_usd is None else f"{estimated_cost_usd:.4f} USD"
    usage_text = json.dumps(token_counts(usage), sort_keys=True) if usage else "{}"
    line = f"AIHubMix totals: {images} image(s), estimated {cost}, usage {usage_text}"
    if reused:
        line += " (reused from the manifest: nothing was bought in this try)"
    return line
