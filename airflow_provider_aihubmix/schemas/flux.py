"""Black Forest Labs Flux: safety tolerance, aspect ratio or width/height, one image per call.

What differs per model is catalog data, after BFL's own spec: flux-2-pro/flex take
``safety_tolerance`` 0..5 and ``width``/``height`` (>= 64, multiples of 16; flex also
``steps`` and ``guidance``), the Kontext models 0..6 and an aspect ratio, at most 2 with an
input image. ``aspect_ratio`` stays accepted on flux-2 because AIHubMix's MCP server sends it.
Reference images go in BFL's own fields: ``input_image``, then ``input_image_2`` …
``n`` is checked (it must be 1) but not sent: BFL has no such field.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import BeforeValidator, ValidationInfo, model_validator

from airflow_provider_aihubmix.catalog.models import Family, ModelSpec
from airflow_provider_aihubmix.schemas._base import (
    INT64_MAX,
    Count,
    FamilyInput,
    Flag,
    Images,
    Prompt,
    Reject,
    as_int,
    as_ratio,
    context_of,
    float_range,
    int_range,
    one_of,
)

DEFAULT_MAX_SAFETY_TOLERANCE = 6
_SEED = int_range(-INT64_MAX - 1, INT64_MAX, "64-bit integers")
_MODEL_OPTIONS = ("width", "height", "steps", "guidance")  # only where the catalog row lists them


def _aspect_ratio(value: Any) -> str:
    return as_ratio(value, None, ":")


def _safety_tolerance(value: Any, info: ValidationInfo) -> int:
    top = context_of(info).spec.limits.safety_tolerance
    return as_int(value, 0, DEFAULT_MAX_SAFETY_TOLERANCE if top is None else top)


def _side(value: Any, info: ValidationInfo) -> int:
    pixels = context_of(info).spec.limits.pixels
    low, step = (pixels.min_side, pixels.multiple_of) if pixels else (64, 16)
    number = as_int(value, low, 8192, f"integers >= {low}, multiples of {step}")
    if number % step:
        raise Reject(f"is not a multiple of {step}", f"integers >= {low}, multiples of {step}")
    return number


class FluxInput(FamilyInput):
    family = Family.FLUX
    aliases = {"input_image": "image"}

    prompt: Prompt = None
    n: Count = None
    aspect_ratio: Annotated[str | None, BeforeValidator(_aspect_ratio)] = None
    width: Annotated[int | None, BeforeValidator(_side)] = None
    height: Annotated[int | None, BeforeValidator(_side)] = None
    image: Images = None
    safety_tolerance: Annotated[int | None, BeforeValidator(_safety_tolerance)] = None
    seed: Annotated[int | None, BeforeValidator(_SEED)] = None  # BFL: any integer
    raw: Flag = None
    output_format: Annotated[str | None, BeforeValidator(one_of("png", "jpeg", "webp"))] = None
    prompt_upsampling: Flag = None
    steps: Annotated[int | None, BeforeValidator(int_range(1, 50))] = None
    guidance: Annotated[float | None, BeforeValidator(float_range(1.5, 10))] = None

    @classmethod
    def unsupported_reason(cls, spec: ModelSpec, name: str) -> str | None:
        if name in _MODEL_OPTIONS and name not in spec.limits.options:
            takers = "flux-2-pro and flux-2-flex" if name in ("width", "height") else "flux-2-flex"
            return f"BFL's spec gives '{name}' to {takers} only"
        return super().unsupported_reason(spec, name)

    @model_validator(mode="after")
    def _combinations(self, info: ValidationInfo) -> FluxInput:
        spec = context_of(info).spec
        cap = spec.limits.safety_tolerance_with_image
        if cap is not None and self.image and (self.safety_tolerance or 0) > cap:
            raise ValueError(
                f"Parameter 'safety_tolerance' = {self.safety_tolerance} is too high with an input 'image' "
                f"for model {spec.name}: image editing is limited to 0..{cap}; allowed: 0..{cap} with "
                f"an image, 0..{spec.limits.safety_tolerance or DEFAULT_MAX_SAFETY_TOLERANCE} without"
            )
        if (self.width is None) != (self.height is None):
            raise ValueError(
                f"Parameters 'width' and 'height' go together for model {spec.name}; allowed: both or neither"
            )
        return self

    def wire_image(self, refs: list[str], spec: ModelSpec) -> Iterator[tuple[str, Any]]:
        for index, ref in enumerate(refs, start=1):
            yield ("input_image" if index == 1 else f"input_image_{index}"), ref

    def wire_items(self, spec: ModelSpec) -> Iterator[tuple[str, str, Any]]:
        return ((name, key, value) for name, key, value in super().wire_items(spec) if name != "n")
