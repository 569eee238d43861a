"""The family operators: each a dozen lines of typed parameters and a default flagship model over
:class:`~airflow_provider_aihubmix.operators.generic.AIHubMixGenerateImageOperator`, which does
all the work. Import them from :mod:`airflow_provider_aihubmix.operators.images`, their public face.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_aihubmix.catalog.models import Family
from airflow_provider_aihubmix.operators.generic import AIHubMixGenerateImageOperator


class AIHubMixOpenAIImageOperator(AIHubMixGenerateImageOperator):
    """OpenAI gpt-image and dall-e-3 (sync; high quality can take ~90 s)."""

    family = Family.OPENAI
    default_model = "gpt-image-1.5"

    def __init__(
        self,
        *,
        input_fidelity: str | None = None,
        moderation: str | None = None,
        output_format: str | None = None,
        background: str | None = None,
        output_compression: int | None = None,
        style: str | None = None,
        response_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        family_params = {
            "input_fidelity": input_fidelity,
            "moderation": moderation,
            "output_format": output_format,
            "background": background,
            "output_compression": output_compression,
            "style": style,  # dall-e-3 only
            "response_format": response_format,  # dall-e-3 only
        }
        super().__init__(family_params=family_params, **kwargs)


class AIHubMixImagenOperator(AIHubMixGenerateImageOperator):
    """Google Imagen (text-to-image, 1-4 images, published per-image prices)."""

    family = Family.IMAGEN
    default_model = "imagen-4.0-generate-001"

    def __init__(self, *, aspect_ratio: str | None = None, **kwargs: Any) -> None:
        super().__init__(family_params={"aspect_ratio": aspect_ratio}, **kwargs)


class AIHubMixQwenImageOperator(AIHubMixGenerateImageOperator):
    """Qwen-Image and Qwen-Image-Edit (up to 3 reference images)."""

    family = Family.QWEN
    default_model = "qwen-image"

    def __init__(self, *, watermark: bool | None = None, **kwargs: Any) -> None:
        super().__init__(family_params={"watermark": watermark}, **kwargs)


class AIHubMixSeedreamOperator(AIHubMixGenerateImageOperator):
    """ByteDance Seedream (Doubao): text-to-image, multi-image fusion, image sequences.

    ``output_format`` (png, jpeg) and ``tools`` (``[{"type": "web_search"}]``) are Seedream 5.0
    lite's (Ark); other Seedream models refuse them.
    """

    family = Family.SEEDREAM
    default_model = "doubao-seedream-4-5"

    def __init__(
        self,
        *,
        sequential_image_generation: str | None = None,
        max_images: int | None = None,
        watermark: bool | None = None,
        response_format: str | None = None,
        output_format: str | None = None,
        tools: list[dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> None:
        family_params = {
            "sequential_image_generation": sequential_image_generation,
            "max_images": max_images,
            "watermark": watermark,
            "response_format": response_format,
            "output_format": output_format,  # Seedream 5.0 lite: png or jpeg
            "tools": tools,  # Seedream 5.0 lite: [{"type": "web_search"}]
        }
        super().__init__(family_params=family_params, **kwargs)


class AIHubMixFluxOperator(AIHubMixGenerateImageOperator):
    """Black Forest Labs Flux: async predictions (deferrable) and one-step FLUX.1-Kontext-pro."""

    family = Family.FLUX
    default_model = "flux-2-pro"

    def __init__(
        self,
        *,
        aspect_ratio: str | None = None,
        safety_tolerance: int | None = None,
        raw: bool | None = None,
        output_format: str | None = None,
        prompt_upsampling: bool | None = None,
        width: int | None = None,
        height: int | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        **kwargs: Any,
    ) -> None:
        family_params = {
            "aspect_ratio": aspect_ratio,
            "safety_tolerance": safety_tolerance,
            "raw": raw,
            "output_format": output_format,
            "prompt_upsampling": prompt_upsampling,
            "width": width,
            "height": height,
            "steps": steps,
            "guidance": guidance,
        }
        super().__init__(family_params=family_params, **kwargs)


class AIHubMixIRAGOperator(AIHubMixGenerateImageOperator):
    """Baidu iRAG generation and ERNIE iRAG editing (erase, repaint, variation)."""

    family = Family.IRAG
    default_model = "irag-1.0"

    def __init__(
        self,
        *,
        guidance: float | None = None,
        watermark: bool | None = None,
        mask: str | None = None,
        feature: str | None = None,
        mode: str | None = None,
        **kwargs: Any,
    ) -> None:
        # ``mode`` is the older spelling of ``feature`` (the schema reads it as an alias).
        family_params = {
            "guidance": guidance,
            "watermark": watermark,
            "mask": mask,
            "feature": feature,
            "mode": mode,
        }
        super().__init__(family_params=family_params, **kwargs)


class AIHubMixIdeogramOperator(AIHubMixGenerateImageOperator):
    """Ideogram V3."""

    family = Family.IDEOGRAM
    default_model = "V3"

    def __init__(
        self,
        *,
        rendering_speed: str | None = None,
        aspect_ratio: str | None = None,
        style_type: str | None = None,
        negative_prompt: str | None = None,
        magic_prompt: str | None = None,
        **kwargs: Any,
    ) -> None:
        family_params = {
            "rendering_speed": rendering_speed,
            "aspect_ratio": aspect_ratio,
            "style_type": style_type,
            "negative_prompt": negative_prompt,
            "magic_prompt": magic_prompt,
        }
        super().__init__(family_params=family_params, **kwargs)


class AIHubMixGeminiImageOperator(AIHubMixGenerateImageOperator):
    """Google Gemini "Nano Banana" image models on AIHubMix's Gemini route (``generateContent``).

    Generates from text or edits by instruction: ``image`` (an upstream record, ``s3://`` URI,
    local path, URL or ``data:`` URI; up to 3 for 2.5 Flash Image, 14 for the Gemini 3 models)
    is sent inline. One request makes one image, so ``n`` images are ``n`` requests, each
    recorded in the manifest before the next: a retry buys only the ones still missing. Billed
    per token; the manifest and the lineage facet carry ``usageMetadata`` and the model's
    commentary. A refusal (``blockReason``, a safety ``finishReason``) or a text-only answer
    fails the task without Airflow retries.

    :param aspect_ratio: ``1:1``, ``2:3``, ``3:2``, ``3:4``, ``4:3``, ``4:5``, ``5:4``, ``9:16``,
        ``16:9``, ``21:9`` (3.1 Flash also ``1:4``, ``4:1``, ``1:8``, ``8:1``).
    :param image_size: ``1K``, ``2K``, ``4K`` on the Gemini 3 models, also ``512`` on 3.1 Flash;
        2.5 Flash Image has none (always 1K). ``size`` is accepted as its alias.
    :param response_modalities: ``["IMAGE"]`` or ``["TEXT", "IMAGE"]`` (Google's default).
    :param temperature: 0.0..2.0.
    :param stream: call ``:streamGenerateContent`` (answered as a JSON array of chunks, as AIHubMix's
        own users call Gemini 3) instead of ``:generateContent``; either answer is read one image's
        base64 at a time, its ``thoughtSignature`` never kept.
    """

    family = Family.GEMINI
    default_model = "gemini-2.5-flash-image"

    def __init__(
        self,
        *,
        aspect_ratio: str | None = None,
        image_size: str | None = None,
        response_modalities: list[str] | None = None,
        temperature: float | None = None,
        stream: bool | None = None,
        **kwargs: Any,
    ) -> None:
        family_params = {
            "aspect_ratio": aspect_ratio,
            "image_size": image_size,
            "response_modalities": response_modalities,
            "temperature": temperature,
            "stream": stream,
        }
        super().__init__(family_params=family_params, **kwargs)


__all__ = [
    "AIHubMixFluxOperator",
    "AIHubMixGeminiImageOperator",
    "AIHubMixIRAGOperator",
    "AIHubMixIdeogramOperator",
    "AIHubMixImagenOperator",
    "AIHubMixOpenAIImageOperator",
    "AIHubMixQwenImageOperator",
    "AIHubMixSeedreamOperator",
]
