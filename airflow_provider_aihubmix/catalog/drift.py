"""Where the account's model list and the catalog disagree: what the key can use that no row lists.

Inputs are what AIHubMix answers: ``GET /v1/models`` (the ids this key may call, every kind of model,
OpenAI's list shape) and, where reachable, ``GET /api/v1/models?type=image_generation`` (AIHubMix's
public catalog, whose ``types`` say which ids are image models and whose ``input_modalities`` say
whether a model takes images). Without the public catalog, image models are told by their names.

Note from a public write-up of real calls (2026-06): models served only through predictions (e.g.
``doubao-seedream-5.0-lite``) may be missing from ``/v1/models`` while callable, so "in the catalog,
not listed" is reported, never treated as "not available".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_aihubmix.catalog.models import CATALOG, ModelSpec

IMAGE_TYPE = "image_generation"
# Names of image models, for a model list without types (the public catalog unreachable).
_IMAGE_NAME = re.compile(
    r"image|imagen|seedream|seededit|flux|ideogram|irag|dall-e|wan\d|t2i|kontext|nano-banana|midjourney",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Drift:
    """``lacking``: image models the account lists that no catalog row (or alias) names;
    ``unlisted``: catalog rows the account's list does not show; ``differs``: rows whose image input
    the public catalog marks otherwise than the catalog (``model: catalog says ..., list says ...``)."""

    lacking: tuple[str, ...] = ()
    unlisted: tuple[str, ...] = ()
    differs: tuple[str, ...] = ()
    listed: int = 0
    image_models: int = 0
    typed_by: str = "names"
    notes: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        return {
            "listed": self.listed,
            "image_models": self.image_models,
            "typed_by": self.typed_by,
            "lacking": list(self.lacking),
            "unlisted": list(self.unlisted),
            "differs": list(self.differs),
        }

    def summary(self) -> str:
        if not self.lacking and not self.differs:
            return "the catalog lists every image model this key can use"
        parts = []
        if self.lacking:
            shown = ", ".join(self.lacking[:8]) + (", ..." if len(self.lacking) > 8 else "")
            parts.append(f"{len(self.lacking)} image model(s) the catalog lacks: {shown}")
        if self.differs:
            parts.append(f"{len(self.differs)} marked differently")
        return "; ".join(parts)


def _names(spec: ModelSpec) -> set[str]:
    return {n.lower() for n in (spec.model_id, spec.path, *spec.aliases)}


def compare(listed_ids: Iterable[str], public: Iterable[Mapping[str, Any]] | None = None) -> Drift:
    """Compare the ids of ``GET /v1/models`` (and the public catalog's entries, if read) with the catalog."""
    ids = sorted({str(i).strip() for i in listed_ids if isinstance(i, str) and str(i).strip()})
    known = {name: spec for spec in CATALOG.values() for name in _names(spec)}
    entries = {
        str(e.get("model_id")).lower(): e
        for e in (public or [])
        if isinstance(e, Mapping) and e.get("model_id")
    }
    if public is not None:
        image_ids = [i for i in ids if _is_image(entries.get(i.lower()))] or [
            i for i in ids if _IMAGE_NAME.search(i)
        ]
        typed_by = "the public catalog's types"
    else:
        image_ids = [i for i in ids if _IMAGE_NAME.search(i)]
        typed_by = "names"
    lacking = tuple(i for i in image_ids if i.lower() not in known)
    listed_lower = {i.lower() for i in ids}
    unlisted = tuple(s.path for s in CATALOG.values() if not _names(s) & listed_lower)
    differs = []
    for spec in CATALOG.values():
        entry = next((entries[n] for n in _names(spec) if n in entries), None)
        if entry is None or not isinstance(entry.get("input_modalities"), str):
            continue
        takes_images = "image" in {m.strip() for m in entry["input_modalities"].split(",")}
        if takes_images != (spec.max_reference_images > 0):
            differs.append(
                f"{spec.path}: catalog {'takes' if spec.max_reference_images else 'takes no'} reference "
                f"images, the public list says input_modalities={entry['input_modalities']!r}"
            )
    return Drift(
        lacking=lacking,
        unlisted=unlisted,
        differs=tuple(differs),
        listed=len(ids),
        image_models=len(image_ids),
        typed_by=typed_by,
    )


def _is_image(entry: Mapping[str, Any] | None) -> bool:
    types = entry.get("types") if entry else None
    return isinstance(types, str) and IMAGE_TYPE in {t.strip() for t in types.split(",")}


__all__ = ["IMAGE_TYPE", "Drift", "compare"]
