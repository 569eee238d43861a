"""Qwen: its own pixel sizes; qwen-image takes one reference, qwen-image-edit up to three and no size.

Sizes are sent as the catalog writes them (``1024*1024``); ``1024x1024``, which the vendor's
own example sends, is accepted and normalised, so either spelling works in a DAG.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import BeforeValidator, ValidationInfo

from airflow_provider_aihubmix.catalog import QWEN_SIZES, Family, ModelSpec
from airflow_provider_aihubmix.schemas._base import (
    Count,
    FamilyInput,
    Flag,
    Images,
    Prompt,
    Seed32,
    as_size,
    context_of,
)


def _size(value: Any, info: ValidationInfo) -> str:
    return as_size(value, context_of(info).spec.sizes or QWEN_SIZES)


class QwenInput(FamilyInput):
    family = Family.QWEN
    aliases = {"refer_image": "image"}

    prompt: Prompt = None
    size: Annotated[str | None, BeforeValidator(_size)] = None
    n: Count = None
    image: Images = None
    watermark: Flag = None
    seed: Seed32 = None

    @classmethod
    def unsupported_reason(cls, spec: ModelSpec, name: str) -> str | None:
        if name == "size" and spec.sizes == ():
            return "its output follows the input image, so it takes no 'size'"
        return super().unsupported_reason(spec, name)

    def wire_image(self, refs: list[str], spec: ModelSpec) -> Iterator[tuple[str, Any]]:
        if spec.text_to_image:
            yield "refer_image", refs[0]  # qwen-image: one reference, as the vendor example sends it
        else:
            yield "image", list(refs)  # qwen-image-edit: always a list of up to three
