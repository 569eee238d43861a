"""Read a task instance's manifest for the gallery, and decide which images may be served.

The rule for serving: a request names an image by its file name only (``image-000.png``);
it is served when the manifest found under the task instance's own prefix records an
image at exactly ``<prefix>/<name>`` in the same store. Nothing from the request reaches
storage unchecked: no path, no bucket, no ``..``. A manifest whose record points anywhere
else (another prefix, another bucket, a parent directory) gets that record ignored.

Manifests are read as plain JSON, tolerantly: fields added by newer versions (cost
actuals, new families) are shown when present and never required.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_aihubmix.exceptions import ImageNotServedError
from airflow_provider_aihubmix.redaction import PROMPT_FIELDS
from airflow_provider_aihubmix.storage import (
    AIHubMixStorageError,
    ObjectStore,
    join_key,
    manifest_key,
    task_prefix,
)

#: What an image's file name may look like: the engine's ``image-NNN`` plus a sniffed extension.
IMAGE_NAME = re.compile(r"^image-[0-9]{3,6}\.(?:png|jpg|jpeg|webp|gif)$")
# Where a request names its size, by family (wire names as the manifest records them).
_SIZE_KEYS = ("size", "aspect_ratio", "aspectRatio", "image_size", "imageSize", "resolution")
_COST_KEYS = ("actual_cost_usd", "cost_usd", "estimated_cost_usd")


@dataclass(frozen=True)
class TaskRef:
    """One task instance, as the request names it."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int = -1

    @property
    def prefix(self) -> str:
        return task_prefix(self.dag_id, self.run_id, self.task_id, self.map_index)


def read_manifest(store: ObjectStore, ref: TaskRef) -> dict[str, Any] | None:
    """The manifest under ``ref``'s prefix, or None when there is none (or it names another task).

    :raises AIHubMixStorageError: when the store cannot be read.
    """
    raw = store.read_json(manifest_key(ref.prefix))
    if not isinstance(raw, dict):
        return None
    # A manifest copied (or planted) under another task's prefix is not that task's manifest.
    recorded = (raw.get("dag_id"), raw.get("run_id"), raw.get("task_id"), raw.get("map_index", -1))
    if recorded != (ref.dag_id, ref.run_id, ref.task_id, ref.map_index):
        return None
    return raw


def servable_images(
    store: ObjectStore, ref: TaskRef, manifest: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """``{file name: record}`` of the manifest's records stored directly under ``ref``'s prefix."""
    images: dict[str, dict[str, Any]] = {}
    for record in manifest.get("records") or []:
        if not isinstance(record, dict) or not isinstance(record.get("uri"), str):
            continue
        try:
            key = store.key_for(record["uri"])
        except (AIHubMixStorageError, ValueError):
            continue  # another bucket, another directory, or not a URI of this store
        head, _, name = key.rpartition("/")
        if head == ref.prefix and IMAGE_NAME.match(name) and key == join_key(ref.prefix, name):
            images[name] = record
    return images


def resolve_image(store: ObjectStore, ref: TaskRef, manifest: Mapping[str, Any] | None, name: str) -> str:
    """The store key of image ``name`` of ``ref``; :class:`ImageNotServedError` unless the manifest has it."""
    if not IMAGE_NAME.match(name):
        raise ImageNotServedError(f"{name!r} is not an image file name")
    if manifest is None or name not in servable_images(store, ref, manifest):
        raise ImageNotServedError(f"{name!r} is not recorded in the manifest of {ref.task_id}")
    return join_key(ref.prefix, name)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def task_cost(manifest: Mapping[str, Any]) -> float | None:
    """The task's cost in USD as the manifest states it (an actual over an estimate); None if unknown."""
    for key in _COST_KEYS:
        if (value := _number(manifest.get(key))) is not None:
            return value
    cost = manifest.get("cost")
    if isinstance(cost, dict):
        for key in ("actual", "estimated", "actual_usd", "total_usd"):
            if (value := _number(cost.get(key))) is not None:
                return value
    return None


def cost_kind(manifest: Mapping[str, Any]) -> str | None:
    """``actual`` when the manifest records what was billed, ``estimated`` for an estimate only."""
    cost = manifest.get("cost") if isinstance(manifest.get("cost"), dict) else {}
    assert isinstance(cost, dict)
    if _number(manifest.get("actual_cost_usd")) is not None or _number(cost.get("actual")) is not None:
        return "actual"
    return "estimated" if task_cost(manifest) is not None else None


def image_costs(manifest: Mapping[str, Any]) -> dict[int, float]:
    """``{image index: USD}`` from the manifest's per-image cost breakdown, where it has one."""
    cost = manifest.get("cost")
    out: dict[int, float] = {}
    if isinstance(cost, dict):
        for item in cost.get("images") or []:
            if not isinstance(item, dict) or not isinstance(item.get("index"), int):
                continue
            for key in ("actual", "estimated", *_COST_KEYS):
                if (value := _number(item.get(key))) is not None:
                    out[item["index"]] = value
                    break
    return out


def outcome(manifest: Mapping[str, Any] | None, ti_state: str | None) -> str:
    """One word for the task's result: complete, moderated, failed, ambiguous, running or no_manifest."""
    if manifest is None:
        return "failed" if ti_state in ("failed", "upstream_failed") else "no_manifest"
    status = manifest.get("status")
    if status == "complete":
        return "complete"
    if status == "failed":
        return "moderated" if "moderat" in (last_error(manifest) or "").lower() else "failed"
    if status == "ambiguous":
        return "ambiguous"
    # submitting / submitted / received: still going, unless Airflow says the task ended.
    return "failed" if ti_state in ("failed", "upstream_failed", "up_for_retry") else "running"


def last_error(manifest: Mapping[str, Any]) -> str | None:
    attempts = manifest.get("attempts") or []
    for attempt in reversed(attempts):
        if isinstance(attempt, dict) and attempt.get("error"):
            return str(attempt["error"])
    return None


def prompt_fields(input_: Mapping[str, Any], *, show_prompt: bool) -> dict[str, Any]:
    """The prompt as the gallery shows it: the text, or only its sha256 when the task hid it."""
    prompt = input_.get("prompt")
    text = prompt if isinstance(prompt, str) else None
    return {
        "prompt": text if show_prompt else None,
        "prompt_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest() if text is not None else None,
        "prompt_hidden": text is not None and not show_prompt,
    }


def earlier_purchases(manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The task's earlier purchases kept under ``earlier/`` (images, cost): paid for, still counted."""
    kept = []
    for item in manifest.get("earlier") or []:
        if isinstance(item, dict):
            actual, estimated = _number(item.get("actual_cost_usd")), _number(item.get("estimated_cost_usd"))
            images = item.get("images")
            kept.append(
                {
                    "images": images if isinstance(images, int) else None,
                    "cost_usd": actual if actual is not None else estimated,
                }
            )
    return kept


def task_view(
    ref: TaskRef,
    manifest: Mapping[str, Any] | None,
    images: Mapping[str, Mapping[str, Any]],
    *,
    show_prompt: bool,
    image_src: Callable[[str], str],
    thumb_src: Callable[[str], str] | None = None,
) -> dict[str, Any]:
    """What the gallery page shows for one task instance (JSON-serialisable).

    ``image_src(name)`` is the URL the page loads image ``name`` from, ``thumb_src(name)``
    the URL of its thumbnail (the full image when None).
    """
    if manifest is None:
        return {"manifest": None, "images": []}
    input_ = manifest.get("input") if isinstance(manifest.get("input"), dict) else {}
    assert isinstance(input_, dict)
    params = {
        k: v
        for k, v in input_.items()
        if k not in PROMPT_FIELDS and isinstance(v, (str, int, float, bool)) and len(str(v)) <= 200
    }
    costs = image_costs(manifest)
    thumbnails = manifest.get("thumbnails") if isinstance(manifest.get("thumbnails"), dict) else {}
    assert isinstance(thumbnails, dict)
    shown = []
    for name, record in sorted(images.items(), key=lambda item: item[1].get("index", 0)):
        index = record.get("index")
        thumbnail = thumbnails.get(str(index)) if isinstance(thumbnails.get(str(index)), dict) else {}
        assert isinstance(thumbnail, dict)
        shown.append(
            {
                "name": name,
                "src": image_src(name),
                "thumb": thumb_src(name) if thumb_src is not None else image_src(name),
                "thumb_sha256": thumbnail.get("sha256"),
                "index": index,
                "width": record.get("width"),
                "height": record.get("height"),
                "content_type": record.get("content_type"),
                "bytes": record.get("bytes"),
                "sha256": record.get("sha256"),
                "seed": record.get("seed", input_.get("seed")),
                "revised_prompt": record.get("revised_prompt") if show_prompt else None,
                "cost_usd": costs.get(index) if isinstance(index, int) else None,
            }
        )
    return {
        "manifest": {
            "status": manifest.get("status"),
            "model": manifest.get("model"),
            "family": manifest.get("family"),
            **prompt_fields(input_, show_prompt=show_prompt),
            "size": next((input_[k] for k in _SIZE_KEYS if input_.get(k)), None),
            "seed": input_.get("seed"),
            "parameters": params,
            "cost_usd": task_cost(manifest),
            "cost_kind": cost_kind(manifest),
            "error": last_error(manifest) if manifest.get("status") != "complete" else None,
            "try_number": manifest.get("try_number"),
            "remote_task_ids": [
                t.get("task_id") for t in manifest.get("remote_tasks") or [] if isinstance(t, dict)
            ],
            "earlier": earlier_purchases(manifest),
        },
        "images": shown,
    }


__all__ = [
    "IMAGE_NAME",
    "TaskRef",
    "image_costs",
    "outcome",
    "read_manifest",
    "resolve_image",
    "servable_images",
    "task_cost",
    "task_view",
]
