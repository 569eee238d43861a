"""The DAG budget on two Celery workers (issue 22): 40 mapped tasks start together under a cap
that fits exactly 10 -> exactly 10 billable POSTs, 30 refused naming the cap, and the run's
committed money (the reservation ledger on the S3 server) never above the cap."""

from __future__ import annotations

import json

import pytest

from airflow_provider_aihubmix.storage.keys import run_prefix
from tests.distributed.cluster import WORKERS
from tests.distributed.evidence import DAG_ID_ONCE, Deployment, Run, request

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(900)]

MODEL = "google/imagen-4.0-fast-generate-001"  # 0.02 USD per image; n=1 (the default is 4)
CAP = 10 * 0.02 + 0.01


def test_forty_mapped_tasks_under_a_cap_for_ten_buy_exactly_ten(cluster_ready: Deployment) -> None:
    deployment = cluster_ready
    deployment.sandbox.client.inject(kind="slow", delay_s=2.0, method="POST", path=r"^/v1/models/google/")
    run = deployment.run(
        [request(MODEL, i, n=1) for i in range(40)], dag_id=DAG_ID_ONCE, conf={"max_cost_usd": CAP}
    )
    assert run.wait(timeout=600) == "failed", run.observer.task_states

    tis = run.task_instances()
    states = [ti["state"] for ti in tis.values()]
    assert states.count("success") == 10 and states.count("failed") == 30, (states, _why(run, tis))
    posts = run.billable_posts()
    assert sum(len(p) for p in posts.values()) == 10
    # The ledger on S3: 30 refusals recorded, each with the money committed when it was refused.
    s3, bucket = deployment.s3, deployment.bucket
    folder = f"_aihubmix_budget/{run_prefix(run.dag_id, run.run_id)}/"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=folder).get("Contents", [])]
    docs = {k: json.loads(s3.get_object(Bucket=bucket, Key=k)["Body"].read()) for k in keys}
    refused = [d for k, d in docs.items() if "/tasks/" in k and d["state"] == "refused"]
    assert len(refused) == 30
    # Each chain slot holds the entries it decided (combining): dense, never over the cap.
    chain = sorted(
        (e for k, d in docs.items() if "/chain/" in k for e in d["entries"]), key=lambda e: e["seq"]
    )
    assert [e["seq"] for e in chain] == list(range(len(chain)))
    assert max(e["total_micro_usd"] for e in chain) <= round(CAP * 1_000_000)
    spent = [run.manifest(i) for i in range(40)]
    actual = sum(m["actual_cost_usd"] or 0 for m in spent if m and m["status"] == "complete")
    assert actual <= CAP
    run.figures("DAG budget: 40 mapped, cap fits 10", "none", notes="exactly 10 POSTs, 30 refused")


def _why(run: Run, tis: dict[int, dict[str, object]]) -> str:
    """The last lines of each failed task's log that are not a budget refusal (for a failure)."""
    out = []
    for index, ti in tis.items():
        if ti["state"] != "failed":
            continue
        for node in WORKERS:
            folder = run.cluster.node_logs(node) / f"dag_id={run.dag_id}" / f"run_id={run.run_id}"
            for path in (folder / "task_id=generate" / f"map_index={index}").glob("*.log"):
                text = path.read_text(errors="replace")
                if "DAG budget reached" not in text:
                    out.append(f"[{index}] {text[-1500:]}")
    return "\n".join(out)
