"""The manifest model and the request fingerprint: stable, secret-free, round-trips through JSON."""

from __future__ import annotations

import json

import pytest

from airflow_provider_aihubmix.engine.manifest import (
    Manifest,
    ManifestStatus,
    ReceivedImage,
    fingerprint,
    redact_input,
)

DATA_URI = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def manifest(**overrides: object) -> Manifest:
    fields: dict[str, object] = {
        "status": ManifestStatus.SUBMITTING,
        "fingerprint": "f" * 64,
        "model": "google/imagen-4.0-generate-001",
        "family": "imagen",
        "input": {"prompt": "a kite"},
        "dag_id": "d",
        "run_id": "r",
        "task_id": "t",
        "map_index": 3,
        "try_number": 1,
    }
    return Manifest.model_validate({**fields, **overrides})


def test_fingerprint_is_stable_and_ignores_key_order() -> None:
    a = fingerprint("m/x", {"prompt": "p", "size": "1K", "n": 2})
    b = fingerprint("m/x", {"n": 2, "size": "1K", "prompt": "p"})
    assert a == b and len(a) == 64


@pytest.mark.parametrize(
    "change",
    [
        {"prompt": "q"},
        {"size": "2K"},
        {"n": 3},
        {"image": ["s3://b/other.png"]},
    ],
)
def test_fingerprint_changes_with_what_is_bought(change: dict[str, object]) -> None:
    base = {"prompt": "p", "size": "1K", "n": 2, "image": ["s3://b/ref.png"]}
    assert fingerprint("m/x", base) != fingerprint("m/x", {**base, **change})
    assert fingerprint("m/x", base) != fingerprint("m/y", base)


def test_presigned_reference_signatures_are_not_persisted() -> None:
    signed = {"prompt": "p", "image": "https://bucket.s3.amazonaws.com/ref.png?X-Amz-Signature=secret123"}
    redacted = redact_input(signed)
    assert "secret123" not in json.dumps(redacted)
    assert redacted["image"].startswith("https://bucket.s3.amazonaws.com/ref.png?sha256=")


def test_inline_images_are_hashed_not_persisted() -> None:
    redacted = redact_input(
        {"prompt": "p", "image": [DATA_URI, "s3://b/k.png"], "nested": {"mask": DATA_URI}}
    )
    text = json.dumps(redacted)
    assert "iVBORw0KGgo" not in text
    assert redacted["image"][0].startswith("data:image/png;sha256=")
    assert redacted["image"][1] == "s3://b/k.png"
    assert redacted["nested"]["mask"] == redacted["image"][0]


def test_record_attempt_keeps_history_with_try_numbers() -> None:
    m = manifest()
    m.record_attempt(ManifestStatus.SUBMITTING)
    m.record_attempt(ManifestStatus.RECEIVED, request_id="req-1")
    m.try_number = 2
    m.record_attempt(ManifestStatus.COMPLETE)
    assert m.status is ManifestStatus.COMPLETE
    assert [(a.try_number, a.status.value, a.request_id) for a in m.attempts] == [
        (1, "submitting", None),
        (1, "received", "req-1"),
        (2, "complete", None),
    ]


def test_manifest_round_trips_through_json_with_received_images() -> None:
    m = manifest(
        status=ManifestStatus.RECEIVED,
        received=[
            ReceivedImage(index=0, key="p/image-000.png", sha256="a" * 64, seed=5),
            ReceivedImage(index=1, url="https://cdn/x.png?Signature=s", revised_prompt="better"),
        ],
    )
    again = Manifest.model_validate(json.loads(json.dumps(m.model_dump(mode="json"))))
    assert again == m
    assert again.received[1].url == "https://cdn/x.png?Signature=s"


def test_manifest_without_received_field_still_loads() -> None:
    # Manifests written before "received" existed must still be read (a retry across an upgrade).
    raw = manifest(status=ManifestStatus.COMPLETE).model_dump(mode="json")
    del raw["received"]
    assert Manifest.model_validate(raw).received == []


def test_unknown_status_is_rejected() -> None:
    with pytest.raises(ValueError):
        manifest(status="half-done")
