"""The e2e harness against a real Airflow: a deferred task survives a triggerer crash."""

from __future__ import annotations

import time
from pathlib import Path

import psutil
import pytest

from tests.e2e.harness import AirflowCluster, wait_for
from tests.fixtures.airflow import AirflowClusterFactory

DAGS = Path(__file__).parent / "dags"
DAG_ID = "e2e_deferrable"

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _trigger_started(cluster: AirflowCluster, run_id: str) -> dict[int, Path]:
    files = cluster.trigger_log_files(DAG_ID, run_id, "wait")
    return {job: path for job, path in files.items() if "trigger starting" in path.read_text()}


def test_deferred_task_resumes_after_triggerer_is_killed(airflow_cluster: AirflowClusterFactory) -> None:
    began = time.monotonic()
    cluster = airflow_cluster(DAGS)
    startup = time.monotonic() - began

    run_id = cluster.trigger_dag(DAG_ID, conf={"wait_seconds": 20})
    observer = cluster.observe(DAG_ID, run_id, interval=0.25)
    observer.wait_for_task_state("wait", "deferred", timeout=90)

    # The first triggerer has picked the trigger up and is running it.
    first = wait_for(
        lambda: _trigger_started(cluster, run_id), 30, "the first triggerer to start the trigger"
    )
    assert len(first) == 1
    (first_job,) = first
    assert observer.state_of("wait") == "deferred", "the moment passed before the triggerer was killed"

    killed = cluster.processes("triggerer")
    cluster.restart("triggerer")
    assert not [proc for proc in killed if _alive(proc)], "the killed triggerer left processes behind"
    observer.poll()
    assert observer.state_of("wait") == "deferred", "the task must still be deferred after the crash"

    assert observer.wait_for_finish(timeout=120) == "success", observer.task_states
    total = time.monotonic() - began

    # Seen live: deferred, then success. (A worker's running spells can be shorter than a poll.)
    wait_states = observer.task_states["wait"]
    assert wait_states.index("deferred") < wait_states.index("success"), wait_states
    assert observer.task_states["after_wait"][-1] == "success"
    assert cluster.get_xcom(DAG_ID, run_id, "after_wait") == f"resumed {run_id}"

    # Durable proof, read afterwards: the audit log recorded the deferral and the resumption.
    events = cluster.event_log(DAG_ID, run_id, "wait")
    assert events == ["running", "deferred", "running", "success"], events

    # Two triggerer processes each ran the trigger; the second one (a new job) fired its event.
    triggerer_jobs = [job["id"] for job in cluster.jobs("TriggererJob")]
    trigger_logs = cluster.trigger_log_files(DAG_ID, run_id, "wait")
    assert len(triggerer_jobs) == 2, triggerer_jobs
    assert sorted(trigger_logs) == sorted(triggerer_jobs), (trigger_logs, triggerer_jobs)
    second_job = max(trigger_logs)
    assert second_job != first_job
    assert "Trigger fired event" not in trigger_logs[first_job].read_text()
    second_log = trigger_logs[second_job].read_text()
    assert "trigger starting" in second_log
    assert "Trigger fired event" in second_log

    # The worker log shows the task handing itself to the triggerer, then resuming on a worker.
    task_log = cluster.task_log(DAG_ID, run_id, "wait")
    assert task_log.index("Pausing task as DEFERRED") < task_log.index("resumed after deferral")

    everything = cluster.processes()
    assert len(everything) >= 4
    cluster.stop()
    assert not [proc for proc in everything if _alive(proc)], "stop() left processes behind"

    print(
        f"e2e timings: startup {startup:.1f}s ({cluster.timings}), "
        f"startup to run success {total - startup:.1f}s, total {total:.1f}s; wait states {wait_states}"
    )


def test_deployment_env_drops_test_settings_and_takes_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    # tests/conftest.py sets these for in-process tests; a real deployment must not inherit them.
    monkeypatch.setenv("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", "/elsewhere")
    monkeypatch.setenv("PYTEST_CURRENT_TEST", "x")
    # Connections set by fixtures such as sandbox_conn / s3_bucket must reach the deployment.
    monkeypatch.setenv("AIRFLOW_CONN_FROM_FIXTURE", "http://127.0.0.1:1")
    cluster = AirflowCluster(
        DAGS,
        extra_env={
            "AIRFLOW_CONN_AIHUBMIX_DEFAULT": "aihubmix://:key@127.0.0.1:1",
            "AIRFLOW__CORE__PARALLELISM": "2",
        },
    )
    try:
        env = cluster.env()
    finally:
        cluster.cleanup()
    assert env["AIRFLOW__CORE__UNIT_TEST_MODE"] == "False"
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(DAGS.resolve())
    assert env["AIRFLOW_CONN_FROM_FIXTURE"] == "http://127.0.0.1:1"
    assert "PYTEST_CURRENT_TEST" not in env
    assert env["AIRFLOW_CONN_AIHUBMIX_DEFAULT"] == "aihubmix://:key@127.0.0.1:1"
    assert env["AIRFLOW__CORE__PARALLELISM"] == "2"
    assert env["AIRFLOW_HOME"] == str(cluster.home)
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == f"http://127.0.0.1:{cluster.api_port}/execution/"
