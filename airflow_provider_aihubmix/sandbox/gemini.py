"""``POST /gemini/v1beta/models/<model>:generateContent`` (and ``:streamGenerateContent``): Google's
native API as AIHubMix serves it.

Written from Google's public Gemini API reference (``models.generateContent``,
``GenerateContentRequest``, ``GenerationConfig``, ``ImageConfig``, ``Candidate``,
``PromptFeedback``, ``UsageMetadata``, the image-generation guide), not from the client:

* the key comes in ``x-goog-api-key`` (or Google's ``?key=`` query; the request log keeps
  both, so a test can prove the client never uses the query). ``Authorization`` is not read.
* unknown fields are refused the way Google refuses them (``Invalid JSON payload received.
  Unknown name ...``); every ``inlineData`` part must be base64 of a real image;
  ``aspectRatio`` / ``imageSize`` / the number of input images are checked per model.
* the answer is a ``GenerateContentResponse``: one candidate whose parts are a short
  commentary (unless ``responseModalities`` is ``["IMAGE"]``) and one PNG ``inlineData``
  part, ``finishReason: STOP``, and ``usageMetadata`` with Google's per-image token counts.
* errors are Google's ``{"error": {"code", "message", "status"}}``.
* ``:streamGenerateContent`` (without ``alt=sse``) answers the same content as a JSON **array** of
  ``GenerateContentResponse`` chunks, as AIHubMix's users see it; Gemini 3 image parts carry a
  ``thoughtSignature`` beside the image (:func:`thought_signature`).

Prompt tokens for the refusal shapes (all HTTP 200): ``sandbox:block=<REASON>`` (no
candidates, ``promptFeedback.blockReason``), ``sandbox:finish=<REASON>`` (a candidate with
that ``finishReason`` and no image; ``NO_IMAGE`` carries a text part), ``sandbox:text-only``
(``STOP`` with text and no image).
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from airflow_provider_aihubmix.sandbox.errors import ApiError, json_response
from airflow_provider_aihubmix.sandbox.images import image_seed
from airflow_provider_aihubmix.sandbox.state import SandboxState

GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
EXTREME_RATIOS = ("1:4", "4:1", "1:8", "8:1")
# Output tokens of one image by imageSize (Google's pricing notes; None = not given).
_FLASH_3_TOKENS: dict[str | None, int] = {None: 1120, "512": 747, "1K": 1120, "2K": 1680, "4K": 2520}
# Per model (Google's image-generation guide): input images, aspect ratios, sizes -> output tokens.
# Other gemini-*image* names get the widest limits.
MODELS: dict[str, tuple[int, tuple[str, ...], dict[str | None, int]]] = {
    "gemini-2.5-flash-image": (3, RATIOS, {None: 1290}),
    "gemini-3-pro-image-preview": (14, RATIOS, {None: 1120, "1K": 1120, "2K": 1120, "4K": 2000}),
    "gemini-3.1-flash-image-preview": (14, RATIOS + EXTREME_RATIOS, _FLASH_3_TOKENS),
}
_WIDEST = (14, RATIOS + EXTREME_RATIOS, _FLASH_3_TOKENS)
LONG_SIDE: dict[str | None, int] = {None: 1024, "512": 512, "1K": 1024, "2K": 2048, "4K": 4096}
INPUT_MIME_TYPES = ("image/png", "image/jpeg", "image/webp", "image/heic", "image/heif")
REQUEST_FIELDS = frozenset(
    {
        "contents",
        "tools",
        "toolConfig",
        "safetySettings",
        "systemInstruction",
        "generationConfig",
        "cachedContent",
    }
)
CONFIG_FIELDS = frozenset(
    {
        "stopSequences",
        "responseMimeType",
        "responseSchema",
        "responseJsonSchema",
        "responseModalities",
        "candidateCount",
        "maxOutputTokens",
        "temperature",
        "topP",
        "topK",
        "seed",
        "presencePenalty",
        "frequencyPenalty",
        "responseLogprobs",
        "logprobs",
        "enableEnhancedCivicAnswers",
        "speechConfig",
        "thinkingConfig",
        "imageConfig",
        "mediaResolution",
    }
)
IMAGE_CONFIG_FIELDS = frozenset({"aspectRatio", "imageSize"})
CONTENT_FIELDS = frozenset({"role", "parts"})
PART_FIELDS = frozenset({"text", "inlineData", "fileData", "thought", "thoughtSignature"})
_BLOCK_RE = re.compile(r"sandbox:block=([A-Z_]+)")
_FINISH_RE = re.compile(r"sandbox:finish=([A-Z_]+)")
TEXT_ONLY_TOKEN = "sandbox:text-only"
COMMENTARY = "Here is the image you asked for."
REFUSAL_TEXT = "I can't draw that for you.\nTry describing the scene differently."
PRICE_USD = 0.039  # one 1K image at Google's list price, for the sandbox's balance


class GoogleError(Exception):
    """An error answered in Google's shape."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def response(self) -> Response:
        status = GOOGLE_STATUS.get(self.code, "UNKNOWN")
        body = {"error": {"code": self.code, "message": self.message, "status": status}}
        return json_response(body, self.code)


def check_key(headers: dict[str, str], query: str, expected: str | None) -> Response | None:
    """Google's key check: ``x-goog-api-key`` or ``?key=``; None when the caller may proceed."""
    key = headers.get("x-goog-api-key")
    if not key:
        found = re.search(r"(?:^|&)key=([^&]+)", query)
        key = found.group(1) if found else None
    if not key:
        return GoogleError(401, "API key missing: send it in the x-goog-api-key header").response()
    if expected is not None and key != expected:
        return GoogleError(401, "API key not valid. Please pass a valid API key.").response()
    return None


def _unknown(fields: dict[str, Any], allowed: frozenset[str], where: str) -> None:
    for name in fields:
        if name not in allowed:
            message = f"Invalid JSON payload received. Unknown name \"{name}\" at '{where}'"
            raise GoogleError(400, f"{message}: Cannot find field.")


def _check_image(part: dict[str, Any], where: str) -> bytes:
    inline = part["inlineData"]
    if not isinstance(inline, dict):
        raise GoogleError(400, f"{where}.inline_data must be an object")
    mime, data = inline.get("mimeType"), inline.get("data")
    if mime not in INPUT_MIME_TYPES:
        raise GoogleError(400, f"Unsupported MIME type: {mime}")
    try:
        raw = base64.b64decode(data, validate=True) if isinstance(data, str) else b""
    except (binascii.Error, ValueError):
        raw = b""
    if not raw:
        raise GoogleError(400, f"Invalid value at '{where}.inline_data.data' (TYPE_BYTES)")
    from PIL import Image

    try:
        with Image.open(io.BytesIO(raw)) as image:
            image.verify()
    except Exception:
        raise GoogleError(400, "Unable to process input image. Please retry or report the problem.") from None
    return raw


def read_request(payload: dict[str, Any]) -> tuple[str, list[bytes], dict[str, Any]]:
    """(prompt text, input images, generationConfig) of a ``GenerateContentRequest``, or GoogleError."""
    _unknown(payload, REQUEST_FIELDS, "")
    contents = payload.get("contents")
    if not isinstance(contents, list) or not contents:
        raise GoogleError(400, "* GenerateContentRequest.contents: contents is not specified")
    texts: list[str] = []
    images: list[bytes] = []
    for content in contents:
        parts = content.get("parts") if isinstance(content, dict) else None
        if not isinstance(parts, list) or not parts:
            raise GoogleError(400, "* GenerateContentRequest.contents.parts: parts must not be empty")
        _unknown(content, CONTENT_FIELDS, "contents")
        for index, part in enumerate(parts):
            where = f"contents.parts[{index}]"
            if not isinstance(part, dict):
                raise GoogleError(400, f"{where} must be an object")
            _unknown(part, PART_FIELDS, where)
            if isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif "inlineData" in part:
                images.append(_check_image(part, where))
    config = payload.get("generationConfig") or {}
    if not isinstance(config, dict):
        raise GoogleError(400, "generationConfig must be an object")
    _unknown(config, CONFIG_FIELDS, "generation_config")
    image_config = config.get("imageConfig") or {}
    if not isinstance(image_config, dict):
        raise GoogleError(400, "generationConfig.imageConfig must be an object")
    _unknown(image_config, IMAGE_CONFIG_FIELDS, "generation_config.image_config")
    prompt = " ".join(texts).strip()
    if not prompt:
        raise GoogleError(400, "* GenerateContentRequest.contents: the request has no text part")
    return prompt, images, config


def check_config(model: str, config: dict[str, Any], images: int) -> tuple[str | None, str | None, list[str]]:
    """(aspect ratio, image size, response modalities) after the per-model checks, or GoogleError."""
    max_images, ratios, sizes = MODELS.get(model, _WIDEST)
    if images > max_images:
        raise GoogleError(400, f"{model} accepts at most {max_images} input images, got {images}")
    image_config = config.get("imageConfig") or {}
    ratio, size = image_config.get("aspectRatio"), image_config.get("imageSize")
    if ratio is not None and ratio not in ratios:
        supported = ", ".join(ratios)
        raise GoogleError(400, f"Unsupported aspect ratio {ratio!r} for {model}; supported: {supported}")
    if size is not None and size not in sizes:
        supported = ", ".join(s for s in sizes if s) or "none (the model answers at 1K)"
        raise GoogleError(400, f"Unsupported image size {size!r} for {model}; supported: {supported}")
    modalities = config.get("responseModalities") or ["TEXT", "IMAGE"]
    if not isinstance(modalities, list) or any(m not in ("TEXT", "IMAGE") for m in modalities):
        raise GoogleError(400, f"responseModalities {modalities!r}: supported values are TEXT and IMAGE")
    seed = config.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise GoogleError(400, "Invalid value at 'generation_config.seed' (TYPE_INT32)")
    temperature = config.get("temperature")
    number = isinstance(temperature, (int, float)) and not isinstance(temperature, bool)
    if temperature is not None and not (number and 0 <= temperature <= 2):
        raise GoogleError(400, "temperature must be a number between 0.0 and 2.0")
    return ratio, size, list(modalities)


def dimensions(ratio: str | None, long_side: int, max_side: int) -> tuple[int, int]:
    """Width and height: the size's long side, the ratio's short one, capped by ``max_side``."""
    w, h = (int(x) for x in (ratio or "1:1").split(":"))
    width, height = (long_side, round(long_side * h / w)) if w >= h else (round(long_side * w / h), long_side)
    if max_side and max(width, height) > max_side:
        scale = max_side / max(width, height)
        width, height = round(width * scale), round(height * scale)
    return max(1, width), max(1, height)


def usage_metadata(prompt: str, images: int, output: dict[str, int]) -> dict[str, Any]:
    """``UsageMetadata``: text ~4 characters a token, 258 tokens per input image."""
    text_tokens = max(1, len(prompt) // 4)
    prompt_details = [{"modality": "TEXT", "tokenCount": text_tokens}]
    if images:
        prompt_details.append({"modality": "IMAGE", "tokenCount": 258 * images})
    prompt_total = text_tokens + 258 * images
    usage: dict[str, Any] = {"promptTokenCount": prompt_total, "promptTokensDetails": prompt_details}
    if output:
        usage["candidatesTokenCount"] = sum(output.values())
        usage["candidatesTokensDetails"] = [{"modality": m, "tokenCount": n} for m, n in output.items()]
    usage["totalTokenCount"] = prompt_total + sum(output.values())
    return usage


def refusal(model: str, prompt: str, images: int) -> dict[str, Any] | None:
    """The refusal a prompt token asks for, as a whole answer body, or None."""
    block = _BLOCK_RE.search(prompt)
    if block:
        return {
            "promptFeedback": {
                "blockReason": block.group(1),
                "safetyRatings": [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}],
            },
            "usageMetadata": usage_metadata(prompt, images, {}),
            "modelVersion": model,
        }
    finish = _FINISH_RE.search(prompt)
    text_only = TEXT_ONLY_TOKEN in prompt
    if not finish and not text_only:
        return None
    reason = finish.group(1) if finish else "STOP"
    candidate: dict[str, Any] = {"finishReason": reason, "index": 0}
    output: dict[str, int] = {}  # content filters leave the candidate empty
    if text_only or reason == "NO_IMAGE":
        candidate["content"] = {"role": "model", "parts": [{"text": REFUSAL_TEXT}]}
        output = {"TEXT": max(1, len(REFUSAL_TEXT) // 4)}
    return {
        "candidates": [candidate],
        "usageMetadata": usage_metadata(prompt, images, output),
        "modelVersion": model,
    }


def thought_signature(state: SandboxState, model: str) -> str | None:
    """The ``thoughtSignature`` a Gemini 3 image part carries (opaque base64; real ones ~1.5 M
    characters), starting with the configured marker; None for other models or a length of 0."""
    size = state.config.thought_signature_chars
    if not model.startswith("gemini-3") or size <= 0:
        return None
    marker = state.config.thought_signature_marker
    return (marker + "A" * max(size - len(marker), 0))[:size]


def stream_chunks(body: dict[str, Any]) -> list[dict[str, Any]]:
    """A whole answer as ``:streamGenerateContent`` sends it: a JSON array of chunks, text first
    (in two fragments), then the image part with the finish reason and ``usageMetadata``."""
    candidates = body.get("candidates")
    if not candidates:
        return [body]
    candidate = candidates[0]
    parts = (candidate.get("content") or {}).get("parts") or []
    common = {k: v for k, v in body.items() if k in ("modelVersion", "responseId")}
    chunks: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part.get("text"), str) and len(part["text"]) > 1:
            half = len(part["text"]) // 2
            for text in (part["text"][:half], part["text"][half:]):
                content = {"role": "model", "parts": [{"text": text}]}
                chunks.append({"candidates": [{"content": content}], **common})
        else:
            chunks.append({"candidates": [{"content": {"role": "model", "parts": [part]}}], **common})
    last = chunks[-1] if chunks else {"candidates": [{"content": {"role": "model", "parts": []}}], **common}
    if not chunks:
        chunks.append(last)
    last["candidates"][0]["finishReason"] = candidate.get("finishReason")
    last["candidates"][0]["index"] = 0
    last["usageMetadata"] = body.get("usageMetadata")
    return chunks


async def generate_content(
    state: SandboxState, request: Request, payload: dict[str, Any], *, stream: bool = False
) -> Response:
    """Handle one ``generateContent`` call, or ``streamGenerateContent`` (``stream``: the same answer
    as a JSON array of chunks); the route in :mod:`.app` hands over the parsed body."""
    answer = await _answer(state, request, payload)
    if isinstance(answer, Response):
        return answer
    return json_response(stream_chunks(answer) if stream else answer)


async def _answer(
    state: SandboxState, request: Request, payload: dict[str, Any]
) -> dict[str, Any] | Response:
    model = request.path_params["model"]
    record = request.scope.get("sandbox.record")
    try:
        if not (model.startswith("gemini-") and "image" in model):
            message = f"models/{model} is not found for API version v1beta"
            raise GoogleError(404, f"{message}, or is not supported for generateContent.")
        prompt, images, config = read_request(payload)
        ratio, size, modalities = check_config(model, config, len(images))
        if len(prompt) > state.config.max_prompt_chars:
            raise GoogleError(400, "The input token count exceeds the maximum number of tokens allowed.")
    except GoogleError as err:
        return err.response()
    refused = refusal(model, prompt, len(images))
    if refused is not None:
        if "candidates" in refused:
            state.bill(record, 0.0)  # the model ran: its tokens are billed, the image was withheld
        return refused
    if not state.check_quota():
        raise ApiError(403, "Insufficient balance: top up to continue", code="insufficient_user_quota")
    width, height = dimensions(ratio, LONG_SIDE.get(size, 1024), state.config.max_side)
    seed = config.get("seed")
    # Without a seed the real model varies call by call: the request number joins the prompt.
    extra = b"".join(images) + (b"" if seed is not None else str(record["seq"] if record else 0).encode())
    data = await state.image_bytes(width, height, "png", image_seed(prompt, seed, extra), 0)
    output = {"IMAGE": MODELS.get(model, _WIDEST)[2].get(size, 1120)}
    parts: list[dict[str, Any]] = []
    if "TEXT" in modalities:
        parts.append({"text": COMMENTARY})
        output = {"TEXT": max(1, len(COMMENTARY) // 4), **output}
    encoded = base64.b64encode(data).decode()
    image_part: dict[str, Any] = {"inlineData": {"mimeType": "image/png", "data": encoded}}
    signature = thought_signature(state, model)
    if signature is not None:
        image_part["thoughtSignature"] = signature  # beside the image, as Gemini 3 answers carry it
    parts.append(image_part)
    state.bill(record, PRICE_USD)
    body = {
        "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": usage_metadata(prompt, len(images), output),
        "modelVersion": model,
        "responseId": uuid.uuid4().hex[:22],
    }
    return body
