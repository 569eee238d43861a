"""Black Forest Labs Flux: aspect ratios, safety tolerance, one image per call.

Reference images go in BFL's own fields: ``input_image``, then ``input_image_2`` … for the
multi-reference flux-2 models. ``n`` is checked (it must be 1) but not sent: BFL has no
such field.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import BeforeValidator, ValidationInfo, model_validator

from airflow_provider_aihubmix.catalog import Family, ModelSpec
from airflow_provider_aihubmix.schemas._base import (
    INT64_MAX,
    Count,
    FamilyInput,
    Flag,
    Images,
    Prompt,
    as_ratio,
    context_of,
    int_range,
    one_of,
)

MAX_SAFETY_TOLERANCE = 6
MAX_SAFETY_TOLERANCE_WITH_IMAGE = 2  # BFL: image editing is limited to 0..2


def _aspect_ratio(value: Any) -> str:
    return as_ratio(value, None, ":")


class FluxInput(FamilyInput):
    family = Family.FLUX
    aliases = {"input_image": "image"}

    prompt: Prompt = None
    n: Count = None
    aspect_ratio: Annotated[str | None, BeforeValidator(_aspect_ratio)] = None
    image: Images = None
    safety_tolerance: Annotated[int | None, BeforeValidator(int_range(0, MAX_SAFETY_TOLERANCE))] = None
    seed: Annotated[int | None, BeforeValidator(int_range(0, INT64_MAX, "integers >= 0"))] = None
    raw: Flag = None
    output_format: Annotated[str | None, BeforeValidator(one_of("png", "jpeg"))] = None
    prompt_upsampling: Flag = None

    @model_validator(mode="after")
    def _combinations(self, info: ValidationInfo) -> FluxInput:
        if self.image and (self.safety_tolerance or 0) > MAX_SAFETY_TOLERANCE_WITH_IMAGE:
            raise ValueError(
                f"Parameter 'safety_tolerance' = {self.safety_tolerance} is too high with an input 'image' "
                f"for model {context_of(info).spec.name}: image editing is limited to "
                f"0..{MAX_SAFETY_TOLERANCE_WITH_IMAGE}; allowed: 0..{MAX_SAFETY_TOLERANCE_WITH_IMAGE} with "
                f"an image, 0..{MAX_SAFETY_TOLERANCE} without"
            )
        return self

    def wire_image(self, refs: list[str], spec: ModelSpec) -> Iterator[tuple[str, Any]]:
        for index, ref in enumerate(refs, start=1):
            yield ("input_image" if index == 1 else f"input_image_{index}"), ref

    def wire_items(self, spec: ModelSpec) -> Iterator[tuple[str, str, Any]]:
        return ((name, key, value) for name, key, value in super().wire_items(spec) if name != "n")
