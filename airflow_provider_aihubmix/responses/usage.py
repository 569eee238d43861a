"""Token usage of several requests added up into one object of the same shape.

A task that sends several requests (Gemini: one per image) records one usage object in its
manifest, so cost and lineage read the same fields whatever the number of requests.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def merge_usage(first: Mapping[str, Any] | None, second: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Numbers added, nested objects merged, Gemini's ``*TokensDetails`` lists added by modality,
    other values kept from ``first``.

    ``{"candidatesTokenCount": 1290, "candidatesTokensDetails": [{"modality": "IMAGE",
    "tokenCount": 1290}]}`` twice gives 2580 in both places.
    """
    if not first or not second:
        return dict(first or second or {}) or None
    merged = dict(first)
    for key, value in second.items():
        old = merged.get(key)
        if _is_number(value) and _is_number(old):
            merged[key] = old + value
        elif isinstance(value, Mapping) and isinstance(old, Mapping):
            merged[key] = merge_usage(old, value)
        elif isinstance(value, list) and isinstance(old, list) and _is_details(value) and _is_details(old):
            merged[key] = _add_details([*old, *value])
        else:
            merged.setdefault(key, value)
    return merged


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_details(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(item, Mapping) and _is_number(item.get("tokenCount")) for item in value
    )


def _add_details(items: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    by_modality: dict[str, Any] = {}
    for item in items:
        modality = str(item.get("modality", "MODALITY_UNSPECIFIED"))
        by_modality[modality] = by_modality.get(modality, 0) + item["tokenCount"]
    return [{"modality": modality, "tokenCount": count} for modality, count in by_modality.items()]


__all__ = ["merge_usage"]
