"""Models the catalog does not list yet: a new model of a known provider, or any path passed through.

The catalog changes monthly upstream. A family operator given a model of its own provider that
no row lists (``openai/gpt-image-3``) sends it with that family's schema and wire names and the
family's widest limits; the generic operator passes any ``provider/model_id`` through with only
the general checks. Either warns once per process that the model's limits are not known.
"""

from __future__ import annotations

import logging
import re

from airflow_provider_aihubmix.catalog.limits import ModelLimits
from airflow_provider_aihubmix.catalog.spec import Family, ModelSpec

log = logging.getLogger("airflow_provider_aihubmix.catalog.models")

PROVIDER_ASYNC = frozenset({"bfl"})
PATH_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._:-]*$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
_PATH_RE = PATH_RE
# Each models path's provider (the first path segment) and the family whose schema it speaks.
# A new model of one of these providers goes through that family's operator; the first provider
# listed is the one a bare name is sent under (``gpt-image-3`` -> ``openai/gpt-image-3``).
FAMILY_PROVIDERS: dict[Family, tuple[str, ...]] = {
    Family.OPENAI: ("openai",),
    Family.IMAGEN: ("google",),
    Family.QWEN: ("qianfan",),
    Family.SEEDREAM: ("doubao",),
    Family.FLUX: ("bfl",),
    Family.IRAG: ("qianfan",),
    Family.IDEOGRAM: ("ideogram",),
}
_warned: set[tuple[str, str]] = set()


def warn_once(kind: str, model: str, message: str, *args: object) -> None:
    """Log ``message`` once per process for ``model``: parse time, run time and the hook all resolve
    the model, and a user needs to read "limits unknown" once, not at every look-up."""
    if (kind, model) in _warned:
        return
    _warned.add((kind, model))
    log.warning(message, *args)


def _widest_limits(rows: list[ModelSpec]) -> ModelLimits:
    """The union of a family's per-model rules, for a new model of that family whose limits no
    source gives yet: any value some row takes is let through, and the API judges the rest."""

    def union(values: list[tuple[str, ...] | None]) -> tuple[str, ...] | None:
        known = [v for v in values if v is not None]
        return tuple(dict.fromkeys(x for v in known for x in v)) if known else None

    bounds = [r.limits.pixels for r in rows if r.limits.pixels is not None]
    widest = max(bounds, key=lambda b: (b.max_pixels or 0, -(b.min_pixels)), default=None)
    tolerances = [r.limits.safety_tolerance for r in rows if r.limits.safety_tolerance is not None]
    return ModelLimits(
        pixels=widest,
        qualities=union([r.limits.qualities for r in rows]),
        response_formats=union([r.limits.response_formats for r in rows]),
        rendering_speeds=union([r.limits.rendering_speeds for r in rows]),
        output_formats=union([r.limits.output_formats for r in rows]),
        safety_tolerance=max(tolerances) if tolerances else None,
        options=frozenset(o for r in rows for o in r.limits.options),
        sources=(("*", "none: a model the catalog does not list yet; the family's widest rules apply"),),
    )


def family_model(key: str, family: Family, rows: list[ModelSpec], *, warn: bool) -> ModelSpec | None:
    """A model of ``family``'s provider that the catalog does not list yet, or None if ``key`` names
    another provider (or is not a model name at all)."""
    providers = FAMILY_PROVIDERS.get(family)
    if not providers:
        return None
    if "/" in key:
        if not _PATH_RE.match(key) or key.split("/", 1)[0].lower() not in providers:
            return None
        path = key
    elif _NAME_RE.match(key):
        path = f"{providers[0]}/{key}"
    else:
        return None
    if warn:
        warn_once(
            "family",
            path,
            "Model %r is not in the AIHubMix catalog: sending it as a %s model with that family's "
            "parameters and wire names; its limits are not known (the family's widest apply) and its "
            "cost is unknown unless 'prices' names it.",
            path,
            family.value,
        )
    return ModelSpec(
        path,
        family,
        is_async=path.split("/", 1)[0].lower() in PROVIDER_ASYNC,
        text_to_image=True,
        edit=any(r.edit for r in rows),
        max_reference_images=max((r.max_reference_images for r in rows), default=16),
        max_n=max((r.max_n for r in rows), default=10),
        known=False,
        limits=_widest_limits(rows),
    )
