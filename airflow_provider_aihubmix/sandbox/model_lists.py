"""The models the sandbox serves, and its two model lists.

* ``GET /v1/models`` -- OpenAI's list shape, as AIHubMix answers it for a key:
  ``{"object": "list", "data": [{"id", "object": "model", "created", "owned_by"}]}``, ids bare
  (``gpt-image-2``), chat and embedding models among the image ones.
* ``GET /api/v1/models`` -- AIHubMix's public, machine-readable catalog (read by public clients with
  ``?type=llm`` / ``?types=...``): ``{"success", "message", "data": [{"model_id", "desc", "types",
  "features", "input_modalities", "pricing"}]}``; ``types`` is a comma-separated string such as
  ``image_generation``.

Served: every catalog model, the configured ``extra_models`` (models public sources show that
the catalog has no row for), and a few non-image models so that a reader must filter by type.
A model of a catalog family's provider that has no row is answered in that family's shape (the
catalog is read only to know a model's family, as the sandbox's rules allow).
"""

from __future__ import annotations

from typing import Any

from airflow_provider_aihubmix.catalog.models import (
    CATALOG,
    FAMILY_PROVIDERS,
    ModelSpec,
    resolve_model,
)

CREATED = 1_735_689_600  # a fixed timestamp: answers stay byte-stable
# Non-image models a real key also lists: the model-list readers must tell them apart.
OTHER_MODELS = (("gpt-4o-mini", "llm", "text,image"), ("text-embedding-3-small", "embedding", "text"))
IMAGE_TYPE = "image_generation"


def served_spec(path: str) -> ModelSpec:
    """The spec a predictions path is answered with: its row, its provider's family, or pass-through."""
    provider = path.split("/", 1)[0].lower()
    for family, providers in FAMILY_PROVIDERS.items():
        if provider in providers:
            return resolve_model(path, warn=False, family=family)
    return resolve_model(path, warn=False)


def _image_models(extra: list[str]) -> list[tuple[str, str, bool]]:
    """(bare id, owner, takes image input) of every image model served, catalog first."""
    rows = [(s.model_id, s.provider or "aihubmix", s.max_reference_images > 0) for s in CATALOG.values()]
    seen = {row[0] for row in rows}
    for name in extra:
        bare = name.split("/", 1)[-1]
        if bare not in seen:
            seen.add(bare)
            rows.append((bare, name.split("/", 1)[0] if "/" in name else "aihubmix", True))
    return rows


def models_body(extra: list[str]) -> dict[str, Any]:
    data = [
        {"id": model_id, "object": "model", "created": CREATED, "owned_by": owner}
        for model_id, owner, _ in _image_models(extra)
    ]
    data += [
        {"id": model_id, "object": "model", "created": CREATED, "owned_by": "aihubmix"}
        for model_id, _, _ in OTHER_MODELS
    ]
    return {"object": "list", "data": data}


def public_models_body(extra: list[str], wanted: str | None) -> dict[str, Any]:
    data: list[dict[str, Any]] = [
        {
            "model_id": model_id,
            "desc": f"{owner} image model",
            "types": IMAGE_TYPE,
            "features": "",
            "input_modalities": "text,image" if takes_images else "text",
            "pricing": {},
        }
        for model_id, owner, takes_images in _image_models(extra)
    ]
    data += [
        {"model_id": m, "desc": "", "types": t, "features": "", "input_modalities": i, "pricing": {}}
        for m, t, i in OTHER_MODELS
    ]
    if wanted:
        types = {t.strip() for t in wanted.split(",") if t.strip()}
        data = [item for item in data if types & {t.strip() for t in item["types"].split(",")}]
    return {"success": True, "message": "", "data": data}


__all__ = ["CREATED", "IMAGE_TYPE", "OTHER_MODELS", "models_body", "public_models_body", "served_spec"]
