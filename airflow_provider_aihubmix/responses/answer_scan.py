"""The last resort for an answer no known shape explains: find images, task ids and safety verdicts
wherever they are.

:mod:`airflow_provider_aihubmix.responses.shapes` reads every shape AIHubMix's own clients read. An
answer in none of them is usually paid for already, so before calling it unreadable this walks
the whole body (depth-limited) and reports:

* image URLs: ``http(s)://`` strings under an image-ish key (``url``, ``image``, ``sample``,
  ``src``...) or whose path ends in an image extension -- never a polling, webhook or docs link;
* inline images: long base64 strings (or ``data:image/`` URIs) that decode to a PNG, JPEG,
  WebP or GIF signature;
* task ids: ``taskId`` / ``task_id`` anywhere, or an ``id`` beside a ``polling_url`` or a
  pending status (a BFL submit answer ``{"id", "status": "Pending"}`` carries no URL);
* safety verdicts: Ideogram ``is_image_safe: false``, Imagen ``raiFilteredReason``, Gemini
  ``finishReason``/``blockReason``, BFL ``Request/Content Moderated``, Ark's
  ``OutputImageSensitiveContentDetected``, ``nsfw_content_detected``.

Only short, fixed words go into a verdict: never a URL or a message that could carry one.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

_MAX_DEPTH = 12
_URL_RE = re.compile(r"https?://[^\s\"'<>]+", re.IGNORECASE)
_IMAGE_PATH_RE = re.compile(r"\.(png|jpe?g|webp|gif|bmp|tiff?|avif|heic)$", re.IGNORECASE)
_B64_RE = re.compile(r"[A-Za-z0-9+/_\-\r\n]{100,}={0,2}")
_IMAGE_KEY_HINTS = ("url", "uri", "image", "img", "sample", "src", "link", "file", "output", "result", "data")
_NOT_IMAGE_KEY_HINTS = ("poll", "webhook", "callback", "doc", "help", "policy", "terms", "support")
_TASK_ID_KEYS = frozenset({"taskid", "task_id", "taskID".lower(), "job_id", "jobid", "prediction_id"})
# Statuses of a task that is still on its way (BFL's and the common gateway spellings).
PENDING_WORDS = frozenset(
    {
        "pending",
        "queued",
        "in queue",
        "submitted",
        "created",
        "starting",
        "processing",
        "running",
        "generating",
        "reasoning",
        "in progress",
    }
)
# Gemini's Candidate.FinishReason / PromptFeedback.BlockReason safety words (upper-cased on
# comparison): a verdict here, and with NO_IMAGE the Gemini reader's refusals
# (responses.gemini.REFUSAL_FINISH_REASONS).
SAFETY_FINISH_REASONS = frozenset(
    {
        "SAFETY",
        "IMAGE_SAFETY",
        "PROHIBITED_CONTENT",
        "IMAGE_PROHIBITED_CONTENT",
        "BLOCKLIST",
        "SPII",
        "RECITATION",
        "IMAGE_RECITATION",
    }
)
_VERDICT_CODE_MARKERS = ("sensitive", "moderat", "content_policy", "nsfw", "safety", "unsafe", "blocked")
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


@dataclass
class ScanResult:
    """What a scan found, in document order; ``paths`` say where (for the log, no values)."""

    urls: list[str] = field(default_factory=list)
    inline: list[str] = field(default_factory=list)  # base64 text or data: URIs, still encoded
    task_ids: list[str] = field(default_factory=list)
    verdicts: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)

    @property
    def found_images(self) -> bool:
        return bool(self.urls or self.inline)


def looks_like_image_b64(text: str) -> bool:
    """Whether ``text`` (base64 or a ``data:image/`` URI) decodes to a known image signature."""
    value = text.strip()
    if value[:11].lower().startswith("data:image/"):
        return ";base64," in value[:80]
    if len(value) < 100 or not _B64_RE.fullmatch(value[:4096]):
        return False
    head = re.sub(r"\s+", "", value[:64]).replace("-", "+").replace("_", "/")
    head = head[: len(head) - len(head) % 4]
    try:
        raw = base64.b64decode(head, validate=True)
    except (binascii.Error, ValueError):
        return False
    if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return True
    return any(raw.startswith(signature) for signature, _ in _SIGNATURES)


def _key_hints_image(key: str) -> bool:
    lowered = key.lower()
    if any(word in lowered for word in _NOT_IMAGE_KEY_HINTS):
        return False
    return any(word in lowered for word in _IMAGE_KEY_HINTS)


def is_pending_status(status: Any) -> bool:
    """A status string saying the task is still on its way (``Pending``, ``in_progress``...)."""
    return isinstance(status, str) and re.sub(r"[\s_-]+", " ", status.strip().lower()) in PENDING_WORDS


def verdicts_in(item: Mapping[str, Any]) -> Iterator[str]:
    """The safety verdicts one object states about itself, as short fixed words."""
    if item.get("is_image_safe") is False:
        yield "is_image_safe: false"
    reason = item.get("raiFilteredReason") or item.get("rai_filtered_reason")
    if isinstance(reason, str) and reason.strip():
        yield "raiFilteredReason"
    for key in ("finishReason", "finish_reason", "blockReason", "block_reason"):
        value = item.get(key)
        if isinstance(value, str) and value.strip().upper() in SAFETY_FINISH_REASONS:
            yield f"{key}: {value.strip().upper()}"
    status = item.get("status")
    if isinstance(status, str) and "moderat" in status.lower():
        yield f"status: {status.strip()[:40]}"
    for key in ("nsfw_content_detected", "has_nsfw_concepts"):
        flags = item.get(key)
        if flags is True or (isinstance(flags, list) and any(flag is True for flag in flags)):
            yield f"{key}: true"
    code = item.get("code")
    if isinstance(code, str) and any(marker in code.lower() for marker in _VERDICT_CODE_MARKERS):
        yield f"code: {code.strip()[:60]}"


class _Scanner:
    def __init__(self) -> None:
        self.result = ScanResult()

    def walk(self, node: Any, path: str, key: str, depth: int) -> None:
        if depth > _MAX_DEPTH:
            return
        if isinstance(node, Mapping):
            self._mapping(node, path, depth)
        elif isinstance(node, list):
            for index, item in enumerate(node):
                self.walk(item, f"{path}[{index}]", key, depth + 1)
        elif isinstance(node, str):
            self._string(node, path, key)

    def _mapping(self, node: Mapping[str, Any], path: str, depth: int) -> None:
        self.result.verdicts.extend(verdicts_in(node))
        task_id = self._task_id(node)
        if task_id is not None:
            self.result.task_ids.append(task_id)
            self.result.paths.append(f"{path or '$'} (task id)")
        for key, value in node.items():
            if isinstance(key, str):
                self.walk(value, f"{path}.{key}" if path else key, key, depth + 1)

    @staticmethod
    def _task_id(node: Mapping[str, Any]) -> str | None:
        for key, value in node.items():
            if isinstance(key, str) and key.lower() in _TASK_ID_KEYS and isinstance(value, (str, int)):
                text = str(value).strip()
                if text:
                    return text
        ident = node.get("id")
        beside = node.get("polling_url") or node.get("pollingUrl") or is_pending_status(node.get("status"))
        if isinstance(ident, (str, int)) and not isinstance(ident, bool) and str(ident).strip() and beside:
            return str(ident).strip()
        return None

    def _string(self, text: str, path: str, key: str) -> None:
        value = text.strip()
        if _URL_RE.fullmatch(value):
            bare = value.split("?", 1)[0].split("#", 1)[0]
            excluded = any(word in key.lower() for word in _NOT_IMAGE_KEY_HINTS)
            if not excluded and (_key_hints_image(key) or _IMAGE_PATH_RE.search(bare)):
                self.result.urls.append(value)
                self.result.paths.append(path)
        elif looks_like_image_b64(value):
            self.result.inline.append(value)
            self.result.paths.append(path)


def scan(body: Any) -> ScanResult:
    """Walk all of ``body`` for images, task ids and safety verdicts (see the module docstring)."""
    scanner = _Scanner()
    scanner.walk(body, "", "", 0)
    result = scanner.result
    result.verdicts = list(dict.fromkeys(result.verdicts))
    result.task_ids = list(dict.fromkeys(result.task_ids))
    return result


def safety_verdicts(body: Any) -> list[str]:
    """Every safety verdict anywhere in ``body`` (deduplicated, in document order)."""
    return scan(body).verdicts
