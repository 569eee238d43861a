"""Every answer shape the public API descriptions show, so DAGs can rehearse the odd ones offline.

Each shape is written from a public description -- the AIHubMix docs, and the upstream vendors'
own API references for the bodies AIHubMix passes through -- never from the provider's parsers:
a sandbox that borrowed the client's reading would agree with its mistakes.

A shape is chosen per request with the ``X-Sandbox-Shape`` header or a ``sandbox:shape=<name>``
prompt marker, or per model with the ``shapes`` setting (``{"ideogram/V3": "ideogram-unsafe"}``).
Image shapes fit synchronous models, task shapes asynchronous (Flux) ones.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

HEADER = "x-sandbox-shape"
_MARKER_RE = re.compile(r"sandbox:shape=([A-Za-z0-9_.-]+)")


@dataclass
class Answer:
    """What a shape renders from: the images made for this request, or the task created for it."""

    urls: list[str] = field(default_factory=list)
    b64: list[str] = field(default_factory=list)
    fmt: str = "png"
    size: str = "1024x1024"
    prompt: str = ""
    seed: int | None = None
    task_id: str = ""
    polling_url: str = ""

    @property
    def mime(self) -> str:
        return f"image/{self.fmt}"


Render = Callable[[Answer], Any]


def _created() -> int:
    return int(time.time())


# --- images -------------------------------------------------------------------------------------
# AIHubMix predictions, as its docs show them ("output" an object for OpenAI, a list elsewhere).
def _openai_predictions(a: Answer) -> Any:
    return {"output": {"b64_json": [{"bytesBase64": b, "mimeType": a.fmt} for b in a.b64], "urls": []}}


def _output_urls(a: Answer) -> Any:
    return {"output": [{"url": url} for url in a.urls]}


def _output_b64(a: Answer) -> Any:
    return {"output": [{"b64_json": b} for b in a.b64]}


def _output_strings(a: Answer) -> Any:
    return {"output": list(a.urls)}


def _output_string(a: Answer) -> Any:
    return {"output": a.urls[0]}


def _output_url_object(a: Answer) -> Any:
    return {"output": {"url": a.urls[0]}}


def _output_images(a: Answer) -> Any:
    return {"output": {"images": list(a.urls), "created": _created()}}


# OpenAI ImagesResponse (/v1/images/generations).
def _images_response(a: Answer) -> Any:
    return {"created": _created(), "data": [{"url": url, "revised_prompt": a.prompt} for url in a.urls]}


def _images_response_b64(a: Answer) -> Any:
    return {"created": _created(), "data": [{"b64_json": b, "revised_prompt": a.prompt} for b in a.b64]}


# Volcengine Ark image generation: data[] with url or b64_json and size; failed items carry error.
def _ark(a: Answer) -> Any:
    return {
        "model": "doubao-seedream",
        "created": _created(),
        "data": [{"url": url, "size": a.size} for url in a.urls],
        "usage": {"generated_images": len(a.urls), "output_tokens": 4096 * len(a.urls)},
    }


def _ark_partly_sensitive(a: Answer) -> Any:
    body = _ark(a)
    body["data"].append(
        {"error": {"code": "OutputImageSensitiveContentDetected", "message": "The output image is sensitive"}}
    )
    return body


# Ideogram /v1/ideogram-v3/generate: data[] items with is_image_safe; an unsafe one has no url.
def _ideogram_item(a: Answer, url: str | None, safe: bool) -> dict[str, Any]:
    return {
        "url": url,
        "is_image_safe": safe,
        "prompt": a.prompt,
        "resolution": a.size,
        "seed": a.seed if a.seed is not None else 12345,
        "style_type": "GENERAL",
    }


def _ideogram(a: Answer) -> Any:
    return {"created": _created(), "data": [_ideogram_item(a, url, True) for url in a.urls]}


def _ideogram_wrapped(a: Answer) -> Any:
    return {"output": _ideogram(a)}


def _ideogram_unsafe(a: Answer) -> Any:
    return {"output": {"created": _created(), "data": [_ideogram_item(a, None, False) for _ in a.urls]}}


# Vertex AI Imagen predict: predictions[] with bytesBase64Encoded; filtered ones carry raiFilteredReason.
def _vertex(a: Answer) -> Any:
    return {"predictions": [{"bytesBase64Encoded": b, "mimeType": a.mime} for b in a.b64]}


def _vertex_filtered(a: Answer) -> Any:
    reason = "Your current safety filter threshold filtered out the generated image."
    return {"predictions": [{"raiFilteredReason": reason}]}


# Gemini API generateImages: generatedImages[].image.imageBytes.
def _gemini_images(a: Answer) -> Any:
    return {"generatedImages": [{"image": {"imageBytes": b, "mimeType": a.mime}} for b in a.b64]}


# Qianfan /v2/images: OpenAI-like with an id.
def _qianfan(a: Answer) -> Any:
    return {"id": "as-sbx", "created": _created(), "data": [{"url": url} for url in a.urls]}


# A body no public description shows: images under unfamiliar keys, for the last-resort reading.
def _unfamiliar(a: Answer) -> Any:
    return {"result": {"artifacts": [{"kind": "image", "signedLink": url} for url in a.urls]}}


# A 200 answer holding nothing: neither an image, a task nor a verdict.
def _empty(a: Answer) -> Any:
    return {"created": _created(), "data": [], "note": "nothing to see here"}


# --- tasks ------------------------------------------------------------------------------------
def _task_output_list(a: Answer) -> Any:  # the AIHubMix doc's Flux answer
    return {"output": [{"taskId": a.task_id, "polling_url": a.polling_url}]}


def _task_output_object(a: Answer) -> Any:
    return {"output": {"id": a.task_id, "polling_url": a.polling_url}}


def _bfl_submit(a: Answer) -> Any:  # BFL AsyncResponse
    return {"id": a.task_id, "polling_url": a.polling_url}


def _bfl_pending(a: Answer) -> Any:  # a submit answer carrying a status instead of a polling URL
    return {"id": a.task_id, "status": "Pending"}


def _task_id_snake(a: Answer) -> Any:
    return {"output": {"task_id": a.task_id}}


def _task_nested(a: Answer) -> Any:
    return {"code": 0, "data": {"job": {"taskID": a.task_id, "state": "queued"}}}


IMAGE_SHAPES: Mapping[str, Render] = {
    "openai-predictions": _openai_predictions,
    "output-urls": _output_urls,
    "output-b64": _output_b64,
    "output-strings": _output_strings,
    "output-string": _output_string,
    "output-url-object": _output_url_object,
    "output-images": _output_images,
    "images-response": _images_response,
    "images-response-b64": _images_response_b64,
    "ark": _ark,
    "ark-partly-sensitive": _ark_partly_sensitive,
    "ideogram": _ideogram,
    "ideogram-wrapped": _ideogram_wrapped,
    "ideogram-unsafe": _ideogram_unsafe,
    "vertex": _vertex,
    "vertex-filtered": _vertex_filtered,
    "gemini-images": _gemini_images,
    "qianfan": _qianfan,
    "unfamiliar": _unfamiliar,
    "empty": _empty,
}
TASK_SHAPES: Mapping[str, Render] = {
    "task-output-list": _task_output_list,
    "task-output-object": _task_output_object,
    "bfl-submit": _bfl_submit,
    "bfl-pending": _bfl_pending,
    "task-id-snake": _task_id_snake,
    "task-nested": _task_nested,
}
SHAPES = frozenset({*IMAGE_SHAPES, *TASK_SHAPES})


def chosen_shape(
    headers: Mapping[str, str], prompt: str, model_path: str, configured: Mapping[str, str]
) -> str | None:
    """The shape this request asks for: header, then prompt marker, then the model's setting."""
    if headers.get(HEADER):
        return headers[HEADER].strip()
    match = _MARKER_RE.search(prompt)
    if match:
        return match.group(1)
    return configured.get(model_path) or configured.get(model_path.split("/", 1)[-1])
