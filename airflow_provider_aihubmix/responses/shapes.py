"""Every response shape AIHubMix returns, normalised to one list of images or a task handle.

Shapes differ by family and are partly undocumented, so the parsers here are tolerant:
they accept every shape in the API reference and raise :class:`AIHubMixResponseError`
(with an excerpt, never a secret) only when nothing recognisable is present.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

from airflow_provider_aihubmix.exceptions import (
    AIHubMixModerationError,
    AIHubMixResponseError,
    AIHubMixUnreadableAnswerError,
)
from airflow_provider_aihubmix.redaction import scrub_text
from airflow_provider_aihubmix.responses.answer_scan import ScanResult, is_pending_status, scan
from airflow_provider_aihubmix.responses.image_data import decode_base64_image, normalise_mime
from airflow_provider_aihubmix.responses.task_status import TaskStatus, status_from_string

log = logging.getLogger(__name__)


class GeneratedImage(BaseModel):
    """One image from a response: inline bytes or a URL to download (never both required).

    In JSON (an XCom value returned from a TaskFlow task that called the hook) ``data`` is standard
    base64, and reads back as the same bytes.
    """

    model_config = ConfigDict(frozen=True)

    data: bytes | None = None
    url: str | None = None
    content_type: str | None = None  # the label the API gave; storage sniffs the bytes anyway
    seed: int | None = None
    revised_prompt: str | None = None
    commentary: str | None = None  # text the model answered beside the image (Gemini)

    @field_serializer("data", when_used="json")
    def _data_as_base64(self, data: bytes | None) -> str | None:
        return base64.b64encode(data).decode("ascii") if data is not None else None

    @field_validator("data", mode="before")
    @classmethod
    def _data_from_base64(cls, value: Any) -> Any:
        return base64.b64decode(value, validate=True) if isinstance(value, str) else value


class TaskHandle(BaseModel):
    """What an async submit returns. ``polling_url`` points at the upstream vendor: record only."""

    model_config = ConfigDict(frozen=True)

    task_id: str
    polling_url: str | None = None


class PredictionResult(BaseModel):
    """A normalised prediction: images for sync models, a task handle for async ones."""

    images: list[GeneratedImage] = Field(default_factory=list)
    task: TaskHandle | None = None
    usage: dict[str, Any] | None = None
    request_id: str | None = None
    # Safety verdicts on images the answer withheld beside the ones it delivered (short words).
    withheld: list[str] = Field(default_factory=list)

    @property
    def is_async(self) -> bool:
        return self.task is not None

    def as_xcom(self) -> dict[str, Any]:
        """A JSON-safe copy to return from a TaskFlow task: plain types only, inline images as
        base64 strings (``images[i]["data"]``), readable by any downstream task.

        The result itself serializes too, but reading it back in another task needs
        ``airflow_provider_aihubmix.*`` in Airflow's ``[core] allowed_deserialization_classes``.
        """
        return self.model_dump(mode="json")


class TaskState(BaseModel):
    """A polled async task."""

    task_id: str
    status: TaskStatus
    raw_status: str
    result_urls: list[str] = Field(default_factory=list)
    progress: float | None = None
    message: str | None = None


# ---------------------------------------------------------------------------------------------
# Parsers
# ---------------------------------------------------------------------------------------------

_BARE_B64_RE = re.compile(r"[A-Za-z0-9+/_\-\r\n]{64,}={0,2}")

_OTHER_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,15}://\S+$")
# Spellings of a task id in an async submit response: the doc shows ``taskId``, clients use the others.
_TASK_ID_KEYS = ("taskId", "task_id", "taskID")
# Keys holding one image as base64 (OpenAI ``b64_json``, AIHubMix ``bytesBase64``, Vertex Imagen
# ``bytesBase64Encoded``) or as a URL. ``image_url`` may itself be ``{"url": ...}`` (chat style).
_B64_KEYS = ("b64_json", "bytesBase64", "bytesBase64Encoded", "base64", "image_base64", "b64")
_URL_KEYS = ("url", "image_url", "imageUrl", "uri", "sample")
_INLINE_KEYS = ("inlineData", "inline_data")
_MIME_KEYS = ("mimeType", "mime_type", "content_type", "contentType", "format")
# Keys whose value is a collection of images (or of containers of images) to walk into.
_CONTAINER_KEYS = (
    "output",
    "data",
    "images",
    "urls",
    "b64_json",
    "url",
    "candidates",
    "content",
    "parts",
    "predictions",
    "generated_images",
    "sample",
)
# Containers whose value may itself be one image as a string (``{"output": "https://..."}``).
_STRING_KEYS = frozenset({"output", "images", "urls", "sample"})
_MAX_DEPTH = 8


def _body_excerpt(body: Any) -> str:
    try:
        text = json.dumps(body, default=str)
    except (TypeError, ValueError):
        text = repr(body)
    return scrub_text(text)


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    return None


def _mime_of(item: Mapping[str, Any]) -> str | None:
    for key in _MIME_KEYS:
        if key in item:
            mime = normalise_mime(item[key])
            if mime:
                return mime
    return None


def _image_from_string(text: str, *, mime: str | None = None, **extra: Any) -> GeneratedImage | None:
    value = text.strip()
    if not value:
        return None
    if value.startswith(("http://", "https://")):
        return GeneratedImage(url=value, content_type=mime, **extra)
    if _OTHER_SCHEME_RE.match(value):
        # file://, ftp://, s3://...: kept as a URL so the download guard refuses it by name,
        # instead of the answer reading as "no image".
        return GeneratedImage(url=value, content_type=mime, **extra)
    # A bare string is an image only if it is a data: URI or looks like a base64 blob; any other
    # text (a status word, a message) is not an image and must not decode to garbage bytes.
    if value.startswith("data:") or _BARE_B64_RE.fullmatch(value):
        data, data_mime = decode_base64_image(value)
        return GeneratedImage(data=data, content_type=data_mime or mime, **extra)
    return None


class _Collector:
    """Walks any response shape, collecting images and async task handles in document order."""

    def __init__(self) -> None:
        self.images: list[GeneratedImage] = []
        self.tasks: list[TaskHandle] = []

    def walk(self, node: Any, depth: int = 0) -> None:
        if depth > _MAX_DEPTH:
            return
        if isinstance(node, list):
            for item in node:
                self.walk(item, depth + 1)
        elif isinstance(node, str):
            image = _image_from_string(node)
            if image is not None:
                self.images.append(image)
        elif isinstance(node, Mapping):
            if self._task(node) or self._image(node):
                return
            for key in _CONTAINER_KEYS:
                value = node.get(key)
                if isinstance(value, (list, Mapping)) or (isinstance(value, str) and key in _STRING_KEYS):
                    self.walk(value, depth + 1)

    def _task(self, item: Mapping[str, Any]) -> bool:
        task_id = next((item[k] for k in _TASK_ID_KEYS if isinstance(item.get(k), (str, int))), None)
        polling_url = item.get("polling_url") or item.get("pollingUrl")
        # A bare ``id`` is a task only beside a polling URL or a pending status (BFL's submit
        # answer without a URL, which the MCP server reports as a task): sync responses carry ids too.
        ident = item.get("id")
        if (
            task_id is None
            and (polling_url or is_pending_status(item.get("status")))
            and isinstance(ident, (str, int))
            and not isinstance(ident, bool)
        ):
            task_id = ident
        if task_id is None or str(task_id).strip() == "":
            return False
        self.tasks.append(
            TaskHandle(
                task_id=str(task_id).strip(),
                polling_url=polling_url if isinstance(polling_url, str) else None,
            )
        )
        return True

    def _image(self, item: Mapping[str, Any]) -> bool:
        mime = _mime_of(item)
        extra: dict[str, Any] = {"seed": _as_int(item.get("seed"))}
        revised = item.get("revised_prompt") or item.get("revisedPrompt")
        if isinstance(revised, str) and revised:
            extra["revised_prompt"] = revised
        for key in _INLINE_KEYS:
            inline = item.get(key)
            if isinstance(inline, Mapping) and isinstance(inline.get("data"), str):
                data, data_mime = decode_base64_image(inline["data"])
                self.images.append(
                    GeneratedImage(data=data, content_type=_mime_of(inline) or data_mime, **extra)
                )
                return True
        for key in _B64_KEYS:
            value = item.get(key)
            if isinstance(value, str) and value.strip():
                data, data_mime = decode_base64_image(value)
                self.images.append(GeneratedImage(data=data, content_type=data_mime or mime, **extra))
                return True
        # Gemini-style ``{"data": "<b64>", "mimeType": ...}`` without the inlineData wrapper.
        if isinstance(item.get("data"), str) and mime:
            data, data_mime = decode_base64_image(item["data"])
            self.images.append(GeneratedImage(data=data, content_type=mime or data_mime, **extra))
            return True
        for key in _URL_KEYS:
            value = item.get(key)
            if isinstance(value, Mapping):
                value = value.get("url")
            if isinstance(value, str) and value.strip():
                image = _image_from_string(value, mime=mime, **extra)
                if image is not None:
                    self.images.append(image)
                    return True
        return False


def _usage_of(body: Mapping[str, Any]) -> dict[str, Any] | None:
    for key in ("usage", "usageMetadata", "usage_metadata"):
        value = body.get(key)
        if isinstance(value, Mapping) and value:
            return dict(value)
    return None


def _apply_top_level_seeds(body: Mapping[str, Any], images: list[GeneratedImage]) -> list[GeneratedImage]:
    seeds = body.get("seeds")
    if not isinstance(seeds, list):
        seed = _as_int(body.get("seed"))
        seeds = [seed] * len(images) if seed is not None else []
    out = []
    for index, image in enumerate(images):
        seed = _as_int(seeds[index]) if index < len(seeds) else None
        out.append(
            image.model_copy(update={"seed": seed}) if image.seed is None and seed is not None else image
        )
    return out


def _error_text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, Mapping):
        for key in ("message", "msg", "detail", "details", "error", "reason"):
            text = _error_text(value.get(key))
            if text:
                return text
    return None


def parse_prediction(body: Any, *, request_id: str | None = None) -> PredictionResult:
    """Normalise any prediction / generation response to images or a task handle.

    Accepts ``output`` as an object (``{"b64_json": [...], "urls": [...]}``), a list of items
    (``{"url"}``, ``{"b64_json"}``, ``{"bytesBase64"}``, bare strings, ``{"taskId", "polling_url"}``)
    or a string, ``output.url``, top-level ``url`` / ``image_url`` / ``images`` / ``data[]``,
    Gemini ``candidates[].content.parts[].inlineData``, and a task id under ``taskId`` /
    ``task_id`` / ``id`` (beside a polling URL or a pending status). Base64 is decoded here, once.

    Beyond the known shapes, :func:`answer_scan.scan` searches the whole body. Raises
    :class:`AIHubMixModerationError` when the only thing the answer says is a safety verdict,
    :class:`AIHubMixUnreadableAnswerError` (carrying the body) when it says nothing at all.
    """
    if isinstance(body, list):
        body = {"output": body}
    if isinstance(body, str):
        body = {"output": body}
    if not isinstance(body, Mapping):
        raise AIHubMixUnreadableAnswerError(
            f"Unexpected AIHubMix response: expected a JSON object, got {type(body).__name__}",
            request_id=request_id,
            body_excerpt=_body_excerpt(body),
            body=body,
        )
    if body.get("error"):
        raise AIHubMixResponseError(
            f"AIHubMix returned an error: {scrub_text(_error_text(body['error']) or 'no message')}",
            request_id=request_id,
            body_excerpt=_body_excerpt(body),
        )
    collector = _Collector()
    collector.walk(body)
    found = scan(body)
    if not collector.images and not collector.tasks:
        _last_resort(collector, found, body, request_id)
    if len(collector.tasks) > 1:
        log.warning(
            "AIHubMix returned %d task ids; following the first (%s)",
            len(collector.tasks),
            collector.tasks[0].task_id,
        )
    if collector.images and found.verdicts:
        log.warning(
            "AIHubMix delivered %d image(s) and withheld others on safety grounds (%s)",
            len(collector.images),
            ", ".join(found.verdicts),
        )
    return PredictionResult(
        images=_apply_top_level_seeds(body, collector.images),
        task=collector.tasks[0] if collector.tasks and not collector.images else None,
        usage=_usage_of(body),
        request_id=request_id,
        withheld=found.verdicts if collector.images else [],
    )


def _last_resort(collector: _Collector, found: ScanResult, body: Any, request_id: str | None) -> None:
    """No known shape held anything: take what the whole-body scan found, or say why not."""
    if found.found_images:
        log.warning(
            "AIHubMix answered in no known shape; the last-resort scan found image(s) at %s",
            ", ".join(found.paths[:10]),
        )
        for value in found.inline:
            image = _image_from_string(value)
            if image is not None:
                collector.images.append(image)
        collector.images.extend(GeneratedImage(url=url) for url in found.urls)
        return
    if found.task_ids:
        log.warning("AIHubMix answered in no known shape; task id(s) found at %s", ", ".join(found.paths))
        collector.tasks.extend(TaskHandle(task_id=task_id) for task_id in found.task_ids)
        return
    if found.verdicts:
        raise AIHubMixModerationError(
            f"AIHubMix answered without an image: a safety refusal ({', '.join(found.verdicts)}). "
            "The same input would be refused again; change the prompt or the reference image",
            request_id=request_id,
            code="safety_refusal",
        )
    raise AIHubMixUnreadableAnswerError(
        "AIHubMix response holds no image, no task id and no safety verdict in any known shape",
        request_id=request_id,
        body_excerpt=_body_excerpt(body),
        body=body,
    )


def _progress_of(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip().rstrip("%"))
        except ValueError:
            return None
    return None


def _result_urls(body: Mapping[str, Any]) -> list[str]:
    urls: list[str] = []
    for key in ("result", "output", "data", "images", "urls", "url", "sample"):
        if key not in body:
            continue
        collector = _Collector()
        collector.walk(body[key] if isinstance(body[key], (list, Mapping, str)) else None)
        urls.extend(image.url for image in collector.images if image.url)
    return list(dict.fromkeys(urls))


def parse_task(body: Any, task_id: str) -> TaskState:
    """Normalise a ``GET /v1/tasks/<id>`` body (BFL-style ``{"id", "status", "result": {"sample"}}``).

    ``result.sample`` may be a string or a list; ``result.urls`` and ``output`` are accepted too.
    A body without any status is accepted only when it carries result URLs (then it is READY).
    """
    if isinstance(body, Mapping) and "status" not in body and isinstance(body.get("data"), Mapping):
        body = body["data"]  # a {"code": 0, "data": {...}} wrapper some gateways add
    if not isinstance(body, Mapping):
        raise AIHubMixResponseError(
            f"Unexpected task status response for {task_id}: expected a JSON object, "
            f"got {type(body).__name__}",
            body_excerpt=_body_excerpt(body),
        )
    raw = body.get("status", body.get("state"))
    urls = _result_urls(body)
    if isinstance(raw, str) and raw.strip():
        status = status_from_string(raw)
        raw_status = raw.strip()
    elif urls:
        status, raw_status = TaskStatus.READY, "Ready"
    else:
        raise AIHubMixResponseError(
            f"Task status response for {task_id} has neither a status nor result URLs",
            body_excerpt=_body_excerpt(body),
        )
    message = None
    for key in ("details", "error", "message", "detail", "reason"):
        text = _error_text(body.get(key))
        if text:
            message = scrub_text(text)
            break
    return TaskState(
        task_id=task_id,
        status=status,
        raw_status=raw_status,
        result_urls=urls,
        progress=_progress_of(body.get("progress")),
        message=message,
    )


__all__ = [
    "GeneratedImage",
    "PredictionResult",
    "TaskHandle",
    "TaskState",
    "TaskStatus",
    "parse_prediction",
    "parse_task",
    "status_from_string",
]
