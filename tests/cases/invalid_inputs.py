"""Inputs that must be refused before any HTTP call, with the words the error must contain.

Plain data shared by the schema unit tests and the hook tests against the sandbox (which
assert that none of these sends a request). Image references are already resolved
(``https://`` URLs or ``data:`` URIs), so a case fails on its own point, not on resolving.
Every case names at least the parameter and the model (``spec.name``) in its fragments.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class InvalidInput:
    id: str
    model: str
    params: Mapping[str, Any]
    extra_input: Mapping[str, Any] | None
    expected_fragments: tuple[str, ...]


CAT = "https://images.example.com/cat.png"
DOG = "https://images.example.com/dog.png"
PIXEL = (  # a 1x1 PNG
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)
PROMPT = "a lighthouse at dawn, watercolour"
NEW_MODEL = "acme/new-image-model"  # not in the catalog: passed through as the generic family

INVALID_INPUTS: list[InvalidInput] = [
    # --- OpenAI ------------------------------------------------------------------------
    InvalidInput(
        "openai-size-not-offered",
        "gpt-image-1",
        {"prompt": PROMPT, "size": "800x600"},
        None,
        ("'size'", "gpt-image-1", "1024x1536", "allowed"),
    ),
    InvalidInput(
        "openai-quality-unknown",
        "gpt-image-1.5",
        {"prompt": PROMPT, "quality": "ultra"},
        None,
        ("'quality'", "gpt-image-1.5", "low, medium, high"),
    ),
    InvalidInput(
        "openai-n-above-ten",
        "gpt-image-1-mini",
        {"prompt": PROMPT, "n": 11},
        None,
        ("'n'", "gpt-image-1-mini", "1..10"),
    ),
    InvalidInput(
        "openai-moderation-with-image",
        "gpt-image-1",
        {"prompt": PROMPT, "image": CAT, "moderation": "low"},
        None,
        ("'moderation'", "'image'", "gpt-image-1", "image-to-image"),
    ),
    InvalidInput(
        "openai-output-format-gif",
        "gpt-image-1",
        {"prompt": PROMPT, "output_format": "gif"},
        None,
        ("'output_format'", "gpt-image-1", "png, jpeg, webp"),
    ),
    InvalidInput(
        "openai-background-unknown",
        "gpt-image-1.5",
        {"prompt": PROMPT, "background": "clear"},
        None,
        ("'background'", "gpt-image-1.5", "transparent, opaque, auto"),
    ),
    InvalidInput(
        "openai-output-compression-above-100",
        "gpt-image-1",
        {"prompt": PROMPT, "output_format": "webp", "output_compression": 101},
        None,
        ("'output_compression'", "gpt-image-1", "0..100"),
    ),
    InvalidInput(
        "openai-input-fidelity-medium",
        "gpt-image-1",
        {"prompt": PROMPT, "image": CAT, "input_fidelity": "medium"},
        None,
        ("'input_fidelity'", "gpt-image-1", "high, low"),
    ),
    InvalidInput(
        "openai-transparent-jpeg",
        "gpt-image-1",
        {"prompt": PROMPT, "background": "transparent", "output_format": "jpeg"},
        None,
        ("'background'", "'output_format'", "gpt-image-1", "png or webp"),
    ),
    InvalidInput(
        "openai-prompt-typo",
        "gpt-image-1",
        {"promt": PROMPT},
        None,
        ("'promt'", "did you mean 'prompt'", "gpt-image-1", "allowed parameters"),
    ),
    InvalidInput(
        "openai-prompt-missing",
        "gpt-image-1.5",
        {"size": "1024x1024"},
        None,
        ("'prompt'", "required", "gpt-image-1.5"),
    ),
    InvalidInput(
        "openai-prompt-blank",
        "gpt-image-1",
        {"prompt": "   "},
        None,
        ("'prompt'", "empty", "gpt-image-1"),
    ),
    InvalidInput(
        "openai-prompt-too-long",
        "gpt-image-1-mini",
        {"prompt": "x" * 32_001},
        None,
        ("'prompt'", "too long", "32000", "gpt-image-1-mini"),
    ),
    InvalidInput(
        "openai-n-not-a-number",
        "gpt-image-1",
        {"prompt": PROMPT, "n": "abc"},
        None,
        ("'n'", "not an integer", "gpt-image-1"),
    ),
    InvalidInput(
        "openai-seed-belongs-elsewhere",
        "gpt-image-1",
        {"prompt": PROMPT, "seed": 42},
        None,
        ("'seed'", "gpt-image-1", "allowed parameters"),
    ),
    InvalidInput(
        "dalle3-two-images",
        "dall-e-3",
        {"prompt": PROMPT, "n": 2},
        None,
        ("'n'", "dall-e-3", "1..1"),
    ),
    InvalidInput(
        "dalle3-reference-image",
        "dall-e-3",
        {"prompt": PROMPT, "image": CAT},
        None,
        ("'image'", "dall-e-3", "text-to-image"),
    ),
    InvalidInput(
        "dalle3-gpt-image-size",
        "dall-e-3",
        {"prompt": PROMPT, "size": "1536x1024"},
        None,
        ("'size'", "dall-e-3", "1792x1024"),
    ),
    # --- Imagen ------------------------------------------------------------------------
    InvalidInput(
        "imagen-five-images",
        "imagen-4.0-generate-001",
        {"prompt": PROMPT, "n": 5},
        None,
        ("'n'", "imagen-4.0-generate-001", "1..4"),
    ),
    InvalidInput(
        "imagen-aspect-ratio-21-9",
        "imagen-4.0-ultra-generate-001",
        {"prompt": PROMPT, "aspect_ratio": "21:9"},
        None,
        ("'aspect_ratio'", "imagen-4.0-ultra-generate-001", "16:9"),
    ),
    InvalidInput(
        "imagen-size-on-fast-model",
        "imagen-4.0-fast-generate-001",
        {"prompt": PROMPT, "size": "2K"},
        None,
        ("'size'", "imagen-4.0-fast-generate-001", "imagen-4.0-generate-001"),
    ),
    InvalidInput(
        "imagen-size-4k",
        "imagen-4.0-ultra-generate-001",
        {"prompt": PROMPT, "size": "4K"},
        None,
        ("'size'", "imagen-4.0-ultra-generate-001", "1K, 2K"),
    ),
    InvalidInput(
        "imagen-reference-image",
        "imagen-3.0-generate-002",
        {"prompt": PROMPT, "image": CAT},
        None,
        ("'image'", "imagen-3.0-generate-002", "no reference images"),
    ),
    InvalidInput(
        "imagen-extra-wire-name-out-of-range",
        "imagen-4.0-fast-generate-preview-06-06",
        {"prompt": PROMPT},
        {"numberOfImages": 7},
        ("'numberOfImages'", "'n'", "imagen-4.0-fast-generate-preview-06-06", "1..4"),
    ),
    InvalidInput(
        "imagen-n-given-twice",
        "imagen-4.0-generate-001",
        {"prompt": PROMPT, "n": 2},
        {"numberOfImages": 3},
        ("'n'", "'numberOfImages'", "twice", "imagen-4.0-generate-001"),
    ),
    # --- Qwen --------------------------------------------------------------------------
    InvalidInput(
        "qwen-general-size",
        "qwen-image",
        {"prompt": PROMPT, "size": "2K"},
        None,
        ("'size'", "qwen-image", "1024*1024", "512*1024"),
    ),
    InvalidInput(
        "qwen-edit-size-beyond-qianfan",  # Qianfan: each side 512..2048 (lobe-chat wenxin)
        "qwen-image-edit",
        {"prompt": PROMPT, "image": CAT, "size": "4096x4096"},
        None,
        ("'size'", "qwen-image-edit", "512..2048"),
    ),
    InvalidInput(
        "qwen-edit-without-image",
        "qwen-image-edit",
        {"prompt": PROMPT},
        None,
        ("'image'", "qwen-image-edit", "required"),
    ),
    InvalidInput(
        "qwen-edit-four-images",
        "qwen-image-edit",
        {"prompt": PROMPT, "image": [CAT, DOG, CAT, DOG]},
        None,
        ("'image'", "qwen-image-edit", "1..3"),
    ),
    InvalidInput(
        "qwen-seed-negative",
        "qwen-image",
        {"prompt": PROMPT, "seed": -1},
        None,
        ("'seed'", "qwen-image", "0..2147483647"),
    ),
    InvalidInput(
        "qwen-watermark-not-boolean",
        "qwen-image",
        {"prompt": PROMPT, "watermark": "maybe"},
        None,
        ("'watermark'", "qwen-image", "true or false"),
    ),
    InvalidInput(
        "qwen-image-two-references",
        "qwen-image",
        {"prompt": PROMPT, "image": [CAT, DOG]},
        None,
        ("'image'", "qwen-image", "1..1"),
    ),
    # --- Seedream ----------------------------------------------------------------------
    InvalidInput(
        "seedream45-size-1k",
        "doubao-seedream-4-5",
        {"prompt": PROMPT, "size": "1K"},
        None,
        ("'size'", "doubao-seedream-4-5", "allowed: 2K, 4K, auto"),
    ),
    InvalidInput(
        "seedream-max-images-with-disabled",
        "doubao-seedream-4-0",
        {"prompt": PROMPT, "sequential_image_generation": "disabled", "max_images": 4},
        None,
        ("'max_images'", "'sequential_image_generation'", "doubao-seedream-4-0"),
    ),
    InvalidInput(
        "seedream-references-plus-max-images",
        "doubao-seedream-4-0",
        {"prompt": PROMPT, "image": [CAT] * 10, "max_images": 8},
        None,
        ("'image'", "'max_images'", "doubao-seedream-4-0", "<= 15"),
    ),
    InvalidInput(
        "seedream-references-plus-n",
        "doubao-seedream-4-5",
        {"prompt": PROMPT, "image": [CAT] * 14, "n": 2},
        None,
        ("'image'", "'n'", "doubao-seedream-4-5", "<= 15"),
    ),
    InvalidInput(
        "seedream-stream-true",
        "doubao-seedream-4-0",
        {"prompt": PROMPT, "stream": True},
        None,
        ("'stream'", "doubao-seedream-4-0", "streamed", "false"),
    ),
    InvalidInput(
        "seedream-response-format-png",
        "doubao-seedream-4-0",
        {"prompt": PROMPT, "response_format": "png"},
        None,
        ("'response_format'", "doubao-seedream-4-0", "url, base64_json"),
    ),
    InvalidInput(
        "seedream-seed-below-minus-one",
        "doubao-seedream-4-5",
        {"prompt": PROMPT, "seed": -2},
        None,
        ("'seed'", "doubao-seedream-4-5", "-1..2147483647"),
    ),
    InvalidInput(
        "seedream-max-images-16",
        "doubao-seedream-4-0",
        {"prompt": PROMPT, "max_images": 16},
        None,
        ("'max_images'", "doubao-seedream-4-0", "1..15"),
    ),
    InvalidInput(
        "seedream-pixels-too-small",
        "doubao-seedream-4-0",
        {"prompt": PROMPT, "size": "100x100"},
        None,
        ("'size'", "doubao-seedream-4-0", "WxH"),
    ),
    InvalidInput(
        "seedream-sequential-unknown",
        "doubao-seedream-4-0",
        {"prompt": PROMPT, "sequential_image_generation": "sometimes"},
        None,
        ("'sequential_image_generation'", "doubao-seedream-4-0", "auto, disabled"),
    ),
    InvalidInput(
        "seedream-extra-nested-max-images",
        "doubao-seedream-4-5",
        {"prompt": PROMPT},
        {"sequential_image_generation_options": {"max_images": 20}},
        ("'sequential_image_generation_options'", "'max_images'", "doubao-seedream-4-5", "1..15"),
    ),
    # --- Flux --------------------------------------------------------------------------
    InvalidInput(
        "flux-2-safety-tolerance-6",  # BFL Flux2Inputs: 0..5
        "flux-2-pro",
        {"prompt": PROMPT, "safety_tolerance": 6},
        None,
        ("'safety_tolerance'", "flux-2-pro", "0..5"),
    ),
    InvalidInput(
        "flux-safety-tolerance-with-image",
        "flux-kontext-max",
        {"prompt": PROMPT, "image": CAT, "safety_tolerance": 3},
        None,
        ("'safety_tolerance'", "'image'", "flux-kontext-max", "0..2"),
    ),
    InvalidInput(
        "flux-two-images-per-call",
        "flux-2-flex",
        {"prompt": PROMPT, "n": 2},
        None,
        ("'n'", "flux-2-flex", "1..1"),
    ),
    InvalidInput(
        "flux-aspect-ratio-too-wide",
        "flux-2-pro",
        {"prompt": PROMPT, "aspect_ratio": "50:1"},
        None,
        ("'aspect_ratio'", "flux-2-pro", "21:9"),
    ),
    InvalidInput(
        "flux-raw-not-boolean",
        "flux-2-pro",
        {"prompt": PROMPT, "raw": "sometimes"},
        None,
        ("'raw'", "flux-2-pro", "true or false"),
    ),
    InvalidInput(
        "flux-2-width-not-multiple-of-16",  # BFL Flux2Inputs: width/height multiples of 16
        "flux-2-flex",
        {"prompt": PROMPT, "width": 1000, "height": 1024},
        None,
        ("'width'", "flux-2-flex", "multiples of 16"),
    ),
    InvalidInput(
        "flux-kontext-max-five-references",  # BFL Kontext: input_image..input_image_4
        "flux-kontext-max",
        {"prompt": PROMPT, "image": [CAT, DOG, CAT, DOG, CAT]},
        None,
        ("'image'", "flux-kontext-max", "1..4"),
    ),
    InvalidInput(
        "flux-output-format-gif",  # BFL OutputFormat: jpeg, png, webp
        "flux-2-pro",
        {"prompt": PROMPT, "output_format": "gif"},
        None,
        ("'output_format'", "flux-2-pro", "png, jpeg, webp"),
    ),
    InvalidInput(
        "flux-kontext-pro-safety-tolerance-9",
        "FLUX.1-Kontext-pro",
        {"prompt": PROMPT, "safety_tolerance": 9},
        None,
        ("'safety_tolerance'", "FLUX.1-Kontext-pro", "0..6"),
    ),
    InvalidInput(
        "flux2-nine-references",
        "flux-2-pro",
        {"prompt": PROMPT, "image": [CAT] * 9},
        None,
        ("'image'", "flux-2-pro", "1..8"),
    ),
    InvalidInput(
        "flux-extra-overwrites-built-reference",
        "flux-2-flex",
        {"prompt": PROMPT, "image": [CAT, DOG]},
        {"input_image_2": PIXEL},
        ("'input_image_2'", "'image'", "flux-2-flex"),
    ),
    # --- iRAG --------------------------------------------------------------------------
    InvalidInput(
        "irag-guidance-above-20",  # AIHubMix's Dify plugin: 1.0..20.0
        "irag-1.0",
        {"prompt": PROMPT, "guidance": 21},
        None,
        ("'guidance'", "irag-1.0", "1..20"),
    ),
    InvalidInput(
        "irag-size-unknown",
        "irag-1.0",
        {"prompt": PROMPT, "size": "huge"},
        None,
        ("'size'", "irag-1.0", "1K, 2K, 4K, auto"),
    ),
    InvalidInput(
        "irag-edit-without-image",
        "ernie-irag-edit",
        {"prompt": PROMPT, "mode": "variation"},
        None,
        ("'image'", "ernie-irag-edit", "required"),
    ),
    InvalidInput(
        "irag-edit-erase-without-mask",
        "ernie-irag-edit",
        {"prompt": PROMPT, "image": CAT, "feature": "erase"},
        None,
        ("'feature'", "'mask'", "ernie-irag-edit"),
    ),
    InvalidInput(
        "irag-edit-mode-unknown",
        "ernie-irag-edit",
        {"prompt": PROMPT, "image": CAT, "mode": "outpaint"},
        None,
        ("'mode'", "ernie-irag-edit", "erase, repaint, variation"),
    ),
    InvalidInput(
        "irag-mask-on-generator",
        "irag-1.0",
        {"prompt": PROMPT, "mask": PIXEL},
        None,
        ("'mask'", "irag-1.0", "ernie-irag-edit"),
    ),
    InvalidInput(
        "irag-guidance-not-a-number",
        "irag-1.0",
        {"prompt": PROMPT, "guidance": "lots"},
        None,
        ("'guidance'", "irag-1.0", "not a number"),
    ),
    # --- Ideogram ----------------------------------------------------------------------
    InvalidInput(
        "ideogram-rendering-speed-fast",
        "ideogram/V3",
        {"prompt": PROMPT, "rendering_speed": "FAST"},
        None,
        ("'rendering_speed'", "V3", "TURBO, DEFAULT, QUALITY"),
    ),
    InvalidInput(
        "ideogram-aspect-ratio-7x1",
        "ideogram/V3",
        {"prompt": PROMPT, "aspect_ratio": "7x1"},
        None,
        ("'aspect_ratio'", "V3", "16x9", "2x1"),
    ),
    InvalidInput(
        "ideogram-nine-images",  # Ideogram NumImages: 1..8
        "ideogram/V3",
        {"prompt": PROMPT, "n": 9},
        None,
        ("'n'", "V3", "1..8"),
    ),
    InvalidInput(
        "ideogram-magic-prompt-maybe",
        "ideogram/V3",
        {"prompt": PROMPT, "magic_prompt": "MAYBE"},
        None,
        ("'magic_prompt'", "V3", "AUTO, ON, OFF"),
    ),
    InvalidInput(
        "ideogram-style-type-anime",
        "ideogram/V3",
        {"prompt": PROMPT, "style_type": "ANIME"},
        None,
        ("'style_type'", "V3", "REALISTIC"),
    ),
    InvalidInput(
        "ideogram-four-references",
        "ideogram/V3",
        {"prompt": PROMPT, "image": [CAT, DOG, CAT, DOG]},
        None,
        ("'image'", "V3", "1..3"),
    ),
    InvalidInput(
        "ideogram-safety-tolerance-belongs-to-flux",
        "ideogram/V3",
        {"prompt": PROMPT, "safety_tolerance": 2},
        None,
        ("'safety_tolerance'", "V3", "flux"),
    ),
    # --- Gemini ("Nano Banana") --------------------------------------------------------
    InvalidInput(
        "gemini-extreme-ratio-on-flash",
        "gemini-2.5-flash-image",
        {"prompt": PROMPT, "aspect_ratio": "8:1"},
        None,
        ("'aspect_ratio'", "gemini-2.5-flash-image", "21:9"),
    ),
    InvalidInput(
        "gemini-image-size-on-flash",
        "gemini-2.5-flash-image",
        {"prompt": PROMPT, "image_size": "2K"},
        None,
        ("'image_size'", "gemini-2.5-flash-image", "Gemini 3"),
    ),
    InvalidInput(
        "gemini-512-on-pro",
        "gemini-3-pro-image-preview",
        {"prompt": PROMPT, "size": "512"},
        None,
        ("'image_size'", "gemini-3-pro-image-preview", "1K, 2K, 4K"),
    ),
    InvalidInput(
        "gemini-four-references-on-flash",
        "gemini-2.5-flash-image",
        {"prompt": PROMPT, "image": [CAT, DOG, CAT, DOG]},
        None,
        ("'image'", "gemini-2.5-flash-image", "1..3"),
    ),
    InvalidInput(
        "gemini-text-only-modalities",
        "gemini-3.1-flash-image-preview",
        {"prompt": PROMPT, "response_modalities": ["TEXT"]},
        None,
        ("'response_modalities'", "gemini-3.1-flash-image-preview", "IMAGE"),
    ),
    InvalidInput(
        "gemini-temperature-too-hot",
        "gemini-3-pro-image-preview",
        {"prompt": PROMPT, "temperature": 5},
        None,
        ("'temperature'", "gemini-3-pro-image-preview", "0..2"),
    ),
    # --- Generic (a model passed through) ----------------------------------------------
    InvalidInput(
        "generic-prompt-missing",
        NEW_MODEL,
        {"size": "1K"},
        None,
        ("'prompt'", "new-image-model", "required"),
    ),
    InvalidInput(
        "generic-n-zero",
        NEW_MODEL,
        {"prompt": PROMPT, "n": 0},
        None,
        ("'n'", "new-image-model", "1..10"),
    ),
    InvalidInput(
        "generic-n-eleven-in-extra-input",
        NEW_MODEL,
        {"prompt": PROMPT},
        {"n": 11},
        ("'n'", "new-image-model", "1..10"),
    ),
    InvalidInput(
        "generic-image-not-a-url",
        NEW_MODEL,
        {"prompt": PROMPT, "image": "ftp://images.example.com/cat.png"},
        None,
        ("'image'", "new-image-model", "data:"),
    ),
    InvalidInput(
        "generic-key-given-twice",
        NEW_MODEL,
        {"prompt": PROMPT, "style": "vivid"},
        {"style": "natural"},
        ("'style'", "new-image-model", "twice"),
    ),
    InvalidInput(
        "generic-extra-not-json",
        NEW_MODEL,
        {"prompt": PROMPT},
        {"cfg_scale": float("nan")},
        ("'cfg_scale'", "new-image-model", "JSON"),
    ),
    InvalidInput(
        "generic-prompt-not-a-string",
        NEW_MODEL,
        {"prompt": 42},
        None,
        ("'prompt'", "new-image-model", "not a string"),
    ),
]
