"""S3 unreachable for 30 seconds in the middle of a fan-out: nothing lost, nothing bought twice.

The workers reach S3 only through a proxy; while generations are in flight it resets every
open connection and refuses new ones for 30 s. Answers that arrive during the outage are held
while the store retries with backoff (about a minute of patience by default), tasks that
start during it wait or fail before buying anything and are retried by Airflow. When S3 is
back every task succeeds, with one billable POST each and each image written once.
"""

from __future__ import annotations

import time

import pytest

from tests.distributed.cluster import WORKERS
from tests.distributed.evidence import Deployment, request
from tests.e2e.harness import wait_for

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(900)]

SYNC_MODELS = ("qianfan/qwen-image", "openai/gpt-image-1.5")
FLUX = "bfl/flux-2-pro"
OUTAGE_S = 30.0


def test_thirty_seconds_without_s3_loses_nothing_and_buys_nothing_twice(cluster_ready: Deployment) -> None:
    deployment = cluster_ready
    cluster = deployment.cluster
    sandbox = deployment.sandbox.client
    # Answers take 8 s, so the outage starts while requests are in flight.
    sandbox.inject(kind="slow", delay_s=8.0, method="POST", path=r"^/v1/models/(?!bfl/).*/predictions$")
    sandbox.configure(task_delay_s=10.0)
    requests = [
        request(FLUX, i, deferrable=True) if i % 4 == 3 else request(SYNC_MODELS[i % 2], i) for i in range(16)
    ]
    run = deployment.run(requests)
    wait_for(lambda: len(run.billable_posts()) >= 4, 300, "four requests in flight", interval=0.5)

    deployment.proxy.cut()
    down_at = time.monotonic()
    in_flight_at_cut = set(run.billable_posts())
    while time.monotonic() - down_at < OUTAGE_S:  # the outage itself, not an assertion
        run.observer.poll()
        time.sleep(1.0)
    deployment.proxy.down = False
    dropped = deployment.proxy.dropped

    assert run.wait(timeout=600) == "success", run.observer.task_states
    tis = run.task_instances()
    indexes = range(len(requests))
    assert {i: ti["state"] for i, ti in tis.items()} == dict.fromkeys(indexes, "success")
    posts = run.billable_posts()
    assert {i: len(p) for i, p in posts.items()} == dict.fromkeys(indexes, 1)
    for index in indexes:
        writes = run.image_writes(index)
        assert len(writes) == 1 and set(writes.values()) == {1}, (index, writes)

    # The outage was felt: connections refused, and tasks waited for S3 inside their try.
    assert dropped > 0
    logs = [
        p.read_text(errors="replace")
        for name in WORKERS
        for p in cluster.node_logs(name).rglob("attempt=*.log")
        if run.run_id in str(p)
    ]
    waited = sum(1 for text in logs if "retrying in" in text and "S3" in text)
    assert waited > 0
    retried = sum(1 for ti in tis.values() if int(ti["try_number"]) > 1)

    row = run.figures(
        "S3 unreachable for 30 s mid-run",
        kills=f"S3 down {OUTAGE_S:.0f} s ({dropped} connections refused)",
        notes=(
            f"{len(in_flight_at_cut)} requests in flight at the cut; {waited} task tries waited for S3 "
            f"and went on; {retried} tasks needed an Airflow retry"
        ),
    )
    assert (row.duplicate_posts, row.images_lost, row.images_stored) == (0, 0, len(requests))
