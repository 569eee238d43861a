"""Qwen: the doc's presets or any Qianfan size; qwen-image takes one reference, qwen-image-edit three.

Sizes are sent exactly as the user wrote them: the seed doc's table writes ``1024*1024``, its
example and every qianfan client (MCP, Dify plugin, Qianfan native) ``1024x1024``. Both are
accepted and neither is rewritten. Bounds per model are catalog data.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import BeforeValidator, ValidationInfo

from airflow_provider_aihubmix.catalog.models import QWEN_SIZES, Family, ModelSpec
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
    spec = context_of(info).spec
    return as_size(value, spec.sizes or QWEN_SIZES, spec.limits.pixels, sep=None)


class QwenInput(FamilyInput):
    family = Family.QWEN
    aliases = {"refer_image": "image"}

    prompt: Prompt = None
    size: Annotated[str | None, BeforeValidator(_size)] = None
    n: Count = None
    image: Images = None
    watermark: Flag = None
    seed: Seed32 = None

    def wire_image(self, refs: list[str], spec: ModelSpec) -> Iterator[tuple[str, Any]]:
        if spec.text_to_image:
            yield "refer_image", refs[0]  # qwen-image: one reference, as the vendor example sends it
        else:
            yield "image", list(refs)  # qwen-image-edit: always a list of up to three
