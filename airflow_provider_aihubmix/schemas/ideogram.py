"""Ideogram V3: rendering speed, 'WxH'-style aspect ratios, style and magic-prompt options.

Counts and references keep the gateway's general names (``n``, ``image``): the vendor doc
names no Ideogram-specific fields for them.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, ValidationInfo

from airflow_provider_aihubmix.catalog.models import Family
from airflow_provider_aihubmix.schemas._base import (
    Count,
    FamilyInput,
    Images,
    Prompt,
    Seed32,
    as_choice,
    as_ratio,
    as_text,
    context_of,
    one_of,
)

IDEOGRAM_ASPECT_RATIOS = (
    "1x1", "2x1", "1x2", "3x2", "2x3", "4x3", "3x4", "16x9", "9x16",
    "16x10", "10x16", "3x1", "1x3", "5x4", "4x5",
)  # fmt: skip
MAX_NEGATIVE_PROMPT_LENGTH = 10_000
RENDERING_SPEEDS = ("FLASH", "TURBO", "DEFAULT", "QUALITY")  # Ideogram's RenderingSpeed


def _aspect_ratio(value: Any) -> str:
    return as_ratio(value, IDEOGRAM_ASPECT_RATIOS, "x")


def _rendering_speed(value: Any, info: ValidationInfo) -> str:
    return as_choice(value, context_of(info).spec.limits.rendering_speeds or RENDERING_SPEEDS)


def _negative_prompt(value: Any) -> str:
    return as_text(value, MAX_NEGATIVE_PROMPT_LENGTH)


class IdeogramInput(FamilyInput):
    family = Family.IDEOGRAM

    prompt: Prompt = None
    n: Count = None
    aspect_ratio: Annotated[str | None, BeforeValidator(_aspect_ratio)] = None
    rendering_speed: Annotated[str | None, BeforeValidator(_rendering_speed)] = None
    style_type: Annotated[
        str | None, BeforeValidator(one_of("AUTO", "GENERAL", "REALISTIC", "DESIGN", "FICTION"))
    ] = None
    negative_prompt: Annotated[str | None, BeforeValidator(_negative_prompt)] = None
    magic_prompt: Annotated[str | None, BeforeValidator(one_of("AUTO", "ON", "OFF"))] = None
    seed: Seed32 = None
    image: Images = None
