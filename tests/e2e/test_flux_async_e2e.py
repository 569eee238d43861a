"""The async Flux example in a real Airflow: deferred to the triggerer, survives its crash, lands on S3.

A real deployment (scheduler, dag-processor, triggerer, api-server; LocalExecutor; SQLite)
runs ``example_dags/aihubmix_flux_async.py`` against the sandbox (in this process, reached
over loopback) with images going to the moto S3 server. The sandbox takes longer to
generate than several poll intervals, and the triggerer is SIGKILLed and restarted while
every wait is deferred. The run must still succeed, with each task submitted exactly once.

The triggerer runs with ``AIRFLOW_DISABLE_GREENBACK_PORTAL=true``: a sync SDK call (such as a
sync connection lookup) from a trigger's ``run()`` then raises instead of being bridged, so
the run succeeding also proves the trigger only used the async connection API.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from airflow_provider_aihubmix.sandbox import SandboxServer
from tests.e2e.harness import AirflowCluster, wait_for
from tests.fixtures.airflow import AirflowClusterFactory
from tests.fixtures.s3 import S3Bucket

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(360)]

EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"
DAG_ID = "aihubmix_flux_async"
# Every wait that defers: the mapped Flux generation and the sensor of the submit-then-sense branch.
DEFERRED = (("flux_generate", 0), ("flux_generate", 1), ("flux_wait", -1))
# Long enough that the triggerer is killed before any task is ready (kill + adoption take ~15 s),
# and many poll intervals long (AIHUBMIX_POLL_INTERVAL=1, backing off to 4 s).
TASK_DELAY_S = 20.0


def key(task_id: str, map_index: int) -> str:
    return task_id if map_index == -1 else f"{task_id}[{map_index}]"


def trigger_logs(cluster: AirflowCluster, run_id: str, task_id: str, map_index: int) -> dict[int, str]:
    """``{triggerer job id: trigger log text}`` for one (possibly mapped) task instance."""
    found: dict[int, str] = {}
    for path in cluster.task_log_files(DAG_ID, run_id, task_id):
        in_map = f"map_index={map_index}" in path.parts if map_index != -1 else True
        if in_map and ".log.trigger." in path.name:
            found[int(path.name.rsplit(".", 2)[-2])] = path.read_text(errors="replace")
    return found


def xcom(cluster: AirflowCluster, run_id: str, task_id: str, map_index: int) -> Any:
    path = f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
    params: dict[str, Any] = {"deserialize": True}
    if map_index != -1:
        params["map_index"] = map_index
    return cluster.api("GET", path, params=params)["value"]


def event_log(cluster: AirflowCluster, run_id: str, task_id: str, map_index: int) -> list[str]:
    params = {"dag_id": DAG_ID, "run_id": run_id, "task_id": task_id, "order_by": "id", "limit": 1000}
    entries = cluster.api("GET", "/eventLogs", params=params)["event_logs"]
    return [e["event"] for e in entries if e.get("map_index", -1) == map_index]


def dags_folder(target: Path) -> Path:
    """The example as a user deploys it: the DAG file beside the ``_common`` module it imports."""
    target.mkdir()
    for name in ("_common.py", "aihubmix_flux_async.py"):
        shutil.copy(EXAMPLE_DAGS / name, target / name)
    return target


def test_flux_async_defers_survives_a_triggerer_crash_and_stores_on_s3(
    airflow_cluster: AirflowClusterFactory,
    sandbox_conn: str,
    sandbox: SandboxServer,
    s3_bucket: S3Bucket,
    tmp_path: Path,
) -> None:
    began = time.monotonic()
    sandbox.client.configure(task_delay_s=TASK_DELAY_S)
    # sandbox_conn and s3_bucket put AIRFLOW_CONN_AIHUBMIX_DEFAULT / AIRFLOW_CONN_AWS_DEFAULT in the
    # environment; the harness passes them to every process.
    cluster = airflow_cluster(
        dags_folder(tmp_path / "dags"),
        extra_env={
            "AIHUBMIX_OUTPUT_URI": s3_bucket.uri,
            "AIHUBMIX_POLL_INTERVAL": "1",
            "AIRFLOW_DISABLE_GREENBACK_PORTAL": "true",
        },
    )
    startup = time.monotonic() - began

    run_id = cluster.trigger_dag(DAG_ID, conf={})
    observer = cluster.observe(DAG_ID, run_id, interval=0.25)
    for task_id, map_index in DEFERRED:
        observer.wait_for_task_state(key(task_id, map_index), "deferred", timeout=120)

    # Every trigger is running in the first triggerer and has polled once (its log says so):
    # the kill below lands mid-wait, after progress was seen, however slowly the triggers started.
    def all_polled() -> bool:
        return all(
            any(
                "Waiting for AIHubMix task" in text and "progress" in text
                for text in trigger_logs(cluster, run_id, t, i).values()
            )
            for t, i in DEFERRED
        )

    wait_for(all_polled, 60, "the first triggerer to run and poll every AIHubMix trigger")
    observer.poll()
    assert [observer.state_of(key(t, i)) for t, i in DEFERRED] == ["deferred"] * 3, observer.task_states
    assert not any(r["path"].startswith("/images/") for r in sandbox.client.requests(host="storage"))
    (first_job,) = {job for t, i in DEFERRED for job in trigger_logs(cluster, run_id, t, i)}

    cluster.restart("triggerer")  # SIGKILL mid-wait, then a new triggerer adopts the triggers
    observer.poll()
    assert [observer.state_of(key(t, i)) for t, i in DEFERRED] == ["deferred"] * 3, observer.task_states

    assert observer.wait_for_finish(timeout=150) == "success", observer.task_states
    total = time.monotonic() - began

    for task_id, map_index in DEFERRED:
        name = key(task_id, map_index)
        # It held no worker slot while waiting: deferred, then resumed once and succeeded.
        states = observer.task_states[name]
        assert states.index("deferred") < states.index("success"), (name, states)
        assert event_log(cluster, run_id, task_id, map_index) == ["running", "deferred", "running", "success"]

        # The trigger ran in the triggerers: the first logged progress and was killed before
        # firing; the one that adopted it fired the single event.
        logs = trigger_logs(cluster, run_id, task_id, map_index)
        assert len(logs) == 2 and first_job in logs, (name, sorted(logs))
        second_job = max(logs)
        assert second_job != first_job
        assert "Trigger fired event" not in logs[first_job]
        assert "progress" in logs[first_job]
        assert "Waiting for AIHubMix task" in logs[second_job]
        assert logs[second_job].count("Trigger fired event") == 1
        assert sandbox_conn not in logs[first_job] + logs[second_job]

    # The images are on the moto S3 server, and their bytes are what XCom says.
    records = [record for t, i in DEFERRED for record in xcom(cluster, run_id, t, i)]
    assert len(records) == 3
    for record in records:
        uri = urlsplit(record["uri"])
        assert uri.scheme == "s3" and uri.netloc == s3_bucket.name
        body = s3_bucket.client.get_object(Bucket=s3_bucket.name, Key=uri.path.lstrip("/"))["Body"].read()
        assert hashlib.sha256(body).hexdigest() == record["sha256"] and len(body) == record["bytes"]
        assert record["remote_task_id"] and record["content_type"].startswith("image/")
    assert {r["model"] for r in records} == {"bfl/flux-2-pro", "bfl/flux-2-flex"}
    submitted = xcom(cluster, run_id, "flux_submit", -1)
    assert [set(r) for r in submitted] == [{"remote_task_id", "model", "map_index"}]
    assert xcom(cluster, run_id, "flux_wait", -1)[0]["remote_task_id"] == submitted[0]["remote_task_id"]

    # Submitted exactly once per task, killed triggerer or not; waited for through polls.
    api = sandbox.client.requests(host="api")
    posts = [r["path"] for r in api if r["method"] == "POST" and r["path"].endswith("/predictions")]
    assert sorted(posts) == [
        "/v1/models/bfl/flux-2-flex/predictions",
        "/v1/models/bfl/flux-2-pro/predictions",
        "/v1/models/bfl/flux-2-pro/predictions",
    ]
    task_ids = {r["remote_task_id"] for r in records}
    polls = {t: sum(1 for r in api if r["path"] == f"/v1/tasks/{t}") for t in task_ids}
    # At least the first triggerer's poll (it logged progress) and the adopting one's last; how
    # many more depends on how fast a loaded machine starts the deferral, not on the provider.
    assert len(task_ids) == 3 and all(count >= 2 for count in polls.values()), polls
    # The vendor's polling_url was never asked; each image was downloaded once.
    storage = sandbox.client.requests(host="storage")
    assert not [r for r in storage if "get_result" in r["path"]]
    assert len([r for r in storage if r["path"].startswith("/images/")]) == 3

    print(
        f"flux async e2e: startup {startup:.1f}s, total {total:.1f}s, polls {sorted(polls.values())}, "
        f"timings {cluster.timings}"
    )
