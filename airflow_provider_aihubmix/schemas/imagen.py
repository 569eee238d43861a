"""Google Imagen: text-to-image only, 1-4 images, aspect ratios; 1K/2K on Imagen 4 standard and ultra.

The count goes out under both names AIHubMix's own clients use, ``sampleCount`` (the current
AIHubMix doc and its MCP server) and ``numberOfImages`` (the seed doc and its Dify plugin): the
sources disagree, and a count the gateway ignores would bill the upstream default of 4 images.
With no count set nothing is sent, and the catalog's ``default_n`` (4) is what cost expects.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import BeforeValidator

from airflow_provider_aihubmix.catalog.models import Family, ModelSpec
from airflow_provider_aihubmix.schemas._base import Count, FamilyInput, Prompt, as_ratio, one_of

IMAGEN_ASPECT_RATIOS = ("1:1", "3:4", "4:3", "9:16", "16:9")
IMAGEN_SIZES = ("1K", "2K")
SIZED_MODELS = ("imagen-4.0-generate-001", "imagen-4.0-ultra-generate-001")
COUNT_WIRE_NAMES = ("sampleCount", "numberOfImages")


def _aspect_ratio(value: Any) -> str:
    return as_ratio(value, IMAGEN_ASPECT_RATIOS, ":")


class ImagenInput(FamilyInput):
    family = Family.IMAGEN
    wire_names = {"n": "numberOfImages", "aspect_ratio": "aspectRatio"}
    aliases = {"sampleCount": "n", "imageSize": "size"}

    prompt: Prompt = None
    n: Count = None
    aspect_ratio: Annotated[str | None, BeforeValidator(_aspect_ratio)] = None
    size: Annotated[str | None, BeforeValidator(one_of(*IMAGEN_SIZES))] = None

    @classmethod
    def unsupported_reason(cls, spec: ModelSpec, name: str) -> str | None:
        if name == "size" and spec.model_id not in SIZED_MODELS:
            return f"only {' and '.join(SIZED_MODELS)} take 'size' ({', '.join(IMAGEN_SIZES)})"
        return super().unsupported_reason(spec, name)

    def wire_items(self, spec: ModelSpec) -> Iterator[tuple[str, str, Any]]:
        for name, key, value in super().wire_items(spec):
            if name == "n":
                for wire in COUNT_WIRE_NAMES:
                    yield name, wire, value
            else:
                yield name, key, value
