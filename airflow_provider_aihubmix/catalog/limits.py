"""Per-model rules the catalog carries: size bounds, prompt limits, values, and their public sources.

Models of one family differ (Seedream 4.5 needs more pixels than 4.0, flux-2 takes width and
height where Kontext takes an aspect ratio): those differences are data on each catalog row,
read by the family schemas, the sandbox-independent docs page and the cost estimate.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PixelBounds:
    """Bounds for an explicit ``WxH`` size (either ``x`` or ``*`` between the sides).

    ``None`` leaves a bound open: Ark gives Seedream a total-pixel range and an aspect-ratio
    range but no per-side cap, Qianfan gives each side a range.
    """

    min_side: int = 1
    max_side: int | None = None
    min_pixels: int = 1
    max_pixels: int | None = None
    max_ratio: float | None = None
    multiple_of: int = 1

    def problem(self, width: int, height: int) -> str | None:
        """Why ``width`` x ``height`` is outside these bounds, or ``None``."""
        if width < self.min_side or height < self.min_side:
            return f"a side is below {self.min_side} pixels"
        if self.max_side is not None and max(width, height) > self.max_side:
            return f"a side is above {self.max_side} pixels"
        if width % self.multiple_of or height % self.multiple_of:
            return f"sides must be multiples of {self.multiple_of}"
        pixels = width * height
        if pixels < self.min_pixels:
            return f"{pixels:,} pixels is below the minimum of {self.min_pixels:,}"
        if self.max_pixels is not None and pixels > self.max_pixels:
            return f"{pixels:,} pixels is above the maximum of {self.max_pixels:,}"
        if self.max_ratio is not None and max(width, height) / min(width, height) > self.max_ratio:
            return f"the aspect ratio is beyond {self.max_ratio:g}:1"
        return None

    def describe(self) -> str:
        parts = [
            f"each side {self.min_side}..{self.max_side}" if self.max_side else f"sides >= {self.min_side}"
        ]
        if self.multiple_of > 1:
            parts.append(f"multiples of {self.multiple_of}")
        if self.min_pixels > 1 or self.max_pixels is not None:
            top = f"{self.max_pixels:,}" if self.max_pixels is not None else "any"
            parts.append(f"{self.min_pixels:,}..{top} pixels in total")
        if self.max_ratio is not None:
            parts.append(f"aspect ratio at most {self.max_ratio:g}:1")
        return f"'WxH' ({', '.join(parts)})"


@dataclass(frozen=True)
class PromptLimit:
    """A prompt-length limit and its unit. Token limits are the vendor's tokenizer's: recorded for
    the docs, not counted here (a character count cannot stand in for them)."""

    length: int = 32_000
    unit: str = "characters"

    @property
    def checked(self) -> bool:
        return self.unit == "characters"


@dataclass(frozen=True)
class ModelLimits:
    """What differs between models of one family: values, bounds and wire names.

    ``None`` means "the family's rule". ``sources`` names, per parameter, the public source of
    the model's rule (shown on the generated parameters page). ``default_n`` is how many images
    the upstream makes when no count is sent (Imagen makes 4): the cost estimate and manifest use it.
    """

    prompt: PromptLimit = field(default_factory=PromptLimit)
    default_n: int = 1
    sizes: tuple[str, ...] | None = None
    pixels: PixelBounds | None = None
    qualities: tuple[str, ...] | None = None
    styles: tuple[str, ...] | None = None
    response_formats: tuple[str, ...] | None = None
    safety_tolerance: int | None = None  # the maximum, 0..N
    safety_tolerance_with_image: int | None = None  # the maximum with an input image, where a source says
    rendering_speeds: tuple[str, ...] | None = None
    backgrounds: tuple[str, ...] | None = None
    output_formats: tuple[str, ...] | None = None
    options: frozenset[str] = frozenset()  # optional parameters only this model takes
    sources: tuple[tuple[str, str], ...] = ()

    def source(self, parameter: str) -> str | None:
        return dict(self.sources).get(parameter)


# Public sources, cited by short name in the rules below and on docs/PARAMETERS.md.
SOURCES: dict[str, str] = {
    "aihubmix-doc": "docs.aihubmix.com/pt/api/Image-Gen (the page the catalog was first written from)",
    "aihubmix-doc-cn": "docs.aihubmix.com/cn/api/Image-Gen (current CN page)",
    "aihubmix-gemini-doc": "docs.aihubmix.com/cn/api/Multimodal-Interaction-with-Gemini",
    "aihubmix-mcp": "AIhubmix/aihubmix packages/mcp/src/tools/painting-tools.ts",
    "dify-aihubmix-image": "langgenius/dify-plugins aihubmix/aihubmix-image/tools",
    "cherry-studio": "CherryHQ/cherry-studio src/renderer/src/pages/paintings/providers/aihubmix",
    "openai-openapi": "OpenAI OpenAPI spec: CreateImageRequest, CreateImageEditRequest",
    "bfl-openapi": "BFL OpenAPI spec (api.bfl.ai/openapi.json): Flux2Inputs, FluxKontextProInputs",
    "ideogram-openapi": "Ideogram OpenAPI spec: /v1/ideogram-v3/generate",
    "vertex-imagen": "cloud.google.com Vertex AI Imagen 4 model pages",
    "ark-seedream": "Volcengine Ark Seedream 4.0/4.5 image generation reference",
    "qianfan-image": "Baidu Qianfan image generation reference (irag-1.0, /v2/images/edits)",
    "lobe-chat-wenxin": "lobehub/lobe-chat model-runtime wenxin createImage.ts",
    "dashscope-qwen-image": "DashScope qwen-image reference",
    "gemini-api": "ai.google.dev Gemini API: image generation guide, GenerateContentRequest, ImageConfig",
    "aihubmix-calls-2026-06": (
        "a public write-up of real AIHubMix calls, 2026-06 (predictions for openai/gpt-image-2 and "
        "doubao/doubao-seedream-5.0-lite, Gemini :streamGenerateContent with thoughtSignature)"
    ),
    "openai-gpt-image-2": (
        "OpenAI gpt-image-2 model page and image generation guide, as republished (sizes in 16 px "
        "steps, longest side 3840, at most 8,294,400 pixels, ratio up to 3:1; no transparent background)"
    ),
    "ark-seedream-5-lite": (
        "Volcengine Ark / BytePlus Seedream 5.0 lite reference, as republished (2K/3K, 4K on some "
        "gateways; 3,686,400.. pixels; output_format png/jpeg; tools web_search)"
    ),
    "ark-model-ids": "Volcengine Ark dated ids (doubao-seedream-4-5-251128, doubao-seedream-4-0-250828)",
}
