"""The estimate before the call: what a request will cost, from its input and the price row.

* ``image`` rows: images x the flat price, or the price for the request's options
  (quality x size for DALL-E 3 and gpt-image-1-mini, rendering speed for Ideogram);
* ``token`` rows: images x published output tokens per image (by quality x size, or by image
  size for Gemini) x the image-output token price -- prompt and reference tokens are not known
  before the call and show up in the actual cost;
* ``megapixel`` rows (Flux 2): first + additional output megapixels, plus input megapixels per
  reference image; without ``width``/``height`` the largest output is assumed (an upper bound);
* ``unknown`` rows, or options a row does not list: no estimate (``total_usd`` is ``None``).

Every figure is USD, rounded to 6 decimals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_aihubmix.pricing.table import CURRENCY, PriceRow, PriceTable, megapixels

_COUNT_FIELDS = ("n", "numberOfImages", "sampleCount", "num_images")
# Seedream sequences: the API makes up to max_images, 15 when unset (Volcengine Ark).
SEEDREAM_DEFAULT_MAX_IMAGES = 15


@dataclass(frozen=True)
class Estimate:
    """The cost of one request before it is sent.

    ``total_usd`` is ``None`` when the model has no public price or the request uses an option the
    row does not list; ``reason`` then says which. ``basis`` names the rule used.
    """

    model: str
    images: int
    per_image_usd: float | None
    total_usd: float | None
    basis: str
    detail: str
    row: PriceRow | None = None
    reason: str | None = None
    #: Reference images in the request (Flux 2 bills their megapixels too).
    references: int = 0
    currency: str = CURRENCY

    @property
    def known(self) -> bool:
        return self.total_usd is not None

    def as_dict(self) -> dict[str, Any]:
        return {
            "estimated": self.total_usd,
            "estimated_per_image": self.per_image_usd,
            "images_requested": self.images,
            "basis": self.basis,
            "detail": self.detail,
            "currency": self.currency,
            "price": self.row.reference() if self.row else None,
            **({"reason": self.reason} if self.reason else {}),
        }


def requested_images(
    input_: Mapping[str, Any], row: PriceRow | None = None, default: int | None = None
) -> int:
    """How many images the request buys: the count fields, a Seedream sequence, else the default.

    ``default`` is the model's upstream count when nothing is set (Imagen makes 4); it comes from the
    catalog when it knows one, else from the price row, else 1.
    """
    counts = [input_.get(name) for name in _COUNT_FIELDS]
    if input_.get("sequential_image_generation") == "auto":
        options = input_.get("sequential_image_generation_options")
        counts.append(
            options.get("max_images", SEEDREAM_DEFAULT_MAX_IMAGES)
            if isinstance(options, Mapping)
            else SEEDREAM_DEFAULT_MAX_IMAGES
        )
    given = [c for c in counts if isinstance(c, int) and not isinstance(c, bool)]
    if given:
        return max([*given, 1])
    fallback = default if default is not None else (row.default_images if row else None)
    return max(fallback or 1, 1)


def estimate(
    model: str,
    input_: Mapping[str, Any],
    table: PriceTable | None = None,
    *,
    references: int = 0,
    default_images: int | None = None,
) -> Estimate:
    """The estimate for sending ``input_`` (the wire input) to ``model``; never raises for prices."""
    table = table or PriceTable.build()
    row = table.row_for(model)
    images = requested_images(input_, row, default_images)
    references = references or _reference_count(input_)
    if row is None:
        return _unknown(model, images, None, "no price row for this model (pass 'prices' to add one)")
    if not row.is_priced:
        return _unknown(model, images, row, "no public price: " + row.source)
    per_image, basis, detail = _per_image(row, input_, references)
    if per_image is None:
        return _unknown(model, images, row, detail)
    total = round(per_image * images, 6)
    return Estimate(
        model=row.model,
        images=images,
        per_image_usd=round(per_image, 6),
        total_usd=total,
        basis=basis,
        detail=f"{images} image(s) x {per_image:.6g} USD ({detail})",
        row=row,
        references=references,
    )


def _unknown(model: str, images: int, row: PriceRow | None, reason: str) -> Estimate:
    return Estimate(
        model=row.model if row else model,
        images=images,
        per_image_usd=None,
        total_usd=None,
        basis="unknown",
        detail=f"cost unknown: {reason}",
        row=row,
        reason=reason,
    )


def _per_image(row: PriceRow, input_: Mapping[str, Any], references: int) -> tuple[float | None, str, str]:
    """(USD per image, basis, human detail) -- or (None, 'unknown', why)."""
    if row.output_tokens_per_image is not None and row.token_price("image_output") is not None:
        found_tokens, key = row.output_tokens_per_image.lookup(input_)
        if found_tokens is None:
            return None, "unknown", f"{row.model} publishes no output tokens for options {key}"
        token_usd = row.token_price("image_output") or 0.0
        detail = f"{found_tokens:g} output tokens for {key}"
        return found_tokens * token_usd, "output_tokens_per_image", detail
    if row.per_image_by is not None:
        price, key = row.per_image_by.lookup(input_)
        if price is None:
            return None, "unknown", f"{row.model} has no published price for options {key}"
        return price, "per_image_by_option", f"per image for {key}"
    if row.per_megapixel is not None:
        return _megapixel_cost(row, input_, references)
    if row.per_image is not None:
        return row.per_image, "per_image", "per image"
    return None, "unknown", f"{row.model}: the price row has no rule for an estimate"


def _megapixel_cost(row: PriceRow, input_: Mapping[str, Any], references: int) -> tuple[float, str, str]:
    mp = row.per_megapixel
    assert mp is not None
    width, height = input_.get("width"), input_.get("height")
    if isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0:
        out_mp, how = megapixels(width, height), f"{width}x{height}"
    else:
        out_mp, how = mp.max_output_megapixels, "size unset: largest output"
    refs = references
    cost = mp.output_cost(out_mp) + refs * mp.max_output_megapixels * mp.input
    detail = f"{out_mp} output MP ({how})"
    if refs:
        detail += f" + {refs} reference image(s) at up to {mp.max_output_megapixels} MP"
    return cost, "per_megapixel", detail


def _reference_count(input_: Mapping[str, Any]) -> int:
    image = input_.get("image") or input_.get("input_image")
    extra = sum(1 for key in input_ if key.startswith("input_image_"))
    if isinstance(image, list):
        return len(image) + extra
    return (1 if image else 0) + extra


__all__ = ["SEEDREAM_DEFAULT_MAX_IMAGES", "Estimate", "estimate", "requested_images"]
