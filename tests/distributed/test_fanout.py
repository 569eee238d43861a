"""A fan-out of mapped generations on two Celery workers: sync models (sent from a worker or
from a triggerer) and deferrable Flux.

Every task succeeds, Celery spreads them over both workers, each image is written to S3
exactly once (the bucket is versioned), the sandbox saw exactly one billable POST per task,
the deferrable requests went through a triggerer, and a downstream task reads every image back
through S3 -- on whichever worker, since no worker shares a disk with another.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.distributed.cluster import TRIGGERERS, WORKERS
from tests.distributed.evidence import Deployment, request

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(900)]

SYNC_MODELS = ("qianfan/qwen-image", "openai/gpt-image-1.5", "google/imagen-4.0-fast-generate-001")
FLUX = "bfl/flux-2-pro"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp"}


def fan_out(count: int) -> list[dict[str, object]]:
    """Every third request is a deferrable Flux generation, the rest cycle through sync models;
    every sixth is a sync model sent from the triggerer (``deferrable=True``)."""
    requests = []
    for i in range(count):
        if i % 3 == 2:
            requests.append(request(FLUX, i, deferrable=True))
        else:
            requests.append(request(SYNC_MODELS[i % len(SYNC_MODELS)], i, deferrable=i % 6 == 1))
    return requests


def test_fan_out_over_two_workers_stores_each_image_once_and_pays_once(cluster_ready: Deployment) -> None:
    deployment = cluster_ready
    sandbox = deployment.sandbox.client
    # Latency like the real service (scaled down): sync answers take 3 s, Flux tasks 4 s.
    sandbox.inject(kind="slow", delay_s=3.0, method="POST", path=r"^/v1/models/(?!bfl/).*/predictions$")
    sandbox.configure(task_delay_s=4.0)
    requests = fan_out(24)
    flux = {i for i, r in enumerate(requests) if r["model"] == FLUX}
    deferrable = {i for i, r in enumerate(requests) if r["deferrable"]}
    assert flux < deferrable

    run = deployment.run(requests)
    assert run.wait(timeout=600) == "success", run.observer.task_states
    cluster = deployment.cluster

    tis = run.task_instances()
    assert sorted(tis) == list(range(len(requests)))
    assert {i: ti["state"] for i, ti in tis.items()} == dict.fromkeys(range(len(requests)), "success")
    # Both workers ran generations; nothing ran anywhere else.
    hosts = {ti["hostname"] for ti in tis.values()}
    assert hosts == set(WORKERS), hosts

    # One billable POST per task, and each image written once, under its own task's prefix.
    posts = run.billable_posts()
    assert {i: len(p) for i, p in posts.items()} == dict.fromkeys(range(len(requests)), 1)
    for index in range(len(requests)):
        writes = run.image_writes(index)
        assert len(writes) == 1 and set(writes.values()) == {1}, (index, writes)
        assert (run.manifest(index) or {}).get("status") == "complete"

    # The Flux waits and the deferrable sync requests went through a triggerer; the rest never deferred.
    deferred = {index for index, events in run.events().items() if "deferred" in events}
    assert deferred == deferrable
    trigger_logs = [p for name in TRIGGERERS for p in cluster.node_logs(name).rglob("*.log.trigger.*.log")]
    assert {p.parent.name for p in trigger_logs if run.run_id in str(p)} == {
        f"map_index={i}" for i in deferrable
    }

    # A downstream task on either worker read every image back through S3.
    assert cluster.get_xcom(run.dag_id, run.run_id, "read_back") == {"images": len(requests)}
    # Nothing landed on a worker's or triggerer's own disk: the images live in S3 only.
    local = [
        p
        for name in (*WORKERS, *TRIGGERERS)
        for p in Path(cluster.node_home(name)).rglob("*")
        if p.suffix in IMAGE_SUFFIXES
    ]
    assert local == []

    row = run.figures(
        "fan-out: sync (worker and triggerer) + deferrable Flux",
        kills="none",
        notes=f"{len(deferrable - flux)} sync requests sent from a triggerer; {len(flux)} Flux waits",
    )
    assert (row.duplicate_posts, row.images_lost, row.images_stored) == (0, 0, len(requests))
