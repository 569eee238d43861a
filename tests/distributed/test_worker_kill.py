"""A Celery worker SIGKILLed while its tasks are mid-request and mid-store.

Sync generations are slowed on the sandbox two ways: Qwen-Image answers its POST only after
a long wait (the request is processed and billed at once), and Imagen answers at once but
the download of its image from the storage host stalls -- the task has recorded the answer
(manifest ``received``) and is streaming the image into S3. Once one worker holds at least
one task in each phase, it is SIGKILLed with its whole process group. The scheduler fails its
tasks when their heartbeats stop and Airflow retries them on the surviving worker:

* a task killed mid-store finishes from its manifest -- the image is fetched again from the
  URL the API answered with -- with no second POST;
* a task killed between sending and the answer fails clearly ("may have been billed")
  instead of buying again.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.distributed.cluster import WORKERS
from tests.distributed.evidence import Deployment, Run, request
from tests.e2e.harness import wait_for

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(900)]

HELD_POST = "qianfan/qwen-image"  # killed between sending the request and the answer
HELD_DOWNLOAD = "google/imagen-4.0-fast-generate-001"  # killed while storing the answer
HOLD_S = 45.0


def phases(run: Run) -> dict[str, dict[str, set[int]]]:
    """``{worker: {"request": {map_index...}, "store": {...}}}`` of the tasks running now."""
    running = {i: ti for i, ti in run.task_instances().items() if ti["state"] == "running"}
    posted = set(run.billable_posts())
    found: dict[str, dict[str, set[int]]] = {name: {"request": set(), "store": set()} for name in WORKERS}
    for index, ti in running.items():
        model = run.requests[index]["model"]
        host = ti["hostname"]
        if host not in found:
            continue
        if model == HELD_POST and index in posted:
            found[host]["request"].add(index)
        elif model == HELD_DOWNLOAD and (run.manifest(index) or {}).get("status") == "received":
            found[host]["store"].add(index)
    return found


def test_killed_worker_tasks_retry_elsewhere_without_paying_twice(cluster_ready: Deployment) -> None:
    deployment = cluster_ready
    cluster = deployment.cluster
    sandbox = deployment.sandbox.client
    held_posts = rf"^/v1/models/{HELD_POST}/predictions$"
    sandbox.inject(kind="slow", delay_s=HOLD_S, method="POST", path=held_posts)
    sandbox.inject(kind="slow", delay_s=HOLD_S, host="storage", path=r"^/images/")
    requests = [request(HELD_POST if i % 2 == 0 else HELD_DOWNLOAD, i) for i in range(12)]
    run = deployment.run(requests)

    def victim_found() -> tuple[str, dict[str, set[int]]] | None:
        for name, held in phases(run).items():
            if held["request"] and held["store"]:
                return name, held
        return None

    victim, held = wait_for(victim_found, 300, "a worker holding a task in each phase", interval=1.0)
    survivor = next(name for name in WORKERS if name != victim)
    killed = {
        i for i, ti in run.task_instances().items() if ti["state"] == "running" and ti["hostname"] == victim
    }
    manifests_at_kill: dict[int, Any] = {i: (run.manifest(i) or {}).get("status") for i in killed}
    killed_at = time.monotonic()
    cluster.kill(victim)
    sandbox.clear_faults()  # retries run at normal speed

    assert run.wait(timeout=600) == "failed", run.observer.task_states  # the possibly-billed tasks fail
    recovery_s = time.monotonic() - killed_at
    tis = run.task_instances()
    tries = run.tries()
    posts = run.billable_posts()
    indexes = range(len(requests))
    # Never a second billable POST, killed or not.
    assert all(len(p) == 1 for p in posts.values()), posts

    for index in killed:
        hosts = [row["hostname"] for row in tries[index]]
        assert hosts[0] == victim and survivor in hosts[1:], (index, hosts)
    answered = {i for i in killed if manifests_at_kill[i] in ("received", "complete")}
    # "submitting" is written just before the POST: such a task may have been billed, so it
    # is refused either way (the rare one killed before its POST left has no POST at all).
    unanswered = {i for i in killed if manifests_at_kill[i] == "submitting"}
    assert held["store"] <= answered and held["request"] <= unanswered
    for index in indexes:
        allowed = {0, 1} if index in unanswered - held["request"] else {1}
        assert len(posts.get(index, [])) in allowed, (index, posts.get(index))
        if index in unanswered:
            # Killed between sending and the answer: no rebuy, a clear failure on the retry.
            assert tis[index]["state"] == "failed", (index, tis[index])
            assert (run.manifest(index) or {}).get("status") == "submitting"
            logs = [
                p.read_text(errors="replace")
                for p in cluster.node_logs(survivor).rglob(f"map_index={index}/attempt=*.log")
                if run.run_id in str(p)
            ]
            assert any("may have been billed" in text for text in logs), index
            assert run.image_writes(index) == {}
        else:
            # Finished from the manifest where it was killed mid-store; stored once either way.
            assert tis[index]["state"] == "success", (index, tis[index])
            writes = run.image_writes(index)
            assert len(writes) == 1 and set(writes.values()) == {1}, (index, writes)

    row = run.figures(
        "worker SIGKILLed mid-request and mid-store",
        kills=f"1 worker holding {len(killed)} tasks",
        notes=(
            f"{len(answered)} killed mid-store finished from the manifest on the other worker; "
            f"{len(unanswered)} killed between send and answer failed 'may have been billed' (by design); "
            f"{len(killed) - len(answered) - len(unanswered)} killed before sending retried normally; "
            f"run done {recovery_s:.0f} s after the kill"
        ),
    )
    assert (row.duplicate_posts, row.images_lost) == (0, 0)
    assert row.succeeded == len(requests) - len(unanswered)
