"""The model catalog: what AIHubMix serves, where each model lives and what it can do.

The catalog changes monthly upstream, so :func:`resolve_model` lets an unknown
``provider/model_id`` through with a warning instead of blocking a user on a release.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from enum import Enum

log = logging.getLogger(__name__)


class Family(str, Enum):
    """Model families; each has its own request schema and family operator."""

    OPENAI = "openai"
    IMAGEN = "imagen"
    QWEN = "qwen"
    SEEDREAM = "seedream"
    FLUX = "flux"
    IRAG = "irag"
    IDEOGRAM = "ideogram"
    GENERIC = "generic"  # an unknown model passed through


class Endpoint(str, Enum):
    PREDICTIONS = "predictions"  # POST /v1/models/<path>/predictions {"input": {...}}
    GENERATIONS = "generations"  # POST /v1/images/generations {"model", "prompt", ...}


@dataclass(frozen=True)
class ModelSpec:
    """One model as the provider knows it.

    ``max_reference_images`` is 0 for text-only models. ``sizes`` is ``None`` where the
    family accepts any size string the API takes. ``price_per_image_usd`` is ``None``
    when no per-image price is published (token-billed or unknown).
    """

    path: str
    family: Family
    endpoint: Endpoint = Endpoint.PREDICTIONS
    is_async: bool = False
    text_to_image: bool = True
    edit: bool = False
    max_reference_images: int = 0
    max_n: int = 10
    price_per_image_usd: float | None = None
    sizes: tuple[str, ...] | None = None
    known: bool = True
    aliases: tuple[str, ...] = field(default=())

    @property
    def provider(self) -> str | None:
        return self.path.split("/", 1)[0] if "/" in self.path else None

    @property
    def model_id(self) -> str:
        return self.path.split("/", 1)[-1]

    @property
    def name(self) -> str:
        """The short name users write, e.g. ``gpt-image-1.5``."""
        return self.model_id


GENERAL_SIZES = ("1K", "2K", "4K", "auto")
QWEN_SIZES = ("512*1024", "768*512", "768*1024", "1024*576", "576*1024", "1024*1024")

_SPECS: tuple[ModelSpec, ...] = (
    # OpenAI: token-billed (usage in the response), so no per-image price.
    ModelSpec("openai/gpt-image-1.5", Family.OPENAI, edit=True, max_reference_images=16),
    ModelSpec("openai/gpt-image-1", Family.OPENAI, edit=True, max_reference_images=16),
    ModelSpec("openai/gpt-image-1-mini", Family.OPENAI, edit=True, max_reference_images=16),
    ModelSpec("openai/dall-e-3", Family.OPENAI, max_n=1),
    # Imagen: text-to-image only, 1-4 images per call, published per-image prices.
    ModelSpec("google/imagen-4.0-ultra-generate-001", Family.IMAGEN, max_n=4, price_per_image_usd=0.06),
    ModelSpec("google/imagen-4.0-generate-001", Family.IMAGEN, max_n=4, price_per_image_usd=0.04),
    ModelSpec("google/imagen-4.0-fast-generate-001", Family.IMAGEN, max_n=4, price_per_image_usd=0.02),
    ModelSpec(
        "google/imagen-4.0-fast-generate-preview-06-06", Family.IMAGEN, max_n=4, price_per_image_usd=0.02
    ),
    ModelSpec("google/imagen-3.0-generate-002", Family.IMAGEN, max_n=4, price_per_image_usd=0.03),
    # Qwen: its own pixel sizes; the edit model takes up to 3 images and no size.
    ModelSpec("qianfan/qwen-image", Family.QWEN, max_reference_images=1, sizes=QWEN_SIZES),
    ModelSpec(
        "qianfan/qwen-image-edit",
        Family.QWEN,
        text_to_image=False,
        edit=True,
        max_reference_images=3,
        max_n=1,
        sizes=(),
    ),
    # Seedream: n is 1-10 like every model (the API reference); reference images + generated
    # images <= 15 (max_images, checked in the schema); 4.5 has no 1K.
    ModelSpec(
        "doubao/doubao-seedream-4-5",
        Family.SEEDREAM,
        edit=True,
        max_reference_images=14,
        max_n=10,
        sizes=("2K", "4K", "auto"),
    ),
    ModelSpec(
        "doubao/doubao-seedream-4-0",
        Family.SEEDREAM,
        edit=True,
        max_reference_images=14,
        max_n=10,
        sizes=GENERAL_SIZES,
    ),
    # Flux: predictions are async (a task id to poll); Kontext-pro is one-step on /v1/images/generations.
    ModelSpec("bfl/flux-2-flex", Family.FLUX, is_async=True, edit=True, max_reference_images=8, max_n=1),
    ModelSpec("bfl/flux-2-pro", Family.FLUX, is_async=True, edit=True, max_reference_images=8, max_n=1),
    ModelSpec("bfl/flux-kontext-max", Family.FLUX, is_async=True, edit=True, max_reference_images=1, max_n=1),
    ModelSpec(
        "FLUX.1-Kontext-pro",
        Family.FLUX,
        endpoint=Endpoint.GENERATIONS,
        edit=True,
        max_reference_images=1,
        max_n=1,
    ),
    # iRAG: irag-1.0 generates (one optional reference), ernie-irag-edit edits one image.
    ModelSpec("qianfan/irag-1.0", Family.IRAG, max_reference_images=1),
    ModelSpec("qianfan/ernie-irag-edit", Family.IRAG, text_to_image=False, edit=True, max_reference_images=1),
    # Ideogram V3 only; older versions are not served.
    ModelSpec("ideogram/V3", Family.IDEOGRAM, max_reference_images=3, max_n=4, aliases=("ideogram-v3",)),
)

CATALOG: dict[str, ModelSpec] = {spec.path: spec for spec in _SPECS}

_BY_NAME: dict[str, ModelSpec] = {}
for _spec in _SPECS:
    for _key in (_spec.path, _spec.model_id, *_spec.aliases):
        _BY_NAME[_key.lower()] = _spec

# A passed-through model's family is guessed from its provider prefix so the right
# response handling applies; its input is validated only for the general parameters.
_PROVIDER_ASYNC = {"bfl"}
_PATH_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._:-]*$")


class UnknownModelError(ValueError):
    """The model is neither in the catalog nor a ``provider/model_id`` path."""


def catalog_models() -> list[str]:
    return sorted(CATALOG)


def resolve_model(model: str, *, warn: bool = True) -> ModelSpec:
    """Return the spec for ``model`` (short name, alias or ``provider/model_id``).

    An unknown ``provider/model_id`` is passed through as a generic model with a
    warning; anything else unknown raises :class:`UnknownModelError` listing the catalog.
    """
    if not isinstance(model, str) or not model.strip():
        raise UnknownModelError(
            f"Parameter 'model' must be a non-empty string; catalog models: {', '.join(catalog_models())}"
        )
    key = model.strip()
    spec = _BY_NAME.get(key.lower())
    if spec is not None:
        return spec
    if _PATH_RE.match(key):
        if warn:
            log.warning(
                "Model %r is not in the AIHubMix catalog; passing it through with only general "
                "parameter checks.",
                key,
            )
        provider = key.split("/", 1)[0].lower()
        return ModelSpec(
            key,
            Family.GENERIC,
            is_async=provider in _PROVIDER_ASYNC,
            edit=True,
            max_reference_images=16,
            known=False,
        )
    raise UnknownModelError(
        f"Parameter 'model' got unknown model {model!r}. Use a catalog model "
        f"({', '.join(sorted(s.model_id for s in _SPECS))}) or a 'provider/model_id' path to pass "
        "a new model through."
    )


def models_in_family(family: Family) -> list[ModelSpec]:
    return [spec for spec in _SPECS if spec.family is family]
