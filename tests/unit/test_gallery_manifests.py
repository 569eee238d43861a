"""Which images the gallery may serve, decided from the manifest under the task's own prefix."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_aihubmix.gallery.manifests import (
    ImageNotServedError,
    TaskRef,
    cost_kind,
    image_costs,
    outcome,
    read_manifest,
    resolve_image,
    servable_images,
    task_cost,
    task_view,
)
from airflow_provider_aihubmix.storage import LocalObjectStore, manifest_key

REF = TaskRef("dag", "manual__2026-01-01T00:00:00+00:00", "gen", 2)


def manifest(store: LocalObjectStore, **overrides: Any) -> dict[str, Any]:
    uri = store.uri_for(f"{REF.prefix}/image-000.png")
    doc: dict[str, Any] = {
        "status": "complete",
        "model": "doubao/doubao-seedream-4-0",
        "family": "seedream",
        "input": {"prompt": "a fox", "size": "2K", "seed": 7},
        "dag_id": REF.dag_id,
        "run_id": REF.run_id,
        "task_id": REF.task_id,
        "map_index": REF.map_index,
        "try_number": 1,
        "records": [
            {"uri": uri, "index": 0, "sha256": "ab", "width": 8, "height": 8, "content_type": "image/png"}
        ],
        "cost": {
            "basis": "catalog_price_per_image",
            "total_usd": 0.03,
            "images": [{"index": 0, "estimated_cost_usd": 0.03}],
        },
    }
    doc.update(overrides)
    store.write_json(manifest_key(REF.prefix), doc)
    return doc


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore((tmp_path / "out").as_uri())


def test_an_image_recorded_under_the_task_prefix_is_served(store: LocalObjectStore) -> None:
    doc = manifest(store)
    assert read_manifest(store, REF) == doc
    assert resolve_image(store, REF, doc, "image-000.png") == f"{REF.prefix}/image-000.png"


@pytest.mark.parametrize(
    "name",
    [
        "../manifest.json",
        "manifest.json",
        "image-000.png/../x",
        "image-001.png",
        "/etc/passwd",
        "image-0.png",
        "",
    ],
)
def test_names_that_are_not_recorded_images_are_refused(store: LocalObjectStore, name: str) -> None:
    with pytest.raises(ImageNotServedError):
        resolve_image(store, REF, manifest(store), name)


def test_records_pointing_outside_the_task_prefix_are_ignored(
    store: LocalObjectStore, tmp_path: Path
) -> None:
    other_task = TaskRef(REF.dag_id, REF.run_id, "other", -1).prefix
    good = store.uri_for(f"{REF.prefix}/image-000.png")
    doc = manifest(
        store,
        records=[
            {"uri": good, "index": 0},
            {"uri": store.uri_for(f"{other_task}/image-001.png"), "index": 1},
            {"uri": (tmp_path / "elsewhere" / "image-002.png").as_uri(), "index": 2},
            {"uri": good.replace("image-000.png", "../image-003.png"), "index": 3},
            {"uri": "s3://another-bucket/image-004.png", "index": 4},
            {"uri": store.uri_for(f"{REF.prefix}/sub/image-005.png"), "index": 5},
        ],
    )
    assert list(servable_images(store, REF, doc)) == ["image-000.png"]
    for name in ("image-001.png", "image-002.png", "image-003.png", "image-004.png", "image-005.png"):
        with pytest.raises(ImageNotServedError):
            resolve_image(store, REF, doc, name)


def test_a_manifest_naming_another_task_instance_is_not_read(store: LocalObjectStore) -> None:
    manifest(store, map_index=3)
    assert read_manifest(store, REF) is None
    with pytest.raises(ImageNotServedError):
        resolve_image(store, REF, None, "image-000.png")


def test_the_view_hides_a_prompt_the_task_kept_out_of_lineage(store: LocalObjectStore) -> None:
    doc = manifest(store)
    images = servable_images(store, REF, doc)
    hidden = task_view(REF, doc, images, show_prompt=False, image_src=lambda name: f"/img/{name}")
    assert hidden["manifest"]["prompt"] is None
    assert hidden["manifest"]["prompt_sha256"] == hashlib.sha256(b"a fox").hexdigest()
    assert "a fox" not in json.dumps(hidden)
    shown = task_view(REF, doc, images, show_prompt=True, image_src=lambda name: f"/img/{name}")
    assert shown["manifest"]["prompt"] == "a fox" and shown["manifest"]["size"] == "2K"
    (image,) = shown["images"]
    assert image == {
        "name": "image-000.png",
        "src": "/img/image-000.png",
        "thumb": "/img/image-000.png",  # no thumbnail URL given: the full image
        "thumb_sha256": None,
        "index": 0,
        "width": 8,
        "height": 8,
        "content_type": "image/png",
        "bytes": None,
        "sha256": "ab",
        "seed": 7,
        "revised_prompt": None,
        "cost_usd": 0.03,
    }


def test_cost_is_read_where_the_manifest_has_it_and_absent_otherwise() -> None:
    assert task_cost({"estimated_cost_usd": 0.04}) == 0.04
    assert task_cost({"actual_cost_usd": 0.05, "estimated_cost_usd": 0.04}) == 0.05
    assert task_cost({"cost": {"total_usd": 0.02}}) == 0.02
    assert task_cost({"cost": {"total_usd": None}}) is None
    assert task_cost({}) is None
    # The manifest's cost object: an actual figure wins over the estimate.
    assert task_cost({"cost": {"estimated": 0.04, "actual": None}}) == 0.04
    assert task_cost({"cost": {"estimated": 0.04, "actual": 0.039}}) == 0.039
    assert image_costs({"cost": {"images": [{"index": 0, "estimated": 0.02, "actual": 0.019}]}}) == {0: 0.019}
    assert cost_kind({"cost": {"estimated": 0.04, "actual": 0.039}}) == "actual"
    assert cost_kind({"estimated_cost_usd": 0.04}) == "estimated"
    assert cost_kind({}) is None


@pytest.mark.parametrize(
    ("status", "error", "ti_state", "expected"),
    [
        ("complete", None, "success", "complete"),
        (
            "failed",
            "Your request was rejected by the safety system (upstream moderation)",
            "failed",
            "moderated",
        ),
        ("failed", "HTTP 400 bad size", "failed", "failed"),
        ("ambiguous", "read timeout", "failed", "ambiguous"),
        ("submitted", None, "deferred", "running"),
        ("submitted", None, "failed", "failed"),
    ],
)
def test_outcome(status: str, error: str | None, ti_state: str, expected: str) -> None:
    doc = {"status": status, "attempts": [{"error": error}]}
    assert outcome(doc, ti_state) == expected


def test_no_manifest_outcome() -> None:
    assert outcome(None, "failed") == "failed"
    assert outcome(None, "running") == "no_manifest"
