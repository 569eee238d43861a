"""Baidu iRAG: irag-1.0 generates (one optional reference); ernie-irag-edit erases, repaints or varies."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import BeforeValidator, ValidationInfo, model_validator

from airflow_provider_aihubmix.catalog import GENERAL_SIZES, Family, ModelSpec
from airflow_provider_aihubmix.schemas._base import (
    Count,
    FamilyInput,
    Flag,
    Images,
    PixelRule,
    Prompt,
    Seed32,
    as_size,
    context_of,
    float_range,
    one_of,
    single_reference,
)

IRAG_PIXELS = PixelRule(min_side=64, max_side=4096)
EDIT_MODES = ("erase", "repaint", "variation")
MASKED_MODES = ("erase", "repaint")
_EDIT_ONLY = ("mask", "mode")


def _size(value: Any) -> str:
    return as_size(value, GENERAL_SIZES, IRAG_PIXELS)


def _is_editor(spec: ModelSpec) -> bool:
    return not spec.text_to_image


class IRAGInput(FamilyInput):
    family = Family.IRAG
    aliases = {"refer_image": "image"}

    prompt: Prompt = None
    size: Annotated[str | None, BeforeValidator(_size)] = None
    n: Count = None
    image: Images = None
    guidance: Annotated[float | None, BeforeValidator(float_range(0, 30))] = None
    watermark: Flag = None
    seed: Seed32 = None
    mask: Annotated[str | None, BeforeValidator(single_reference)] = None
    mode: Annotated[str | None, BeforeValidator(one_of(*EDIT_MODES))] = None

    @classmethod
    def unsupported_reason(cls, spec: ModelSpec, name: str) -> str | None:
        if name in _EDIT_ONLY and not _is_editor(spec):
            return "'mask' and 'mode' belong to the edit model ernie-irag-edit"
        return super().unsupported_reason(spec, name)

    @model_validator(mode="after")
    def _combinations(self, info: ValidationInfo) -> IRAGInput:
        if self.mode in MASKED_MODES and self.mask is None:
            raise ValueError(
                f"Parameter 'mode' = '{self.mode}' needs a 'mask' for model "
                f"{context_of(info).spec.name}; allowed: a 'mask' "
                "(URL or data: URI) with erase and repaint, or mode variation without one"
            )
        return self

    def wire_image(self, refs: list[str], spec: ModelSpec) -> Iterator[tuple[str, Any]]:
        yield "refer_image", refs[0]  # both iRAG models take exactly one reference
