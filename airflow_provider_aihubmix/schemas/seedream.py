"""Doubao Seedream: presets or explicit pixels, multi-image ("sequential") generation, ≤ 15 images in all.

``max_images`` goes on the wire as ``sequential_image_generation_options.max_images``.
Given without ``sequential_image_generation``, the mode is sent as ``auto``: the option is
only read in that mode, and asking for several images means asking for it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Annotated, Any

from pydantic import BeforeValidator, ValidationInfo, model_validator

from airflow_provider_aihubmix.catalog.models import (
    GENERAL_SIZES,
    SEEDREAM_4_0_PIXELS,
    SEEDREAM_RESPONSE_FORMATS,
    Family,
    ModelSpec,
)
from airflow_provider_aihubmix.schemas._base import (
    INT32_MAX,
    Count,
    FamilyInput,
    Flag,
    Images,
    Prompt,
    Reject,
    as_bool,
    as_choice,
    as_size,
    context_of,
    int_range,
    json_value,
    one_of,
    parse_listed,
)

MAX_TOTAL_IMAGES = 15  # reference images + generated images, per the vendor doc
OPTIONS_KEY = "sequential_image_generation_options"


def _size(value: Any, info: ValidationInfo) -> str:
    # Pixel bounds differ per model (4.5 needs >= 2560x1440): catalog data, from Ark's reference.
    spec = context_of(info).spec
    pixels = spec.limits.pixels or SEEDREAM_4_0_PIXELS
    return as_size(value, spec.sizes if spec.sizes is not None else GENERAL_SIZES, pixels)


def _response_format(value: Any, info: ValidationInfo) -> str:
    formats = context_of(info).spec.limits.response_formats or SEEDREAM_RESPONSE_FORMATS
    return as_choice(value, formats)


def _output_format(value: Any, info: ValidationInfo) -> str:
    return as_choice(value, context_of(info).spec.limits.output_formats or ("png", "jpeg"))


def _tools(value: Any) -> list[dict[str, Any]]:
    """Seedream 5.0 lite's tools: a list of ``{"type": "web_search"}`` objects (Ark)."""
    allowed = "a list of tool objects such as [{'type': 'web_search'}]"
    if isinstance(value, str) and value.strip().startswith("["):
        value = parse_listed(value.strip())
    if not isinstance(value, (list, tuple)) or not value:
        raise Reject("is not a non-empty list of tools", allowed)
    tools = []
    for item in value:
        if not isinstance(item, Mapping) or not isinstance(item.get("type"), str):
            raise Reject("holds a tool that is not an object with a 'type'", allowed)
        tools.append(json_value(dict(item)))
    return tools


def _stream(value: Any) -> bool:
    if as_bool(value):
        raise Reject(
            "is not allowed (this provider stores finished images and does not consume streamed responses)",
            "false (or leave it unset)",
        )
    return False


class SeedreamInput(FamilyInput):
    family = Family.SEEDREAM
    refused = frozenset({"stream"})

    prompt: Prompt = None
    size: Annotated[str | None, BeforeValidator(_size)] = None
    n: Count = None
    image: Images = None
    sequential_image_generation: Annotated[str | None, BeforeValidator(one_of("auto", "disabled"))] = None
    max_images: Annotated[int | None, BeforeValidator(int_range(1, MAX_TOTAL_IMAGES))] = None
    watermark: Flag = None
    seed: Annotated[int | None, BeforeValidator(int_range(-1, INT32_MAX))] = None
    response_format: Annotated[str | None, BeforeValidator(_response_format)] = None
    output_format: Annotated[str | None, BeforeValidator(_output_format)] = None
    tools: Annotated[list[dict[str, Any]] | None, BeforeValidator(_tools)] = None
    stream: Annotated[bool | None, BeforeValidator(_stream)] = None

    @classmethod
    def unsupported_reason(cls, spec: ModelSpec, name: str) -> str | None:
        reason = super().unsupported_reason(spec, name)
        if reason is None and name in ("output_format", "tools") and name not in spec.limits.options:
            return f"{name} is a Seedream 5.0 lite parameter (Ark), not one of {spec.name}"
        return reason

    @classmethod
    def split_extra(cls, key: str, value: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        # The nested options object: max_images is modelled, anything else in it passes through.
        if key == OPTIONS_KEY and isinstance(value, Mapping) and "max_images" in value:
            rest = {k: v for k, v in value.items() if k != "max_images"}
            return {"max_images": value["max_images"]}, ({key: rest} if rest else {})
        return super().split_extra(key, value)

    @model_validator(mode="after")
    def _combinations(self, info: ValidationInfo) -> SeedreamInput:
        model = context_of(info).spec.name
        if self.max_images is not None and self.sequential_image_generation == "disabled":
            raise ValueError(
                f"Parameter 'max_images' needs 'sequential_image_generation' = 'auto' for model {model}, "
                "but it is 'disabled'; allowed: drop 'max_images' or set sequential_image_generation to auto"
            )
        references = len(self.image or ())
        for name, wanted in (("max_images", self.max_images), ("n", self.n)):
            if wanted is not None and references + wanted > MAX_TOTAL_IMAGES:
                raise ValueError(
                    f"Parameters 'image' and '{name}' ask for {references} reference + {wanted} generated "
                    f"images for model {model}; allowed: reference images + generated images "
                    f"<= {MAX_TOTAL_IMAGES}"
                )
        return self

    def wire_items(self, spec: ModelSpec) -> Iterator[tuple[str, str, Any]]:
        for name, key, value in super().wire_items(spec):
            if name != "max_images":
                yield name, key, value
                continue
            if self.sequential_image_generation is None:
                yield name, "sequential_image_generation", "auto"
            yield name, OPTIONS_KEY, {"max_images": value}
