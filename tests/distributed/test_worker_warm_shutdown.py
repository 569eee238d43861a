"""Celery warm shutdown (issue 23 item 5): a worker gets SIGTERM while its tasks hold a blocking request.

Sync qwen-image generations are held 30 s on the sandbox (the request is processed and billed at
once). Once a worker holds a task whose POST is out, its main process gets SIGTERM -- what
Kubernetes, systemd and ``docker stop`` send first. The figures (how long the worker took to exit,
what became of its tasks, POSTs per task) go to docs/DEPLOYMENT.md.
"""

from __future__ import annotations

import time

import pytest

from tests.distributed.cluster import WORKERS
from tests.distributed.evidence import Deployment, request
from tests.e2e.harness import wait_for

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(600)]

HELD_POST = "qianfan/qwen-image"
HOLD_S = 30.0


def test_warm_shutdown_lets_a_running_request_finish(cluster_ready: Deployment) -> None:
    deployment = cluster_ready
    cluster = deployment.cluster
    sandbox = deployment.sandbox.client
    sandbox.inject(kind="slow", delay_s=HOLD_S, method="POST", path=rf"^/v1/models/{HELD_POST}/predictions$")
    run = deployment.run([request(HELD_POST, i) for i in range(4)])

    def victim_found() -> str | None:
        posted = set(run.billable_posts())
        for index, ti in run.task_instances().items():
            if ti["state"] == "running" and index in posted and ti["hostname"] in WORKERS:
                return str(ti["hostname"])
        return None

    victim = wait_for(victim_found, 300, "a worker holding a task mid-request", interval=0.5)
    held = {
        i for i, ti in run.task_instances().items() if ti["state"] == "running" and ti["hostname"] == victim
    }
    termed = time.monotonic()
    component = cluster.terminate(victim)
    try:
        component.process.wait(timeout=HOLD_S + 60)
    finally:
        exit_s = time.monotonic() - termed
        cluster.start_component(victim)  # back for the next scenario (cluster_ready expects it)
    state = run.wait(timeout=300)
    tis = run.task_instances()
    posts = run.billable_posts()
    outcome = {i: (tis[i]["state"], len(posts.get(i, []))) for i in sorted(held)}
    print(
        f"warm shutdown: worker {victim} holding {len(held)} task(s) mid-request exited {exit_s:.1f} s "
        f"after SIGTERM (requests held {HOLD_S:.0f} s); run {state}; held tasks (state, POSTs): {outcome}; "
        f"all POSTs per task: { {i: len(p) for i, p in posts.items()} }"
    )
    assert all(len(p) == 1 for p in posts.values()), posts
