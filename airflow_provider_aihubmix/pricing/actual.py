"""The real figure after the call, per image and per task.

In order of trust:

1. a cost the answer itself carries (``answer_cost_usd``, e.g. a task result that reports what
   was charged);
2. token-billed rows: the response's ``usage`` x the row's token prices -- OpenAI's
   ``input_tokens_details`` / ``output_tokens_details`` and Gemini's ``usageMetadata``
   (``promptTokenCount``, ``candidatesTokensDetails`` by modality, ``thoughtsTokenCount``);
3. per-image rows: the per-image price of the request's options x the images actually stored;
4. megapixel rows: each stored image's own megapixels (width x height), plus reference images at
   the estimate's per-reference bound (their size is not known here).

Without usage a token-billed task falls back to rule 3 with the estimate's per-image figure, and
says so in ``basis``. A task is split evenly over its images. All figures USD, 6 decimals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_aihubmix.pricing.estimate import Estimate
from airflow_provider_aihubmix.pricing.table import CURRENCY, PriceRow, megapixels


@dataclass(frozen=True)
class Actual:
    """What one task instance's stored images cost; ``total_usd`` is ``None`` when unknowable."""

    total_usd: float | None
    basis: str
    #: One per stored image: ``{"index", "uri", "actual"}`` (USD or None).
    images: list[dict[str, Any]] = field(default_factory=list)
    detail: str = ""
    currency: str = CURRENCY


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def openai_token_cost(row: PriceRow, usage: Mapping[str, Any]) -> tuple[float, str] | None:
    """USD for an OpenAI image ``usage`` object, or None if it carries no token counts."""
    if "input_tokens" not in usage and "output_tokens" not in usage:
        return None
    text_in, image_in = row.token_price("text_input"), row.token_price("image_input")
    image_out = row.token_price("image_output") or 0.0
    text_out = row.token_price("text_output") or image_out
    cost, notes = 0.0, []
    details = usage.get("input_tokens_details")
    if isinstance(details, Mapping):
        cost += _int(details.get("text_tokens")) * (text_in or 0.0)
        cost += _int(details.get("image_tokens")) * (image_in or text_in or 0.0)
    else:
        # No breakdown: every input token at the dearer input price, so the figure is never low.
        cost += _int(usage.get("input_tokens")) * max(text_in or 0.0, image_in or 0.0)
        notes.append("input tokens without a breakdown priced at the dearer input rate")
    out_details = usage.get("output_tokens_details")
    if isinstance(out_details, Mapping) and ("image_tokens" in out_details or "text_tokens" in out_details):
        cost += _int(out_details.get("image_tokens")) * image_out
        cost += _int(out_details.get("text_tokens")) * text_out
    else:
        cost += _int(usage.get("output_tokens")) * image_out
    return cost, "; ".join(notes)


def gemini_token_cost(row: PriceRow, usage: Mapping[str, Any]) -> tuple[float, str] | None:
    """USD for a Gemini ``usageMetadata`` object, or None if it is not one."""
    if "promptTokenCount" not in usage and "candidatesTokenCount" not in usage:
        return None
    price_in = row.token_price("input") or row.token_price("text_input") or 0.0
    image_out = row.token_price("image_output") or 0.0
    text_out = row.token_price("text_output") or image_out
    candidates = _int(usage.get("candidatesTokenCount"))
    image_tokens = sum(
        _int(d.get("tokenCount"))
        for d in usage.get("candidatesTokensDetails") or []
        if isinstance(d, Mapping) and str(d.get("modality", "")).upper() == "IMAGE"
    )
    notes = []
    if not usage.get("candidatesTokensDetails"):
        # No modality breakdown: all candidate tokens at the image rate (the dearer one).
        image_tokens = candidates
        notes.append("candidate tokens without a modality breakdown priced as image tokens")
    text_tokens = max(candidates - image_tokens, 0) + _int(usage.get("thoughtsTokenCount"))
    cost = _int(usage.get("promptTokenCount")) * price_in + image_tokens * image_out + text_tokens * text_out
    return cost, "; ".join(notes)


def token_cost(row: PriceRow, usage: Mapping[str, Any] | None) -> tuple[float, str] | None:
    if not usage:
        return None
    inner = usage.get("usageMetadata")
    if isinstance(inner, Mapping):
        usage = inner
    return openai_token_cost(row, usage) or gemini_token_cost(row, usage)


def actual_cost(
    estimate: Estimate | None,
    records: Sequence[Mapping[str, Any]],
    *,
    usage: Mapping[str, Any] | None = None,
    answer_cost_usd: float | None = None,
) -> Actual:
    """The actual cost of the stored ``records`` (XCom records: ``index``, ``uri``, ``width``...)."""
    stored = list(records)
    row = estimate.row if estimate else None
    if answer_cost_usd is not None:
        return _split(answer_cost_usd, stored, "answer", "the cost the API answer reported")
    if row is None or not row.is_priced:
        return Actual(None, "unknown", [_image(r, None) for r in stored], "no public price")
    if row.unit == "token":
        tokens = token_cost(row, usage)
        if tokens is not None:
            cost, note = tokens
            return _split(cost, stored, "usage_tokens", note or "usage tokens x token prices")
    if row.per_megapixel is not None:
        return _megapixel_actual(row, estimate, stored)
    per_image = estimate.per_image_usd if estimate else None
    if per_image is None:
        return Actual(None, "unknown", [_image(r, None) for r in stored], "no per-image figure")
    basis = "estimate_per_image" if row.unit == "token" else "per_image"
    detail = "usage missing: estimated per-image cost" if row.unit == "token" else "per-image price"
    images = [_image(r, round(per_image, 6)) for r in stored]
    return Actual(round(per_image * len(stored), 6), basis, images, detail)


def _megapixel_actual(row: PriceRow, estimate: Estimate | None, stored: list[Mapping[str, Any]]) -> Actual:
    mp = row.per_megapixel
    assert mp is not None
    refs = estimate.references if estimate is not None else 0
    per_refs = refs * mp.max_output_megapixels * mp.input
    images = []
    for record in stored:
        width, height = _int(record.get("width")), _int(record.get("height"))
        out = mp.output_cost(megapixels(width, height)) if width and height else None
        images.append(_image(record, None if out is None else round(out + per_refs / max(len(stored), 1), 6)))
    known = [i["actual"] for i in images]
    total = None if any(v is None for v in known) else round(sum(known), 6)
    detail = "stored megapixels" + (f" + {refs} reference image(s) at the upper bound" if refs else "")
    return Actual(total, "per_megapixel", images, detail)


def _split(total: float, stored: list[Mapping[str, Any]], basis: str, detail: str) -> Actual:
    share = round(total / len(stored), 6) if stored else None
    return Actual(round(total, 6), basis, [_image(r, share) for r in stored], detail)


def _image(record: Mapping[str, Any], cost: float | None) -> dict[str, Any]:
    return {"index": int(record.get("index", 0)), "uri": str(record.get("uri", "")), "actual": cost}


__all__ = ["Actual", "actual_cost", "gemini_token_cost", "openai_token_cost", "token_cost"]
