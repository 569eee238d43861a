"""gpt-image sent from a real triggerer, which is SIGKILLed at the two moments that matter.

A real deployment (scheduler, dag-processor, triggerer, api-server; LocalExecutor; SQLite)
runs two deferrable gpt-image tasks against the sandbox, storing on the moto S3 server
through :class:`S3Tap`. The triggerer is SIGKILLed exactly once, at the moment the tap has
stored the ``received`` manifest of task ``stored`` and before that trigger hears back --
while the request of task ``lost`` (held 40 s by the sandbox) is in flight. A new
triggerer adopts both triggers:

* ``stored``'s answer is in storage: it completes with one POST, nothing sent again;
* ``lost`` was sent and its answer never recorded: it fails saying it may have been billed,
  with one POST -- neither ever sends twice.

The triggerer runs with ``AIRFLOW_DISABLE_GREENBACK_PORTAL=true``: a sync SDK call from the
event loop would raise, so success also proves storage and connections stay off the loop.
"""

from __future__ import annotations

import hashlib
import textwrap
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from airflow_provider_aihubmix.sandbox import SandboxServer
from tests.e2e.harness import AirflowCluster, wait_for
from tests.e2e.s3_tap import S3Tap
from tests.fixtures.airflow import AirflowClusterFactory
from tests.fixtures.s3 import S3Bucket, aws_connection_json

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(360)]

DAG_ID = "aihubmix_sync_deferrable_e2e"
STORED_PATH = "/v1/models/openai/gpt-image-1-mini/predictions"
LOST_PATH = "/v1/models/openai/gpt-image-1/predictions"

DAG_FILE = textwrap.dedent(
    '''
    """Two deferrable gpt-image generations (written by the end-to-end test)."""
    import os

    import pendulum
    from airflow.sdk import DAG

    from airflow_provider_aihubmix.operators.images import AIHubMixOpenAIImageOperator

    with DAG(
        "aihubmix_sync_deferrable_e2e",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        default_args={"retries": 0},
    ):
        for task_id, model in (("stored", "gpt-image-1-mini"), ("lost", "gpt-image-1")):
            AIHubMixOpenAIImageOperator(
                task_id=task_id,
                model=model,
                prompt=f"a lighthouse at dusk ({task_id})",
                quality="low",
                deferrable=True,
                output_uri=os.environ["AIHUBMIX_OUTPUT_URI"],
            )
    '''
)


def xcom(cluster: AirflowCluster, run_id: str, task_id: str) -> Any:
    path = f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
    return cluster.api("GET", path, params={"deserialize": True})["value"]


def in_flight(sandbox: SandboxServer, path: str) -> bool:
    return any(r["status"] is None for r in sandbox.client.requests(host="api", path=f"^{path}$"))


def posts(sandbox: SandboxServer, path: str) -> int:
    return sum(1 for r in sandbox.client.requests(host="api", path=f"^{path}$") if r["method"] == "POST")


def test_a_killed_triggerer_never_sends_twice(
    airflow_cluster: AirflowClusterFactory,
    sandbox_conn: str,
    sandbox: SandboxServer,
    s3_bucket: S3Bucket,
    tmp_path: Path,
) -> None:
    began = time.monotonic()
    # The answer of "stored" comes after a few seconds, that of "lost" long after the kill.
    sandbox.client.inject(kind="slow", delay_s=4, path=f"^{STORED_PATH}$")
    sandbox.client.inject(kind="slow", delay_s=40, path=f"^{LOST_PATH}$")
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "sync_deferrable.py").write_text(DAG_FILE)

    with S3Tap(s3_bucket.endpoint_url) as tap:
        cluster = airflow_cluster(
            dags,
            extra_env={
                "AIHUBMIX_OUTPUT_URI": s3_bucket.uri,
                "AIRFLOW_CONN_AWS_DEFAULT": aws_connection_json(tap.endpoint_url),
                "AIRFLOW_DISABLE_GREENBACK_PORTAL": "true",
            },
        )
        killed_at: list[float] = []

        def kill_triggerer() -> None:
            # "lost" must be on the wire when the triggerer dies: its answer then never arrives.
            wait_for(lambda: in_flight(sandbox, LOST_PATH), 60, "the request of 'lost' in flight")
            cluster.kill("triggerer")
            killed_at.append(time.monotonic())

        tap.after_write(r"task_id(=|%3D)stored/.*manifest\.json$", b'"status": "received"', kill_triggerer)

        run_id = cluster.trigger_dag(DAG_ID, conf={})
        observer = cluster.observe(DAG_ID, run_id, interval=0.5)
        wait_for(lambda: killed_at, 180, "the triggerer to be killed after 'stored' recorded its answer")
        first_jobs = {
            job for task in ("stored", "lost") for job in cluster.trigger_log_files(DAG_ID, run_id, task)
        }
        component = cluster.start_component("triggerer")
        cluster.wait_until_healthy(["triggerer"], timeout=90, since=component.started_at)

        assert observer.wait_for_finish(timeout=180) == "failed", observer.task_states
    total = time.monotonic() - began

    assert observer.state_of("stored") == "success", observer.task_states
    assert observer.state_of("lost") == "failed", observer.task_states
    for task in ("stored", "lost"):
        logs = cluster.trigger_log_files(DAG_ID, run_id, task)
        assert len(logs) == 2, (task, sorted(logs))  # killed in one triggerer, finished in the next
        first, second = (logs[job].read_text(errors="replace") for job in sorted(logs))
        assert "Trigger fired event" not in first and second.count("Trigger fired event") == 1
        assert "Sending request 1 of 1" in first and "Sending request" not in second
        assert sandbox_conn not in first + second
    assert len(first_jobs) == 1

    # "stored": completed from the stored answer; the object on S3 is what XCom says.
    (record,) = xcom(cluster, run_id, "stored")
    uri = urlsplit(record["uri"])
    body = s3_bucket.client.get_object(Bucket=s3_bucket.name, Key=uri.path.lstrip("/"))["Body"].read()
    assert hashlib.sha256(body).hexdigest() == record["sha256"] and len(body) == record["bytes"]
    assert record["model"] == "openai/gpt-image-1-mini"
    # "lost": failed without sending again, saying why.
    assert "may have been billed" in cluster.task_log(DAG_ID, run_id, "lost")
    # One POST each, ever: wait out the held answer so a late resend would be seen.
    wait_for(lambda: not in_flight(sandbox, LOST_PATH), 60, "the held answer of 'lost' to end")
    assert posts(sandbox, STORED_PATH) == 1 and posts(sandbox, LOST_PATH) == 1
    assert sandbox.client.billed_count(f"^{LOST_PATH}$") == 1
    keys = s3_bucket.list_keys()
    assert not [k for k in keys if "task_id=stored" in k and k.endswith("request.json")]
    print(f"sync deferrable e2e: total {total:.1f}s, timings {cluster.timings}")
