"""Google Gemini "Nano Banana": aspect ratio, image size, response modalities, seed, references.

The validated ``input`` keeps Google's ``generationConfig`` names (``aspectRatio``,
``imageSize``, ``responseModalities``) in one flat object, so the manifest and the request
fingerprint read like the other families; :mod:`airflow_provider_aihubmix.responses.gemini` turns it
into the ``generateContent`` body. ``n`` is checked here and never sent: one request makes
one image, so ``n`` images are ``n`` requests.

Sources: Google's Gemini API image-generation guide and ``ImageConfig`` reference --
aspect ratios 1:1, 2:3, 3:2, 3:4, 4:3, 4:5, 5:4, 9:16, 16:9, 21:9 on every image model,
plus 1:4, 4:1, 1:8, 8:1 on Gemini 3.1 Flash Image; ``imageSize`` 1K/2K/4K on the Gemini 3
models (written with a capital K), ``512`` on 3.1 Flash only, none on 2.5 Flash Image.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Annotated, Any, ClassVar

from pydantic import BeforeValidator, ValidationInfo

from airflow_provider_aihubmix.catalog.models import Family, ModelSpec
from airflow_provider_aihubmix.schemas._base import (
    INT32_MAX,
    Count,
    FamilyInput,
    Flag,
    Images,
    Prompt,
    Reject,
    as_choice,
    as_ratio,
    context_of,
    float_range,
    int_range,
    parse_listed,
)

GEMINI_ASPECT_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
EXTREME_ASPECT_RATIOS = ("1:4", "4:1", "1:8", "8:1")
# Models that take the extreme ratios; a passed-through Gemini model gets the widest set.
EXTREME_RATIO_MODELS = ("gemini-3.1-flash-image-preview",)
RESPONSE_MODALITIES = ("TEXT", "IMAGE")
MAX_TEMPERATURE = 2.0


def aspect_ratios_for(spec: ModelSpec) -> tuple[str, ...]:
    if spec.model_id in EXTREME_RATIO_MODELS or not spec.known:
        return GEMINI_ASPECT_RATIOS + EXTREME_ASPECT_RATIOS
    return GEMINI_ASPECT_RATIOS


def _aspect_ratio(value: Any, info: ValidationInfo) -> str:
    return as_ratio(value, aspect_ratios_for(context_of(info).spec), ":")


def _image_size(value: Any, info: ValidationInfo) -> str:
    sizes = context_of(info).spec.sizes or ()
    if isinstance(value, str) and value.strip().lower() in ("0.5k", "512px") and "512" in sizes:
        return "512"
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return as_choice(value, sizes)


def _modalities(value: Any) -> list[str]:
    allowed = "['IMAGE'] or ['TEXT', 'IMAGE'] (a single 'IMAGE' is read as ['IMAGE'])"
    if isinstance(value, str) and value.strip().startswith("["):
        value = parse_listed(value.strip())  # a list a template rendered as text
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not items:
        raise Reject("is not a list of modalities", allowed)
    chosen: list[str] = []
    for item in items:
        if not isinstance(item, str) or item.strip().upper() not in RESPONSE_MODALITIES:
            raise Reject(f"holds {item!r}, which is not a response modality", allowed)
        if item.strip().upper() not in chosen:
            chosen.append(item.strip().upper())
    if "IMAGE" not in chosen:
        raise Reject("leaves out IMAGE, so the model would answer with text only", allowed)
    # Google's own examples put TEXT first; one spelling keeps the fingerprint stable.
    return [m for m in RESPONSE_MODALITIES if m in chosen]


class GeminiInput(FamilyInput):
    family = Family.GEMINI
    wire_names = {
        "aspect_ratio": "aspectRatio",
        "image_size": "imageSize",
        "response_modalities": "responseModalities",
    }
    aliases = {"size": "image_size"}
    # Where gemini.request_body puts each parameter in the generateContent body (docs/PARAMETERS.md).
    sent_as: ClassVar[Mapping[str, str]] = {
        "prompt": "`contents[0].parts[0].text`",
        "n": "(n requests, one image each; not sent)",
        "image": "one `contents[0].parts[].inlineData` each",
        "aspect_ratio": "`generationConfig.imageConfig.aspectRatio`",
        "image_size": "`generationConfig.imageConfig.imageSize`",
        "response_modalities": "`generationConfig.responseModalities`",
        "seed": "`generationConfig.seed` (+ i for request i)",
        "temperature": "`generationConfig.temperature`",
        "stream": "(the route: `:streamGenerateContent`, answered as a JSON array of chunks; not sent)",
    }

    prompt: Prompt = None
    n: Count = None
    image: Images = None
    aspect_ratio: Annotated[str | None, BeforeValidator(_aspect_ratio)] = None
    image_size: Annotated[str | None, BeforeValidator(_image_size)] = None
    response_modalities: Annotated[list[str] | None, BeforeValidator(_modalities)] = None
    seed: Annotated[int | None, BeforeValidator(int_range(0, INT32_MAX))] = None
    temperature: Annotated[float | None, BeforeValidator(float_range(0.0, MAX_TEMPERATURE))] = None
    # Call :streamGenerateContent (as AIHubMix's own users do for Gemini 3) instead of generateContent.
    stream: Flag = None

    @classmethod
    def unsupported_reason(cls, spec: ModelSpec, name: str) -> str | None:
        if name == "image_size" and not spec.sizes:
            return (
                f"{spec.name} always answers at 1K (1024 px on the long side); 'image_size' is for the "
                "Gemini 3 image models"
            )
        return super().unsupported_reason(spec, name)

    def wire_image(self, refs: list[str], spec: ModelSpec) -> Iterator[tuple[str, Any]]:
        # Always a list: each reference becomes one inlineData part, in order.
        yield "image", list(refs)
