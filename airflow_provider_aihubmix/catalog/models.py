"""The model catalog: what AIHubMix serves, where each model lives and what it can do.

The catalog changes monthly upstream, so :func:`resolve_model` lets an unknown
``provider/model_id`` through with a warning instead of blocking a user on a release.
"""

from __future__ import annotations

import re

from airflow_provider_aihubmix.catalog.limits import ModelLimits, PixelBounds, PromptLimit
from airflow_provider_aihubmix.catalog.passthrough import (
    FAMILY_PROVIDERS,
    PATH_RE,
    PROVIDER_ASYNC,
    family_model,
    warn_once,
)
from airflow_provider_aihubmix.catalog.spec import Endpoint, Family, ModelSpec

GENERAL_SIZES = ("1K", "2K", "4K", "auto")
QWEN_SIZES = ("512*1024", "768*512", "768*1024", "1024*576", "576*1024", "1024*1024")

# Seedream (Ark): total pixels and aspect ratio 1:16..16:1, no per-side cap (Ark's own 4K
# sizes include 5504x3040 and 6240x2656) [ark-seedream].
SEEDREAM_4_0_PIXELS = PixelBounds(min_pixels=1280 * 720, max_pixels=4096 * 4096, max_ratio=16)
SEEDREAM_4_5_PIXELS = PixelBounds(min_pixels=2560 * 1440, max_pixels=4096 * 4096, max_ratio=16)
SEEDREAM_RESPONSE_FORMATS = ("url", "base64_json", "b64_json")  # doc + MCP | Ark + Dify plugin
# Seedream 5.0 lite: 2K/3K (Ark), 4K on some gateways -- the union; at least 2560x1440 pixels, at
# most 4096x4096 (the 4K tier), ratio 1:16..16:1; output_format png/jpeg and the web_search tool
# are 5.0-lite only [ark-seedream-5-lite].
SEEDREAM_5_LITE_PIXELS = PixelBounds(min_pixels=2560 * 1440, max_pixels=4096 * 4096, max_ratio=16)
# Qianfan: width and height 512..2048 each [qianfan-image][lobe-chat-wenxin].
QIANFAN_PIXELS = PixelBounds(min_side=512, max_side=2048)
GPT_IMAGE_QUALITIES = ("low", "medium", "high", "auto")
# dall-e-3: standard/hd and the default auto [openai-openapi]; low/medium/high from the seed doc's
# general list [aihubmix-doc] -- sources disagree, so the union is accepted and sent unchanged.
DALL_E_3_QUALITIES = ("standard", "hd", "auto", "low", "medium", "high")

_OPENAI_SOURCES = (
    ("size", "openai-openapi; aihubmix-doc (1K/2K/4K/auto)"),
    ("quality", "openai-openapi; aihubmix-doc"),
    ("input_fidelity", "openai-openapi (edits only, not gpt-image-1-mini)"),
    ("prompt", "openai-openapi (32,000 characters for GPT image models)"),
)
_GPT_IMAGE = ModelLimits(
    qualities=GPT_IMAGE_QUALITIES, options=frozenset({"input_fidelity"}), sources=_OPENAI_SOURCES
)
_GPT_IMAGE_MINI = ModelLimits(qualities=GPT_IMAGE_QUALITIES, sources=_OPENAI_SOURCES)
# gpt-image-2: any size in 16 px steps, longest side 3840, at most 8,294,400 pixels, ratio up to
# 3:1; no transparent background [openai-gpt-image-2]. Called through predictions with OpenAI-style
# input (size, n, quality, moderation, background) [aihubmix-calls-2026-06].
GPT_IMAGE_2_PIXELS = PixelBounds(
    min_side=16, max_side=3840, max_pixels=8_294_400, max_ratio=3, multiple_of=16
)
_GPT_IMAGE_2 = ModelLimits(
    qualities=GPT_IMAGE_QUALITIES,
    pixels=GPT_IMAGE_2_PIXELS,
    backgrounds=("opaque", "auto"),
    sources=(
        ("size", "openai-gpt-image-2 (16 px steps, <= 3840 a side, <= 8,294,400 px, <= 3:1); aihubmix-doc"),
        ("background", "openai-gpt-image-2 (transparent not supported)"),
        ("quality", "openai-gpt-image-2; aihubmix-calls-2026-06 (high)"),
        ("moderation", "aihubmix-calls-2026-06 (low)"),
        ("prompt", "openai-openapi (32,000 characters for GPT image models)"),
    ),
)
_DALL_E_3 = ModelLimits(
    prompt=PromptLimit(4_000),  # [openai-openapi]
    qualities=DALL_E_3_QUALITIES,
    styles=("vivid", "natural"),  # [openai-openapi]
    response_formats=("url", "b64_json"),  # dall-e only [openai-openapi]
    sources=(
        ("prompt", "openai-openapi (4,000 characters for dall-e-3)"),
        ("quality", "openai-openapi (standard, hd, auto); aihubmix-doc (low, medium, high)"),
        ("style", "openai-openapi"),
        ("response_format", "openai-openapi"),
    ),
)
# Imagen: n has no effect, the count is sampleCount, default 4 [aihubmix-doc-cn][aihubmix-gemini-doc];
# the MCP sends sampleCount [aihubmix-mcp], the Dify plugin numberOfImages [dify-aihubmix-image].
_IMAGEN_SOURCES = (
    ("n", "aihubmix-doc-cn (sampleCount, default 4); aihubmix-mcp; dify-aihubmix-image (numberOfImages)"),
    ("aspect_ratio", "aihubmix-gemini-doc; dify-aihubmix-image; cherry-studio"),
    ("prompt", "vertex-imagen (480 tokens)"),
)
_IMAGEN = ModelLimits(prompt=PromptLimit(480, "tokens"), default_n=4, sources=_IMAGEN_SOURCES)
_QWEN_SOURCES = (
    ("size", "aihubmix-doc (presets, example 1024x1024); dify-aihubmix-image (1024x2048); lobe-chat-wenxin"),
    ("image", "aihubmix-doc (refer_image); aihubmix-mcp (image)"),
)
# Flux: flux-2 has width/height and safety_tolerance 0..5; Kontext has aspect_ratio, 0..6, up to
# 4 references (input_image..input_image_4) and "max 2 with an input image" [bfl-openapi][aihubmix-doc].
_FLUX_2_SOURCES = (
    ("safety_tolerance", "bfl-openapi (0..5); aihubmix-doc-cn (0..5)"),
    ("width", "bfl-openapi (>= 64, multiples of 16)"),
    ("height", "bfl-openapi (>= 64, multiples of 16)"),
    ("aspect_ratio", "aihubmix-mcp (sends it to flux-2); aihubmix-doc"),
    ("image", "bfl-openapi (input_image..input_image_8)"),
    ("output_format", "bfl-openapi (jpeg, png, webp)"),
)
_FLUX_2_PIXELS = PixelBounds(min_side=64, multiple_of=16)
_FLUX_2_PRO = ModelLimits(
    pixels=_FLUX_2_PIXELS, safety_tolerance=5, options=frozenset({"width", "height"}), sources=_FLUX_2_SOURCES
)
_FLUX_2_FLEX = ModelLimits(
    pixels=_FLUX_2_PIXELS,
    safety_tolerance=5,
    options=frozenset(
        {"width", "height", "steps", "guidance"}
    ),  # steps 1..50, guidance 1.5..10 [bfl-openapi]
    sources=(*_FLUX_2_SOURCES, ("steps", "bfl-openapi (flex only)"), ("guidance", "bfl-openapi (flex only)")),
)
_KONTEXT = ModelLimits(
    safety_tolerance=6,
    safety_tolerance_with_image=2,  # older AIHubMix doc: "max 2 for image-to-image" [aihubmix-doc]
    sources=(
        ("safety_tolerance", "bfl-openapi (0..6); aihubmix-doc (max 2 for image-to-image)"),
        ("aspect_ratio", "bfl-openapi (21:9..9:21)"),
        ("image", "bfl-openapi (input_image..input_image_4)"),
        ("output_format", "bfl-openapi (jpeg, png, webp)"),
    ),
)
_IRAG_SOURCES = (
    ("n", "qianfan-image (1..4); dify-aihubmix-image"),
    ("size", "qianfan-image (512x512..2048x2048); aihubmix-doc"),
    ("guidance", "dify-aihubmix-image (1..20)"),
)
_IRAG = ModelLimits(
    prompt=PromptLimit(220),  # irag-1.0 [qianfan-image]
    pixels=QIANFAN_PIXELS,
    sources=(*_IRAG_SOURCES, ("prompt", "qianfan-image (220 characters)")),
)
_IRAG_EDIT = ModelLimits(
    pixels=QIANFAN_PIXELS,
    sources=(*_IRAG_SOURCES, ("feature", "dify-aihubmix-image; lobe-chat-wenxin (image + feature)")),
)
_GEMINI = ModelLimits(
    sources=(
        ("image", "gemini-api (2.5 Flash Image: up to 3 inputs; Gemini 3: up to 14)"),
        ("image_size", "gemini-api (1K/2K/4K on Gemini 3, 512 on 3.1 Flash, none on 2.5)"),
        ("aspect_ratio", "gemini-api (10 ratios; 1:4, 4:1, 1:8, 8:1 on 3.1 Flash)"),
        ("n", "aihubmix-gemini-doc (one image per generateContent request)"),
    ),
)
_SEEDREAM_SOURCES = (
    ("response_format", "aihubmix-doc (base64_json); ark-seedream, dify-aihubmix-image (b64_json)"),
    ("image", "ark-seedream (up to 14 references)"),
)

_SPECS: tuple[ModelSpec, ...] = (
    # OpenAI: token-billed (usage in the response), so no per-image price.
    # gpt-image-2: POST /v1/models/openai/gpt-image-2/predictions, answer output.b64_json[].bytesBase64
    # and usage with output_tokens_details.image_tokens; ~90 s at high quality [aihubmix-calls-2026-06].
    ModelSpec("openai/gpt-image-2", Family.OPENAI, edit=True, max_reference_images=16, limits=_GPT_IMAGE_2),
    ModelSpec("openai/gpt-image-1.5", Family.OPENAI, edit=True, max_reference_images=16, limits=_GPT_IMAGE),
    ModelSpec("openai/gpt-image-1", Family.OPENAI, edit=True, max_reference_images=16, limits=_GPT_IMAGE),
    ModelSpec(
        "openai/gpt-image-1-mini", Family.OPENAI, edit=True, max_reference_images=16, limits=_GPT_IMAGE_MINI
    ),
    ModelSpec("openai/dall-e-3", Family.OPENAI, max_n=1, limits=_DALL_E_3),
    # Imagen: text-to-image only, 1-4 images per call (4 when unset), priced per image (prices.json).
    ModelSpec(
        "google/imagen-4.0-ultra-generate-001",
        Family.IMAGEN,
        max_n=4,  # GA Ultra: up to 4 [vertex-imagen]; cherry-studio caps Ultra at 1 -- union kept
        limits=_IMAGEN,
    ),
    ModelSpec("google/imagen-4.0-generate-001", Family.IMAGEN, max_n=4, limits=_IMAGEN),
    ModelSpec(
        "google/imagen-4.0-fast-generate-001",
        Family.IMAGEN,
        max_n=4,
        limits=_IMAGEN,
    ),
    ModelSpec(
        "google/imagen-4.0-fast-generate-preview-06-06",
        Family.IMAGEN,
        max_n=4,
        limits=_IMAGEN,
    ),
    ModelSpec("google/imagen-3.0-generate-002", Family.IMAGEN, max_n=4, limits=_IMAGEN),
    # Qwen: the doc's presets plus any Qianfan size 512..2048 a side, sent as the user wrote it.
    ModelSpec(
        "qianfan/qwen-image",
        Family.QWEN,
        max_reference_images=1,
        sizes=QWEN_SIZES,
        limits=ModelLimits(pixels=QIANFAN_PIXELS, sources=_QWEN_SOURCES),
    ),
    ModelSpec(
        "qianfan/qwen-image-edit",
        Family.QWEN,
        text_to_image=False,
        edit=True,
        max_reference_images=3,  # "single and multi-image fusion" [aihubmix-doc-cn]
        max_n=1,
        sizes=QWEN_SIZES,
        # Qianfan /v2/images/edits takes size [lobe-chat-wenxin].
        limits=ModelLimits(
            pixels=QIANFAN_PIXELS,
            sources=(("size", "lobe-chat-wenxin (size on /v2/images/edits)"), ("image", "aihubmix-doc-cn")),
        ),
    ),
    # Seedream: n is 1-10 like every model (the API reference); reference images + generated
    # images <= 15 (max_images, checked in the schema); 4.5 has no 1K and needs >= 2560x1440.
    # 5.0 lite: POST /v1/models/doubao/doubao-seedream-5.0-lite/predictions, answer output[].url
    # (signed, short-lived), input like 4.x plus tools [{"type": "web_search"}] [aihubmix-calls-2026-06].
    ModelSpec(
        "doubao/doubao-seedream-5.0-lite",
        Family.SEEDREAM,
        edit=True,
        max_reference_images=14,
        max_n=10,
        sizes=("2K", "3K", "4K"),
        limits=ModelLimits(
            pixels=SEEDREAM_5_LITE_PIXELS,
            response_formats=SEEDREAM_RESPONSE_FORMATS,
            output_formats=("png", "jpeg"),
            options=frozenset({"output_format", "tools"}),
            sources=(
                *_SEEDREAM_SOURCES,
                ("size", "ark-seedream-5-lite (2K/3K; 4K on some gateways; >= 3,686,400 pixels)"),
                ("output_format", "ark-seedream-5-lite (png, jpeg; 5.0 lite only)"),
                ("tools", "aihubmix-calls-2026-06; ark-seedream-5-lite ([{'type': 'web_search'}])"),
            ),
        ),
    ),
    ModelSpec(
        "doubao/doubao-seedream-4-5",
        Family.SEEDREAM,
        edit=True,
        max_reference_images=14,
        max_n=10,
        sizes=("2K", "4K", "auto"),
        aliases=("doubao-seedream-4-5-251128",),  # Ark's dated id [ark-model-ids]
        limits=ModelLimits(
            pixels=SEEDREAM_4_5_PIXELS,
            response_formats=SEEDREAM_RESPONSE_FORMATS,
            sources=(*_SEEDREAM_SOURCES, ("size", "ark-seedream (4.5: 3,686,400..16,777,216 pixels; 2K/4K)")),
        ),
    ),
    ModelSpec(
        "doubao/doubao-seedream-4-0",
        Family.SEEDREAM,
        edit=True,
        max_reference_images=14,
        max_n=10,
        sizes=GENERAL_SIZES,
        aliases=("doubao-seedream-4-0-250828",),  # Ark's dated id [ark-model-ids]
        limits=ModelLimits(
            pixels=SEEDREAM_4_0_PIXELS,
            response_formats=SEEDREAM_RESPONSE_FORMATS,
            sources=(
                *_SEEDREAM_SOURCES,
                ("size", "ark-seedream (4.0: 921,600..16,777,216 pixels; 1K/2K/4K)"),
            ),
        ),
    ),
    # Flux: predictions are async (a task id to poll); Kontext-pro is one-step on /v1/images/generations.
    ModelSpec(
        "bfl/flux-2-flex",
        Family.FLUX,
        is_async=True,
        edit=True,
        max_reference_images=8,
        max_n=1,
        limits=_FLUX_2_FLEX,
    ),
    ModelSpec(
        "bfl/flux-2-pro",
        Family.FLUX,
        is_async=True,
        edit=True,
        max_reference_images=8,
        max_n=1,
        limits=_FLUX_2_PRO,
    ),
    ModelSpec(
        "bfl/flux-kontext-max",
        Family.FLUX,
        is_async=True,
        edit=True,
        max_reference_images=4,
        max_n=1,
        limits=_KONTEXT,
    ),
    ModelSpec(
        "FLUX.1-Kontext-pro",
        Family.FLUX,
        endpoint=Endpoint.GENERATIONS,
        edit=True,
        max_reference_images=1,  # no client sends more on /v1/images/generations
        max_n=1,
        limits=_KONTEXT,
    ),
    # iRAG: irag-1.0 generates (one optional reference), ernie-irag-edit edits one image.
    ModelSpec("qianfan/irag-1.0", Family.IRAG, max_reference_images=1, max_n=4, limits=_IRAG),
    ModelSpec(
        "qianfan/ernie-irag-edit",
        Family.IRAG,
        text_to_image=False,
        edit=True,
        max_reference_images=1,
        max_n=4,
        limits=_IRAG_EDIT,
    ),
    # Ideogram V3 only; older versions are not served. num_images 1..8, FLASH..QUALITY [ideogram-openapi].
    ModelSpec(
        "ideogram/V3",
        Family.IDEOGRAM,
        max_reference_images=3,
        max_n=8,
        aliases=("ideogram-v3",),
        limits=ModelLimits(
            rendering_speeds=("FLASH", "TURBO", "DEFAULT", "QUALITY"),
            sources=(
                ("rendering_speed", "ideogram-openapi; cherry-studio; aihubmix-doc (QUALITY)"),
                ("n", "ideogram-openapi (num_images 1..8); cherry-studio (1..8)"),
                ("aspect_ratio", "ideogram-openapi; aihubmix-doc (2x1)"),
            ),
        ),
    ),
    # Gemini "Nano Banana": one image per generateContent request (n images = n requests), billed
    # per token. Reference limits and image sizes from Google's image-generation guide: 2.5 Flash
    # Image works best with up to 3 input images and answers at 1K only; the Gemini 3 models take up
    # to 14 references, 1K/2K/4K, and 3.1 Flash also 512.
    ModelSpec(
        "gemini-2.5-flash-image",
        Family.GEMINI,
        endpoint=Endpoint.GENERATE_CONTENT,
        edit=True,
        max_reference_images=3,
        sizes=(),
        aliases=("nano-banana",),
        limits=_GEMINI,
    ),
    ModelSpec(
        "gemini-3-pro-image-preview",
        Family.GEMINI,
        endpoint=Endpoint.GENERATE_CONTENT,
        edit=True,
        max_reference_images=14,
        sizes=("1K", "2K", "4K"),
        aliases=("nano-banana-pro",),
        limits=_GEMINI,
    ),
    ModelSpec(
        "gemini-3.1-flash-image-preview",
        Family.GEMINI,
        endpoint=Endpoint.GENERATE_CONTENT,
        edit=True,
        max_reference_images=14,
        sizes=("512", "1K", "2K", "4K"),
        aliases=("nano-banana-2",),
        limits=_GEMINI,
    ),
)

CATALOG: dict[str, ModelSpec] = {spec.path: spec for spec in _SPECS}

_BY_NAME: dict[str, ModelSpec] = {}
for _spec in _SPECS:
    # An alias is found bare and under the row's provider (doubao/doubao-seedream-4-5-251128).
    _prefixed = tuple(f"{_spec.provider}/{a}" for a in _spec.aliases if _spec.provider)
    for _key in (_spec.path, _spec.model_id, *_spec.aliases, *_prefixed):
        _BY_NAME[_key.lower()] = _spec

# A Gemini image model the catalog does not list yet ("gemini-3.5-flash-image"): the Gemini route.
_GEMINI_IMAGE_RE = re.compile(r"^gemini-[a-z0-9._-]*image[a-z0-9._-]*$", re.IGNORECASE)
GEMINI_PASS_THROUGH_SIZES = ("512", "1K", "2K", "4K")
GEMINI_PASS_THROUGH_REFERENCES = 14


class UnknownModelError(ValueError):
    """The model is neither in the catalog nor a ``provider/model_id`` path."""


def catalog_models() -> list[str]:
    return sorted(CATALOG)


def resolve_model(model: str, *, warn: bool = True, family: Family | None = None) -> ModelSpec:
    """Return the spec for ``model`` (short name, alias or ``provider/model_id``).

    With ``family`` (a family operator), a model of that family's provider that the catalog does
    not list (``openai/gpt-image-3`` or bare ``gpt-image-3``) gets that family's schema and wire
    names with the family's widest limits (warned once per process); a catalog model of another
    family or a path of another provider is returned as the catalog or pass-through has it, for the
    caller to refuse. Without ``family``, an unknown ``provider/model_id`` is passed through as a
    generic model (warned once); anything else unknown raises :class:`UnknownModelError`.
    """
    if not isinstance(model, str) or not model.strip():
        raise UnknownModelError(
            f"Parameter 'model' must be a non-empty string; catalog models: {', '.join(catalog_models())}"
        )
    key = model.strip()
    spec = _BY_NAME.get(key.lower())
    if spec is not None:
        return spec
    if family is not None and family is not Family.GEMINI:
        found = family_model(key, family, models_in_family(family), warn=warn)
        if found is not None:
            return found
    if _GEMINI_IMAGE_RE.match(key):
        if warn:
            warn_once(
                "gemini",
                key,
                "Gemini model %r is not in the AIHubMix catalog; sending it to the Gemini route with "
                "the widest Gemini limits.",
                key,
            )
        return ModelSpec(
            key,
            Family.GEMINI,
            endpoint=Endpoint.GENERATE_CONTENT,
            edit=True,
            max_reference_images=GEMINI_PASS_THROUGH_REFERENCES,
            sizes=GEMINI_PASS_THROUGH_SIZES,
            known=False,
        )
    if PATH_RE.match(key):
        if warn:
            warn_once(
                "generic",
                key,
                "Model %r is not in the AIHubMix catalog; passing it through with only general "
                "parameter checks.",
                key,
            )
        provider = key.split("/", 1)[0].lower()
        return ModelSpec(
            key,
            Family.GENERIC,
            is_async=provider in PROVIDER_ASYNC,
            edit=True,
            max_reference_images=16,
            known=False,
        )
    raise UnknownModelError(
        f"Parameter 'model' got unknown model {model!r}. Use a catalog model "
        f"({', '.join(sorted(s.model_id for s in _SPECS))}), a 'provider/model_id' path to pass "
        "a new model through, or a 'gemini-...-image...' name for a new Gemini image model."
    )


def models_in_family(family: Family) -> list[ModelSpec]:
    return [spec for spec in _SPECS if spec.family is family]


__all__ = [
    "CATALOG",
    "FAMILY_PROVIDERS",
    "Endpoint",
    "Family",
    "ModelSpec",
    "UnknownModelError",
    "catalog_models",
    "models_in_family",
    "resolve_model",
]
