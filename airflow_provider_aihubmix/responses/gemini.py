"""Gemini "Nano Banana" on the wire: the ``generateContent`` request and how its answer is read.

AIHubMix serves Google's native Gemini API under ``{base_url}/gemini`` (the Google GenAI SDK
pointed at ``https://aihubmix.com/gemini``). Written from Google's public API reference
(``models.generateContent``, ``GenerationConfig``, ``ImageConfig``, ``Candidate.FinishReason``,
``PromptFeedback.BlockReason``, ``UsageMetadata``):

* request: ``contents[0].parts`` = the prompt as a ``text`` part, then one ``inlineData``
  part (``mimeType``, base64 ``data``) per reference image; ``generationConfig`` carries
  ``responseModalities``, ``imageConfig.aspectRatio`` / ``imageSize``, ``seed``, ``temperature``.
  The API key travels in the ``x-goog-api-key`` header only (see :class:`~.http.ApiKeyAuth`).
* answer: ``candidates[].content.parts[]`` -- ``inlineData`` parts are images (the mime type
  is only a hint: storage sniffs the bytes), ``text`` parts are the model's commentary;
  ``usageMetadata`` counts tokens, which is what Gemini image models are billed by.
* refusals come with HTTP 200: ``promptFeedback.blockReason``, or a candidate whose
  ``finishReason`` is a safety reason (or ``NO_IMAGE``) and that carries no image.

One request makes one image, so ``n`` images are ``n`` requests
(:mod:`airflow_provider_aihubmix.engine.series`; from the triggerer,
:mod:`airflow_provider_aihubmix.engine.deferred`); request ``i`` sends ``seed + i`` so the images of
one task differ while the task stays reproducible.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from airflow_provider_aihubmix.exceptions import (
    AIHubMixError,
    AIHubMixRefusalError,
    AIHubMixResponseError,
    AIHubMixTextOnlyError,
    AIHubMixValidationError,
)
from airflow_provider_aihubmix.redaction import scrub_text
from airflow_provider_aihubmix.responses.answer_scan import SAFETY_FINISH_REASONS
from airflow_provider_aihubmix.responses.image_data import decode_base64_image, normalise_mime
from airflow_provider_aihubmix.responses.shapes import GeneratedImage, PredictionResult

API_PREFIX = "/gemini/v1beta"
SEED_MODULUS = 2_147_483_648  # generationConfig.seed is an int32
# AIHubMix's Gemini guide: files up to 20 MB through inline_data (Google: 20 MB per request).
MAX_INLINE_BYTES = 20 * 1024 * 1024

# Input keys this module places itself; any other key came through extra_input.
_MODELLED = frozenset(
    {"prompt", "n", "image", "aspectRatio", "imageSize", "responseModalities", "seed", "temperature"}
    | {"stream"}
)
_IMAGE_CONFIG = frozenset({"aspectRatio", "imageSize"})
# GenerateContentRequest fields beside contents/generationConfig: extra_input keys sent top-level.
TOP_LEVEL_FIELDS = frozenset(
    {"safetySettings", "systemInstruction", "tools", "toolConfig", "cachedContent", "labels"}
)

# Candidate.FinishReason values that mean "refused" when no image came back: the safety reasons
# (the same words the last-resort scan reads as a verdict) and NO_IMAGE, which is no safety
# verdict (the scan does not report it) but here, with no image, is a refusal all the same.
REFUSAL_FINISH_REASONS = SAFETY_FINISH_REASONS | {"NO_IMAGE"}
# Finish reasons of a normal end: text without an image then means "answered with text only".
NORMAL_FINISH_REASONS = frozenset({"STOP", "FINISH_REASON_UNSPECIFIED", ""})
_QUOTE_LIMIT = 200
# What responses.gemini_stream leaves in inlineData.data for an image it decoded (then its index).
INLINE_PLACEHOLDER = "\x00image:"


def generate_content_path(model: str, *, stream: bool = False) -> str:
    """``/gemini/v1beta/models/<model>:generateContent`` (relative to the connection's base URL), or
    ``:streamGenerateContent`` -- answered as a JSON array of ``GenerateContentResponse`` chunks."""
    method = "streamGenerateContent" if stream else "generateContent"
    return f"{API_PREFIX}/models/{quote(model, safe='._-')}:{method}"


def request_seed(input_: Mapping[str, Any], request_index: int) -> int | None:
    """The seed request ``request_index`` sends: the user's seed plus the index, or None."""
    seed = input_.get("seed")
    if seed is None or isinstance(seed, bool) or not isinstance(seed, int):
        return None
    return (seed + request_index) % SEED_MODULUS


def sent_seed(request: Any) -> int | None:
    """The ``generationConfig.seed`` an already-built ``httpx.Request`` carries (the triggerer's path)."""
    try:
        seed = json.loads(request.content).get("generationConfig", {}).get("seed")
    except (ValueError, AttributeError, TypeError):
        return None
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else None


def inline_part(reference: str) -> dict[str, Any]:
    """One ``data:image/...;base64,`` reference as an ``inlineData`` part (the base64 is sent as is)."""
    header, sep, payload = reference.partition(",")
    if not (sep and header.lower().startswith("data:") and ";base64" in header.lower()):
        raise AIHubMixValidationError(
            "Parameter 'image' holds a reference the Gemini route cannot send inline; allowed: data: "
            "URIs (s3://, file:// and https:// references are read by the provider and inlined first)"
        )
    mime = normalise_mime(header[5:].split(";", 1)[0]) or "image/png"
    return {"inlineData": {"mimeType": mime, "data": "".join(payload.split())}}


def request_body(input_: Mapping[str, Any], *, request_index: int = 0) -> dict[str, Any]:
    """The ``generateContent`` body for request ``request_index`` of a validated Gemini input.

    Keys that came through ``extra_input``: ``generationConfig`` / ``imageConfig`` objects are
    merged into theirs, :data:`TOP_LEVEL_FIELDS` go beside ``contents``, any other key goes into
    ``generationConfig`` (``topP``, ``candidateCount``...). References must be ``data:`` URIs.
    """
    parts: list[dict[str, Any]] = [{"text": input_["prompt"]}]
    parts += [inline_part(ref) for ref in input_.get("image") or []]
    inline_bytes = sum(len(p["inlineData"]["data"]) * 3 // 4 for p in parts[1:])
    if inline_bytes > MAX_INLINE_BYTES:
        raise AIHubMixValidationError(
            f"Parameter 'image' adds up to {inline_bytes:,} bytes of inline images; allowed: at most "
            f"{MAX_INLINE_BYTES:,} bytes in one Gemini request (AIHubMix's inline_data limit)"
        )
    body: dict[str, Any] = {"contents": [{"role": "user", "parts": parts}]}
    config: dict[str, Any] = {}
    image_config = {key: input_[key] for key in _IMAGE_CONFIG if input_.get(key) is not None}
    if input_.get("responseModalities"):
        config["responseModalities"] = list(input_["responseModalities"])
    seed = request_seed(input_, request_index)
    if seed is not None:
        config["seed"] = seed
    if input_.get("temperature") is not None:
        config["temperature"] = input_["temperature"]
    for key, value in input_.items():
        if key in _MODELLED:
            continue
        if key in TOP_LEVEL_FIELDS:
            body[key] = value
        elif key == "generationConfig" and isinstance(value, Mapping):
            config = {**value, **config}
        elif key == "imageConfig" and isinstance(value, Mapping):
            image_config = {**value, **image_config}
        else:
            config[key] = value
    if image_config:
        config["imageConfig"] = {**config.get("imageConfig", {}), **image_config}
    if config:
        body["generationConfig"] = config
    return body


def url_references(input_: Mapping[str, Any]) -> list[str]:
    """The ``http(s)://`` references of a validated input: ``inlineData`` needs their bytes."""
    refs = input_.get("image") or []
    return [ref for ref in refs if isinstance(ref, str) and ref.lower().startswith(("http://", "https://"))]


def with_inlined_urls(input_: Mapping[str, Any], fetched: Mapping[str, bytes]) -> dict[str, Any]:
    """``input_`` with each URL reference replaced by a ``data:`` URI of its ``fetched`` bytes.

    The hook fetches them with its credential-free, SSRF-guarded download client (sync or
    async). A download that is not an image fails here, before the billable request.
    """
    if not fetched:
        return dict(input_)
    import base64

    # Start-up cost: DAG parsing validates literal parameters through schemas, which reads this
    # module; storage loads only when a fetched reference image is inlined.
    from airflow_provider_aihubmix.storage import NotAnImageError, sniff_image

    inlined: list[str] = []
    for ref in input_.get("image") or []:
        data = fetched.get(ref)
        if data is None:
            inlined.append(ref)
            continue
        try:
            mime = sniff_image(data).content_type
        except NotAnImageError:
            raise AIHubMixValidationError(
                "Parameter 'image': a reference URL did not answer with an image; allowed: URLs of "
                "PNG, JPEG, WebP, GIF or HEIC images"
            ) from None
        inlined.append(f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}")
    return {**input_, "image": inlined}


def _first_line(text: str) -> str:
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return line if len(line) <= _QUOTE_LIMIT else line[: _QUOTE_LIMIT - 1] + "…"


def _parts_of(candidate: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, Mapping) else None
    return [p for p in parts if isinstance(p, Mapping)] if isinstance(parts, list) else []


def _image_of(
    part: Mapping[str, Any], seed: int | None, commentary: str | None, inline_images: Sequence[bytes]
) -> GeneratedImage | None:
    inline = part.get("inlineData") or part.get("inline_data")
    if not isinstance(inline, Mapping) or not isinstance(inline.get("data"), str) or part.get("thought"):
        return None  # thought images are drafts, not the answer
    text = inline["data"]
    if text.startswith(INLINE_PLACEHOLDER) and text[len(INLINE_PLACEHOLDER) :].isdigit():
        data = inline_images[int(text[len(INLINE_PLACEHOLDER) :])]  # decoded while streaming
    else:
        data, _ = decode_base64_image(text)
    mime = normalise_mime(inline.get("mimeType") or inline.get("mime_type"))
    return GeneratedImage(data=data, content_type=mime, seed=seed, commentary=commentary)


def parse_answer(
    body: Any,
    *,
    request_id: str | None = None,
    seed: int | None = None,
    inline_images: Sequence[bytes] = (),
) -> PredictionResult:
    """Images, commentary and usage of one ``generateContent`` answer.

    ``inline_images`` are images already decoded by
    :class:`~airflow_provider_aihubmix.responses.gemini_stream.AnswerScanner`, which leaves
    placeholders in ``inlineData.data``.

    :raises AIHubMixRefusalError: ``promptFeedback.blockReason``, or no image and a refusal
        ``finishReason`` (:data:`REFUSAL_FINISH_REASONS`); not retried, the reason in the message.
    :raises AIHubMixTextOnlyError: no image, a normal finish and some text (quoted, first line).
    :raises AIHubMixError: no image for any other reason (``MAX_TOKENS``, ``OTHER``...).
    :raises AIHubMixResponseError: not a ``GenerateContentResponse`` at all.
    """
    if not isinstance(body, Mapping) or not ("candidates" in body or "promptFeedback" in body):
        raise AIHubMixResponseError(
            "The Gemini answer has neither 'candidates' nor 'promptFeedback'",
            request_id=request_id,
            body_excerpt=scrub_text(str(body)) if body is not None else None,
        )
    usage = body.get("usageMetadata") if isinstance(body.get("usageMetadata"), Mapping) else None
    feedback = body.get("promptFeedback")
    block = feedback.get("blockReason") if isinstance(feedback, Mapping) else None
    candidates = [c for c in body.get("candidates") or [] if isinstance(c, Mapping)]
    if block and not candidates:
        raise AIHubMixRefusalError(
            f"Gemini blocked the prompt: promptFeedback.blockReason = {block}",
            request_id=request_id,
            code="request_moderated",
            param=str(block),
        )
    texts: list[str] = []
    images: list[GeneratedImage] = []
    reasons: list[str] = []
    for candidate in candidates:
        reasons.append(str(candidate.get("finishReason") or ""))
        parts = _parts_of(candidate)
        commentary = "\n".join(
            p["text"] for p in parts if isinstance(p.get("text"), str) and not p.get("thought")
        ).strip()
        texts.append(commentary)
        for part in parts:
            image = _image_of(part, seed, commentary or None, inline_images)
            if image is not None:
                images.append(image)
    if images:
        return PredictionResult(images=images, usage=dict(usage) if usage else None, request_id=request_id)
    raise _no_image_error(reasons, " ".join(t for t in texts if t), request_id)


def _no_image_error(reasons: list[str], text: str, request_id: str | None) -> AIHubMixError:
    refusal = next((r for r in reasons if r in REFUSAL_FINISH_REASONS), None)
    quoted = f': "{_first_line(text)}"' if text else ""
    if refusal is not None:
        return AIHubMixRefusalError(
            f"Gemini answered without an image: finishReason = {refusal}{quoted}",
            request_id=request_id,
            code="content_moderated",
            param=refusal,
        )
    reason = next((r for r in reasons if r), "") or "none"
    if text and reason in NORMAL_FINISH_REASONS | {"none"}:
        return AIHubMixTextOnlyError(
            f"Gemini answered with text only, no image{quoted}", request_id=request_id, param=reason
        )
    return AIHubMixError(
        f"Gemini answered without an image (finishReason = {reason}){quoted}", request_id=request_id
    )


__all__ = [
    "REFUSAL_FINISH_REASONS",
    "TOP_LEVEL_FIELDS",
    "generate_content_path",
    "parse_answer",
    "request_body",
    "request_seed",
    "sent_seed",
    "url_references",
    "with_inlined_urls",
]
