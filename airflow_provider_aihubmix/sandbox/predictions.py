"""``POST /v1/models/<provider>/<model_id>/predictions``: the API's input checks and each family's answer.

Written from the API reference, family by family; the catalog only says which family a
model is in and whether it is asynchronous.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_provider_aihubmix.catalog.models import Family, ModelSpec
from airflow_provider_aihubmix.sandbox.errors import ApiError, moderation_error
from airflow_provider_aihubmix.sandbox.images import SizeError, image_seed, padded_png, resolve_size
from airflow_provider_aihubmix.sandbox.shapes import IMAGE_SHAPES, TASK_SHAPES, Answer, chosen_shape
from airflow_provider_aihubmix.sandbox.state import SandboxState
from airflow_provider_aihubmix.sandbox.tasks import (
    Task,
    delay_from_prompt,
    outcome_from_prompt,
    unknown_from_prompt,
)

MODERATION_TOKEN = "sandbox:moderated"
DEFAULT_PRICE_USD = 0.04
# The simulated billing dashboard charges the flat per-image list prices of the shipped price data
# (read as data: the sandbox shares no code with the client); other models DEFAULT_PRICE_USD.
_PRICES_FILE = Path(__file__).resolve().parent.parent / "pricing" / "prices.json"
PER_IMAGE_USD: dict[str, float] = {
    model: float(row["per_image"])
    for model, row in json.loads(_PRICES_FILE.read_text(encoding="utf-8"))["models"].items()
    if isinstance(row.get("per_image"), (int, float))
}
# Fields the families use for reference images (the reference lists all of these).
REFERENCE_FIELDS = ("image", "images", "refer_image", "input_image", "image_url", "image_urls", "mask")
_FORMAT_ALIASES = {
    "png": "png",
    "jpeg": "jpeg",
    "jpg": "jpeg",
    "webp": "webp",
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/webp": "webp",
}
# gpt-image output tokens for a 1024x1024 image, by quality (OpenAI's published table).
_OPENAI_TOKENS = {"low": 272, "medium": 1056, "high": 4160, "auto": 1056}


@dataclass
class Plan:
    prompt: str
    count: int
    width: int
    height: int
    fmt: str
    seed: Any
    image_seed: int
    references: int


def require_prompt(value: Any, max_chars: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, "prompt is required", code="prompt_missing", param="prompt")
    if max_chars and len(value) > max_chars:
        raise ApiError(
            400, f"prompt is longer than {max_chars} characters", code="prompt_too_long", param="prompt"
        )
    if MODERATION_TOKEN in value:
        raise moderation_error()
    return value


def _int_in_range(value: Any, low: int, high: int, *, code: str, param: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ApiError(400, f"{param} must be an integer between {low} and {high}", code=code, param=param)
    return value


def _references(inp: dict[str, Any]) -> tuple[int, bytes]:
    """How many reference images the input carries, and a digest of them for the image seed."""
    count = 0
    digest = hashlib.blake2b(digest_size=16)
    for name in REFERENCE_FIELDS:
        value = inp.get(name)
        if value in (None, "", []):
            continue
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, str) and item.startswith("data:") and ";base64," not in item:
                raise ApiError(400, "image data URI must be base64", code="invalid_image", param=name)
            if name != "mask":
                count += 1
            digest.update(json.dumps(item, sort_keys=True, default=str).encode())
    return count, digest.digest() if count else b""


def _format(inp: dict[str, Any], default: str) -> str:
    raw = inp.get("output_format") or inp.get("output_mime_type") or inp.get("outputMimeType")
    if raw is None:
        return default
    fmt = _FORMAT_ALIASES.get(str(raw).lower())
    if fmt is None:
        raise ApiError(
            400,
            "output_format must be png, jpeg or webp",
            code="invalid_output_format",
            param="output_format",
        )
    return fmt


# Ark (Volcengine) Seedream reference: explicit sizes need this many pixels in total.
_SEEDREAM_MIN_PIXELS = {
    "doubao-seedream-5.0-lite": 2560 * 1440,
    "doubao-seedream-4-5": 2560 * 1440,
    "doubao-seedream-4-0": 1280 * 720,
}
# Seedream models without a 1K tier: 4.5 (AIHubMix doc) and 5.0 lite (2K/3K, Ark).
_SEEDREAM_NO_1K = ("doubao-seedream-4-5", "doubao-seedream-5.0-lite")
# Qianfan image models: each side 512..2048.
_QIANFAN_SIDES = (512, 2048)
_EXPLICIT_RE = re.compile(r"\s*(\d+)\s*[x*]\s*(\d+)\s*", re.IGNORECASE)


def _check_explicit_pixels(spec: ModelSpec, size: str) -> None:
    match = _EXPLICIT_RE.fullmatch(size)
    if match is None:
        return
    width, height = int(match.group(1)), int(match.group(2))
    minimum = _SEEDREAM_MIN_PIXELS.get(spec.model_id)
    if minimum is not None and width * height < minimum:
        raise ApiError(
            400,
            f"size must have at least {minimum} pixels for this model",
            code="size_not_supported",
            param="size",
        )
    if spec.provider == "qianfan" and not all(
        _QIANFAN_SIDES[0] <= side <= _QIANFAN_SIDES[1] for side in (width, height)
    ):
        raise ApiError(400, "width and height must be 512..2048", code="size_not_supported", param="size")


_IMAGES_MARKER = re.compile(r"sandbox:images=([1-9])")


def _count(inp: dict[str, Any], spec: ModelSpec, references: int) -> int:
    family = spec.family
    if family is Family.IMAGEN:
        for name in ("numberOfImages", "sampleCount", "n"):
            if name in inp:
                return _int_in_range(inp[name], 1, 4, code="n_not_within_range", param=name)
        return 1
    if family is Family.SEEDREAM and inp.get("sequential_image_generation") == "auto":
        options = inp.get("sequential_image_generation_options") or {}
        if not isinstance(options, dict):
            raise ApiError(400, "must be an object", param="sequential_image_generation_options")
        wanted = _int_in_range(
            options.get("max_images", 1),
            1,
            15,
            code="max_images_not_within_range",
            param="sequential_image_generation_options.max_images",
        )
        # Reference images plus generated images never exceed 15.
        return max(1, min(wanted, 15 - references))
    if "n" not in inp:
        return 1
    high = 1 if spec.model_id == "dall-e-3" else 10
    return _int_in_range(inp["n"], 1, high, code="n_not_within_range", param="n")


def plan(inp: dict[str, Any], spec: ModelSpec, max_side: int, max_prompt_chars: int) -> Plan:
    prompt = require_prompt(inp.get("prompt"), max_prompt_chars)
    references, ref_digest = _references(inp)
    if spec.model_id == "ernie-irag-edit" and inp.get("image") in (None, "", []):
        # Qianfan's /v2/images/edits (and AIHubMix's own plugin) read the picture from `image`.
        raise ApiError(400, "image is required", code="image_missing", param="image")
    if not spec.text_to_image and references == 0:
        raise ApiError(400, f"{spec.model_id} edits an image: send one", code="image_missing", param="image")
    size = inp.get("size")
    if size is not None:
        if spec.model_id in _SEEDREAM_NO_1K and str(size).upper() == "1K":
            raise ApiError(
                400, "size 1K is not supported by this model", code="size_not_supported", param="size"
            )
        _check_explicit_pixels(spec, str(size))
    aspect = inp.get("aspect_ratio") or inp.get("aspectRatio")
    if spec.family is Family.FLUX and not size and not aspect:
        aspect = "16:9"  # the documented Flux default
    try:
        width, height = resolve_size(size, aspect, max_side=max_side)
    except SizeError as exc:
        raise ApiError(400, str(exc), code="size_not_supported", param="size") from None
    fmt = _format(inp, "jpeg" if spec.family in (Family.OPENAI, Family.FLUX) else "png")
    seed = inp.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ApiError(400, "seed must be an integer", code="invalid_seed", param="seed")
    if seed == -1:  # Seedream's "random"
        seed = None
    # ``sandbox:images=K`` answers K images whatever was asked: an upstream safety filter that drops
    # some (Imagen's RAI filter answers fewer than sampleCount), or a gateway that sends more.
    forced = _IMAGES_MARKER.search(prompt)
    return Plan(
        prompt=prompt,
        count=int(forced.group(1)) if forced else _count(inp, spec, references),
        width=width,
        height=height,
        fmt=fmt,
        seed=seed,
        image_seed=image_seed(prompt, seed, ref_digest),
        references=references,
    )


def openai_usage(prompt: str, plan_: Plan, quality: Any, references: int = 0) -> dict[str, Any]:
    per_image = _OPENAI_TOKENS.get(str(quality or "auto").lower(), 1056)
    output = max(1, round(per_image * plan_.width * plan_.height / (1024 * 1024))) * plan_.count
    text = max(1, len(prompt) // 4)
    image = 65 * references
    return {
        "input_tokens": text + image,
        "output_tokens": output,
        "total_tokens": text + image + output,
        "input_tokens_details": {"text_tokens": text, "image_tokens": image},
        # gpt-image-2 answers break output tokens down too (a 2026-06 write-up of real calls).
        "output_tokens_details": {"image_tokens": output, "text_tokens": 0},
    }


async def _b64_images(state: SandboxState, p: Plan) -> list[str]:
    pad = state.config.inline_image_bytes if p.fmt == "png" else 0
    images = []
    for i in range(p.count):
        data = await state.image_bytes(p.width, p.height, p.fmt, p.image_seed, i)
        images.append(base64.b64encode(padded_png(data, pad) if len(data) < pad else data).decode())
    return images


def _urls(state: SandboxState, p: Plan) -> list[str]:
    ttl = state.config.url_ttl_s
    return [state.image_url(p.width, p.height, p.fmt, p.image_seed, i, ttl) for i in range(p.count)]


async def predict(
    state: SandboxState, spec: ModelSpec, inp: dict[str, Any], record: dict[str, Any]
) -> dict[str, Any]:
    """Check ``inp`` like the API would, bill, and answer in the model family's shape (or the one
    the request chose, see :mod:`.shapes`)."""
    cfg = state.config
    p = plan(inp, spec, cfg.max_side, cfg.max_prompt_chars)
    if not state.check_quota():
        raise ApiError(403, "Insufficient balance: top up to continue", code="insufficient_user_quota")
    shape = chosen_shape(record.get("headers") or {}, p.prompt, spec.path, cfg.shapes)
    if shape is not None and shape not in (TASK_SHAPES if spec.is_async else IMAGE_SHAPES):
        kind = "task" if spec.is_async else "image"
        raise ApiError(400, f"sandbox shape {shape!r} is not a {kind} shape", code="bad_sandbox_shape")
    if spec.is_async:
        task = _new_task(state, spec, p)
        state.bill(record, DEFAULT_PRICE_USD)
        # The polling URL is the upstream vendor's (here: the storage host), never the gateway.
        polling_url = f"{state.storage_url}/v1/get_result?id={task.id}"
        if shape is not None:
            return TASK_SHAPES[shape](Answer(task_id=task.id, polling_url=polling_url))
        return {"output": [{"taskId": task.id, "polling_url": polling_url}]}
    price = PER_IMAGE_USD.get(spec.path, DEFAULT_PRICE_USD) * p.count
    if shape is not None:
        answer = Answer(
            urls=_urls(state, p),
            b64=await _b64_images(state, p),
            fmt=p.fmt,
            size=f"{p.width}x{p.height}",
            prompt=p.prompt,
            seed=p.seed,
        )
        state.bill(record, price)
        return IMAGE_SHAPES[shape](answer)
    return await _family_answer(state, spec, inp, p, record, price)


def _new_task(state: SandboxState, spec: ModelSpec, p: Plan) -> Task:
    cfg = state.config
    delay = delay_from_prompt(p.prompt)
    unknown = unknown_from_prompt(p.prompt)
    task = Task(
        id=f"api.sbx.{uuid.uuid4()}",
        model=spec.path,
        prompt=p.prompt,
        seed=p.seed,
        image_seed=p.image_seed,
        width=p.width,
        height=p.height,
        fmt=p.fmt,
        delay_s=cfg.task_delay_s if delay is None else delay,
        outcome=outcome_from_prompt(p.prompt) or cfg.task_outcome,
        unknown_s=cfg.task_unknown_s if unknown is None else unknown,
    )
    state.add_task(task)
    return task


async def _family_answer(
    state: SandboxState, spec: ModelSpec, inp: dict[str, Any], p: Plan, record: dict[str, Any], price: float
) -> dict[str, Any]:
    """Each family's usual answer, as the AIHubMix docs show it."""
    family = spec.family
    if family is Family.OPENAI:
        images = await _b64_images(state, p)
        state.bill(record, price)
        return {
            "output": {"b64_json": [{"bytesBase64": b, "mimeType": p.fmt} for b in images], "urls": []},
            "usage": openai_usage(p.prompt, p, inp.get("quality"), p.references),
        }
    if family is Family.SEEDREAM:
        size = f"{p.width}x{p.height}"
        if inp.get("response_format") in ("base64_json", "b64_json"):
            items = [{"b64_json": b, "size": size} for b in await _b64_images(state, p)]
        else:
            items = [{"url": url, "size": size} for url in _urls(state, p)]
        state.bill(record, price)
        return {"output": items, "usage": {"generated_images": p.count}}
    if family is Family.IRAG:
        if inp.get("response_format") in ("b64_json", "base64_json"):
            out: list[Any] = [{"b64_json": b} for b in await _b64_images(state, p)]
        else:
            out = [{"url": url} for url in _urls(state, p)]
        state.bill(record, price)
        return {"output": out}
    if family is Family.IDEOGRAM:
        # A documented alternative: output items as bare URL strings.
        state.bill(record, price)
        return {"output": _urls(state, p)}
    # Qwen, Imagen and any model passed through: a list of URL objects.
    state.bill(record, price)
    return {"output": [{"url": url} for url in _urls(state, p)]}
