"""OpenAI image models: gpt-image-* (text-to-image and edits) and dall-e-3 (text only)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, ValidationInfo, model_validator

from airflow_provider_aihubmix.catalog import GENERAL_SIZES, Family, ModelSpec
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
GPT_IMAGE_QUALITIES = ("low", "medium", "high", "auto")
DALL_E_3_QUALITIES = ("standard", "hd")  # what dall-e-3 itself takes; low/medium/high are gpt-image's
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
    return as_size(value, DALL_E_3_SIZES if _is_dall_e(context_of(info).spec) else GPT_IMAGE_SIZES)


def _quality(value: Any, info: ValidationInfo) -> str:
    return as_choice(value, DALL_E_3_QUALITIES if _is_dall_e(context_of(info).spec) else GPT_IMAGE_QUALITIES)


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
    background: Annotated[str | None, BeforeValidator(one_of("transparent", "opaque", "auto"))] = None
    output_compression: Annotated[int | None, BeforeValidator(int_range(0, 100))] = None

    @classmethod
    def unsupported_reason(cls, spec: ModelSpec, name: str) -> str | None:
        reason = super().unsupported_reason(spec, name)
        if reason is None and _is_dall_e(spec) and name in _GPT_IMAGE_ONLY:
            reason = (
                "dall-e-3 takes only prompt, size, n and quality; the other options are gpt-image features"
            )
        return reason

    @model_validator(mode="after")
    def _combinations(self, info: ValidationInfo) -> OpenAIInput:
        model = context_of(info).spec.name
        if self.moderation is not None and self.image:
            raise ValueError(
                f"Parameters 'moderation' and 'image' cannot be combined for model {model}: moderation "
                "is not supported in image-to-image mode; allowed: drop 'moderation' or the image"
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
