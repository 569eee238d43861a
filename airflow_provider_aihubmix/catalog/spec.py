"""What a catalog row is: a model's family, endpoint and capabilities (:class:`ModelSpec`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from airflow_provider_aihubmix.catalog.limits import ModelLimits


class Family(str, Enum):
    """Model families; each has its own request schema and family operator."""

    OPENAI = "openai"
    IMAGEN = "imagen"
    QWEN = "qwen"
    SEEDREAM = "seedream"
    FLUX = "flux"
    IRAG = "irag"
    IDEOGRAM = "ideogram"
    GEMINI = "gemini"  # Google's "Nano Banana" models on the Gemini generateContent route
    GENERIC = "generic"  # an unknown model passed through


class Endpoint(str, Enum):
    PREDICTIONS = "predictions"  # POST /v1/models/<path>/predictions {"input": {...}}
    GENERATIONS = "generations"  # POST /v1/images/generations {"model", "prompt", ...}
    # POST /gemini/v1beta/models/<model>:generateContent; one image per request, key in x-goog-api-key
    GENERATE_CONTENT = "generate_content"


@dataclass(frozen=True)
class ModelSpec:
    """One model as the provider knows it.

    ``max_reference_images`` is 0 for text-only models. ``sizes`` is ``None`` where the
    family accepts any size string the API takes (for Gemini: the ``imageSize`` values).
    Prices are data, not code: ``pricing/prices.json`` (see :mod:`airflow_provider_aihubmix.pricing`).
    ``limits`` holds what differs from the rest of the family (:class:`ModelLimits`).
    """

    path: str
    family: Family
    endpoint: Endpoint = Endpoint.PREDICTIONS
    is_async: bool = False
    text_to_image: bool = True
    edit: bool = False
    max_reference_images: int = 0
    max_n: int = 10
    sizes: tuple[str, ...] | None = None
    known: bool = True
    aliases: tuple[str, ...] = field(default=())
    limits: ModelLimits = field(default_factory=ModelLimits)

    @property
    def provider(self) -> str | None:
        return self.path.split("/", 1)[0] if "/" in self.path else None

    @property
    def model_id(self) -> str:
        return self.path.split("/", 1)[-1]

    @property
    def one_image_per_request(self) -> bool:
        """True where ``n`` images take ``n`` requests, each bought and recorded on its own (Gemini)."""
        return self.endpoint is Endpoint.GENERATE_CONTENT

    @property
    def name(self) -> str:
        """The short name users write, e.g. ``gpt-image-1.5``."""
        return self.model_id

    @property
    def default_n(self) -> int:
        """Images the upstream makes when the request sends no count (Imagen: 4)."""
        return self.limits.default_n
