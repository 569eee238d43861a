"""Cost as the engine records it: the estimate before a purchase, the actual after it, the guard.

The figures come from :mod:`airflow_provider_aihubmix.pricing` (prices from the shipped data file
plus the user's overrides). This module turns them into the manifest's ``cost`` object and the
task's log line, and runs the per-task ``max_cost_usd`` guard before anything is submitted.

The manifest's ``cost`` (and, camelCased, the lineage facet) is::

    {"currency": "USD", "estimated": 0.16, "actual": 0.16,
     "basis": {"estimated": "per_image", "actual": "per_image"},
     "detail": {"estimated": "4 image(s) x 0.04 USD (per image)", "actual": "per-image price"},
     "images_requested": 4,
     "price": {"unit": "image", "source": "...", "read": "2026-11-29", "origin": "package",
               "currency": "USD"},
     "images": [{"index": 0, "uri": "s3://...", "estimated": 0.04, "actual": 0.04}, ...]}

``estimated``/``actual`` are ``None`` where no public price is known -- never invented.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from airflow_provider_aihubmix.catalog.models import ModelSpec
from airflow_provider_aihubmix.exceptions import AIHubMixBudgetExceededError, AIHubMixValidationError
from airflow_provider_aihubmix.pricing.actual import Actual, actual_cost
from airflow_provider_aihubmix.pricing.estimate import Estimate, estimate, requested_images
from airflow_provider_aihubmix.pricing.table import CURRENCY, PriceTable

log = logging.getLogger(__name__)

# Catalog attribute names for the upstream image count when a request leaves it unset.
_DEFAULT_COUNT_ATTRS = ("default_n", "default_count", "default_image_count", "default_images")


def expected_image_count(input_: Mapping[str, Any]) -> int:
    """How many images the request asks for explicitly: the most any count field says, at least 1."""
    return requested_images(input_, default=1)


def catalog_default_images(spec: ModelSpec) -> int | None:
    """The model's upstream image count when none is sent, if the catalog records one."""
    for name in _DEFAULT_COUNT_ATTRS:
        value = getattr(spec, name, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def estimate_request(
    spec: ModelSpec, input_: Mapping[str, Any], table: PriceTable | None = None, *, references: int = 0
) -> Estimate:
    """The estimate for one request of ``spec`` with the wire ``input_`` (see :mod:`.pricing.estimate`)."""
    return estimate(
        spec.path, input_, table, references=references, default_images=catalog_default_images(spec)
    )


def check_budget(
    spec: ModelSpec,
    input_: Mapping[str, Any],
    *,
    max_cost_usd: float | None,
    allow_unknown_cost: bool,
    table: PriceTable | None = None,
    references: int = 0,
) -> Estimate:
    """Refuse before submitting when the estimate exceeds ``max_cost_usd``; return the estimate.

    :raises AIHubMixBudgetExceededError: the estimate is above ``max_cost_usd`` (not retried).
    :raises AIHubMixValidationError: ``max_cost_usd`` is set, the cost is unknown and
        ``allow_unknown_cost`` is false.
    """
    found = estimate_request(spec, input_, table, references=references)
    if max_cost_usd is None:
        return found
    check_cap(found, max_cost_usd=max_cost_usd, allow_unknown_cost=allow_unknown_cost)
    if found.total_usd is not None and found.total_usd > max_cost_usd:
        raise AIHubMixBudgetExceededError(
            f"Parameter 'max_cost_usd' = {max_cost_usd}: estimated cost {found.total_usd:.4f} USD "
            f"({found.detail} for model {spec.name}) exceeds it; nothing was submitted.",
            param="max_cost_usd",
        )
    return found


def check_cap_value(max_cost_usd: Any, what: str = "max_cost_usd") -> None:
    """Refuse a cap that is not a number of USD >= 0 (the operator checks it at parse time too)."""
    # NaN compares false with every estimate: a cap of NaN would never refuse.
    if (
        isinstance(max_cost_usd, bool)
        or not isinstance(max_cost_usd, (int, float))
        or max_cost_usd != max_cost_usd
        or max_cost_usd < 0
    ):
        raise AIHubMixValidationError(
            f"Parameter '{what}' must be a number of USD >= 0, got {max_cost_usd!r}", param=what
        )


def check_cap(
    found: Estimate, *, max_cost_usd: float, allow_unknown_cost: bool, what: str = "max_cost_usd"
) -> None:
    """Refuse an unknown cost under a cap unless ``allow_unknown_cost`` (then warn)."""
    check_cap_value(max_cost_usd, what)
    if found.known:
        return
    if not allow_unknown_cost:
        raise AIHubMixValidationError(
            f"Parameter '{what}' = {max_cost_usd} cannot be enforced for model {found.model}: "
            f"{found.reason}. Set allow_unknown_cost=True to submit anyway, add the model's price "
            "with 'prices' (operator parameter or connection extra), or remove the cap.",
            param=what,
        )
    log.warning("Model %s has no known price; submitting under allow_unknown_cost=True", found.model)


def cost_record(
    found: Estimate | None,
    records: Sequence[Mapping[str, Any]] = (),
    actual: Actual | None = None,
) -> dict[str, Any]:
    """The manifest's ``cost`` object (JSON-serialisable): estimate, actual, price row, per image."""
    per_image_estimate = found.per_image_usd if found else None
    by_index = {image["index"]: image["actual"] for image in (actual.images if actual else [])}
    return {
        "currency": CURRENCY,
        "estimated": found.total_usd if found else None,
        "actual": actual.total_usd if actual else None,
        "basis": {
            "estimated": found.basis if found else "unknown",
            "actual": actual.basis if actual else None,
        },
        "detail": {"estimated": found.detail if found else None, "actual": actual.detail if actual else None},
        "images_requested": found.images if found else None,
        "price": found.row.reference() if found and found.row else None,
        "images": [
            {
                "index": int(record.get("index", i)),
                "uri": str(record.get("uri", "")),
                "estimated": per_image_estimate,
                "actual": by_index.get(int(record.get("index", i))),
            }
            for i, record in enumerate(records)
        ],
    }


def settle(
    found: Estimate | None,
    records: Sequence[Mapping[str, Any]],
    *,
    usage: Mapping[str, Any] | None,
    answer_cost_usd: float | None = None,
) -> dict[str, Any]:
    """The manifest ``cost`` once the images are stored: the estimate plus the actual figure."""
    actual = actual_cost(found, records, usage=usage, answer_cost_usd=answer_cost_usd)
    return cost_record(found, records, actual)


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


def _usd(value: float | None) -> str:
    return "unknown (no public price)" if value is None else f"{value:.4f} USD"


def totals_line(
    *,
    images: int,
    estimated_cost_usd: float | None,
    usage: Mapping[str, Any] | None,
    reused: bool = False,
    actual_cost_usd: float | None = None,
) -> str:
    """The one line every task logs at its end, e.g. ``AIHubMix totals: 3 image(s), estimated ...``."""
    usage_text = json.dumps(token_counts(usage), sort_keys=True) if usage else "{}"
    line = f"AIHubMix totals: {images} image(s), estimated {_usd(estimated_cost_usd)}"
    if actual_cost_usd is not None:
        line += f", actual {_usd(actual_cost_usd)}"
    line += f", usage {usage_text}"
    if reused:
        line += " (reused from the manifest: nothing was bought in this try)"
    return line


__all__ = [
    "catalog_default_images",
    "check_budget",
    "check_cap",
    "check_cap_value",
    "cost_record",
    "estimate_request",
    "expected_image_count",
    "settle",
    "token_counts",
    "total_usage",
    "totals_line",
]
