"""OpenAI image models: gpt-image-* (text-to-image and edits) and dall-e-3 (text only).

Qualities, styles, response formats and ``input_fidelity`` differ per model: they come from
the catalog row (:class:`~airflow_provider_aihubmix.catalog.limits.ModelLimits`), sourced there.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, ValidationInfo, model_validator

from airflow_provider_aihubmix.catalog.models import GENERAL_SIZES, GPT_IMAGE_QUALITIES, Family, ModelSpec
from airflow_provider_aihubmix.schemas._base import (
    Count,
    FamilyInput,
    Images,
    Prompt,
    as_choice,
    as_size,
    context_of,
    int_range,
    one_of,
)

GPT_IMAGE_SIZES = (*GENERAL_SIZES, "1024x1024", "1536x1024", "1024x1536")
DALL_E_3_SIZES = ("1024x1024", "1792x1024", "1024x1792")
_GPT_IMAGE_ONLY = (
    "image",
    "input_fidelity",
    "moderation",
    "output_format",
    "background",
    "output_compression",
)


def _is_dall_e(spec: ModelSpec) -> bool:
    return spec.model_id.lower().startswith("dall-e")


def _size(value: Any, info: ValidationInfo) -> str:
    spec = context_of(info).spec
    if _is_dall_e(spec):
        return as_size(value, DALL_E_3_SIZES)
    # gpt-image-2 takes any size within its pixel bounds (catalog data, sourced there).
    return as_size(value, GPT_IMAGE_SIZES, spec.limits.pixels)


def _background(value: Any, info: ValidationInfo) -> str:
    return as_choice(value, context_of(info).spec.limits.backgrounds or ("transparent", "opaque", "auto"))


def _quality(value: Any, info: ValidationInfo) -> str:
    return as_choice(value, context_of(info).spec.limits.qualities or GPT_IMAGE_QUALITIES)


def _style(value: Any, info: ValidationInfo) -> str:
    return as_choice(value, context_of(info).spec.limits.styles or ())


def _response_format(value: Any, info: ValidationInfo) -> str:
    return as_choice(value, context_of(info).spec.limits.response_formats or ())


class OpenAIInput(FamilyInput):
    family = Family.OPENAI

    prompt: Prompt = None
    size: Annotated[str | None, BeforeValidator(_size)] = None
    n: Count = None
    quality: Annotated[str | None, BeforeValidator(_quality)] = None
    image: Images = None
    input_fidelity: Annotated[str | None, BeforeValidator(one_of("high", "low"))] = None
    moderation: Annotated[str | None, BeforeValidator(one_of("auto", "low"))] = None
    output_format: Annotated[str | None, BeforeValidator(one_of("png", "jpeg", "webp"))] = None
    background: Annotated[str | None, BeforeValidator(_background)] = None
    output_compression: Annotated[int | None, BeforeValidator(int_range(0, 100))] = None
    style: Annotated[str | None, BeforeValidator(_style)] = None
    response_format: Annotated[str | None, BeforeValidator(_response_format)] = None

    @classmethod
    def unsupported_reason(cls, spec: ModelSpec, name: str) -> str | None:
        reason = super().unsupported_reason(spec, name)
        if reason is not None:
            return reason
        if _is_dall_e(spec) and name in _GPT_IMAGE_ONLY:
            return "dall-e-3 takes prompt, size, n, quality, style and response_format; not gpt-image's"
        if name == "input_fidelity" and "input_fidelity" not in spec.limits.options:
            return f"OpenAI does not support input_fidelity on {spec.name}"
        if name == "style" and spec.limits.styles is None:
            return "style is a dall-e-3 parameter"
        if name == "response_format" and spec.limits.response_formats is None:
            return "gpt-image models always answer with base64; response_format is dall-e-only"
        return None

    @model_validator(mode="after")
    def _combinations(self, info: ValidationInfo) -> OpenAIInput:
        model = context_of(info).spec.name
        if self.moderation is not None and self.image:
            raise ValueError(
                f"Parameters 'moderation' and 'image' cannot be combined for model {model}: moderation "
                "is not supported in image-to-image mode; allowed: drop 'moderation' or the image"
            )
        if self.input_fidelity is not None and not self.image:
            raise ValueError(
                f"Parameter 'input_fidelity' needs an input 'image' for model {model}: OpenAI reads it "
                "only on edits; allowed: drop 'input_fidelity' or add a reference image"
            )
        if self.background == "transparent" and self.output_format == "jpeg":
            raise ValueError(
                f"Parameters 'background' = 'transparent' and 'output_format' = 'jpeg' cannot be combined "
                f"for model {model}: JPEG has no alpha channel; allowed: output_format png or webp"
            )
        if self.output_compression is not None and self.output_format == "png":
            raise ValueError(
                f"Parameters 'output_compression' and 'output_format' = 'png' cannot be combined for model "
                f"{model}: PNG is lossless; allowed: output_compression with output_format jpeg or webp"
            )
        return self
