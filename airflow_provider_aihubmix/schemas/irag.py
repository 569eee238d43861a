"""Baidu iRAG: irag-1.0 generates (one optional reference); ernie-irag-edit edits one image.

Wire names follow AIHubMix's own Dify plugin and Qianfan's ``/v2/images/edits`` (lobe-chat's
client): the edit model takes its picture as ``image`` and the operation as ``feature``
(``variation`` in every public client; ``erase`` and ``repaint`` with a ``mask``). irag-1.0
keeps the seed doc's ``refer_image``. ``mode`` is still read as the old spelling of ``feature``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import BeforeValidator, ValidationInfo, model_validator

from airflow_provider_aihubmix.catalog.models import GENERAL_SIZES, QIANFAN_PIXELS, Family, ModelSpec
from airflow_provider_aihubmix.schemas._base import (
    Count,
    FamilyInput,
    Flag,
    Images,
    Prompt,
    Seed32,
    as_size,
    context_of,
    float_range,
    one_of,
    single_reference,
)

EDIT_FEATURES = ("erase", "repaint", "variation")
MASKED_FEATURES = ("erase", "repaint")
_EDIT_ONLY = ("mask", "feature")
GUIDANCE_RANGE = (1.0, 20.0)  # AIHubMix's Dify plugin enforces 1.0..20.0


def _size(value: Any, info: ValidationInfo) -> str:
    return as_size(value, GENERAL_SIZES, context_of(info).spec.limits.pixels or QIANFAN_PIXELS)


def _is_editor(spec: ModelSpec) -> bool:
    return not spec.text_to_image


class IRAGInput(FamilyInput):
    family = Family.IRAG
    aliases = {"refer_image": "image", "mode": "feature"}

    prompt: Prompt = None
    size: Annotated[str | None, BeforeValidator(_size)] = None
    n: Count = None
    image: Images = None
    guidance: Annotated[float | None, BeforeValidator(float_range(*GUIDANCE_RANGE))] = None
    watermark: Flag = None
    seed: Seed32 = None
    mask: Annotated[str | None, BeforeValidator(single_reference)] = None
    feature: Annotated[str | None, BeforeValidator(one_of(*EDIT_FEATURES))] = None

    @classmethod
    def unsupported_reason(cls, spec: ModelSpec, name: str) -> str | None:
        if name in _EDIT_ONLY and not _is_editor(spec):
            return "'mask' and 'feature' belong to the edit model ernie-irag-edit"
        return super().unsupported_reason(spec, name)

    @model_validator(mode="after")
    def _combinations(self, info: ValidationInfo) -> IRAGInput:
        if self.feature in MASKED_FEATURES and self.mask is None:
            raise ValueError(
                f"Parameter 'feature' = '{self.feature}' needs a 'mask' for model "
                f"{context_of(info).spec.name}; allowed: a 'mask' "
                "(URL or data: URI) with erase and repaint, or feature variation without one"
            )
        return self

    def wire_image(self, refs: list[str], spec: ModelSpec) -> Iterator[tuple[str, Any]]:
        # Both iRAG models take exactly one picture; the editor reads it as `image`.
        yield ("image" if _is_editor(spec) else "refer_image"), refs[0]
