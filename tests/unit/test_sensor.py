"""AIHubMixTaskSensor against the sandbox: poke, defer, resume, and how each ending is reported.

The sensor under a real ``dag.test()`` (poke, reschedule and deferrable modes) is in
``tests/integration/test_sensor_dag.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from airflow.sdk import PokeReturnValue

from airflow_provider_aihubmix.engine.polling import DEFER_TIMEOUT_MARGIN
from airflow_provider_aihubmix.exceptions import AIHubMixTaskFailedError, AIHubMixValidationError
from airflow_provider_aihubmix.hooks.aihubmix import AIHubMixHook
from airflow_provider_aihubmix.sandbox import SandboxServer
from airflow_provider_aihubmix.sensors.aihubmix import AIHubMixTaskSensor
from airflow_provider_aihubmix.triggers.aihubmix import AIHubMixTaskTrigger
from airflow_provider_aihubmix.version_compat import AirflowSensorTimeout, AirflowSkipException, TaskDeferred
from tests.task_fakes import FakeTaskInstance, context_for, run_trigger


def context() -> Any:
    return context_for(FakeTaskInstance(task_id="wait"))


def submit(prompt: str) -> str:
    hook = AIHubMixHook()
    try:
        result = hook.predict("flux-2-flex", {"prompt": prompt})
    finally:
        hook.close()
    assert result.task is not None
    return result.task.task_id


def sensor(task_id: str, tmp_path: Path, **kwargs: Any) -> AIHubMixTaskSensor:
    kwargs.setdefault("poll_interval", 0.2)
    return AIHubMixTaskSensor(
        task_id="wait",
        aihubmix_task_id=task_id,
        model="bfl/flux-2-flex",
        output_uri=(tmp_path / "out").as_uri(),
        **kwargs,
    )


def assert_stored(records: list[dict[str, Any]], task_id: str) -> None:
    assert len(records) == 1
    (record,) = records
    assert record["remote_task_id"] == task_id and record["model"] == "bfl/flux-2-flex"
    stored = Path(urlsplit(record["uri"]).path)
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == record["sha256"]


def test_poke_waits_then_stores_and_returns_records(
    sandbox_conn: str, sandbox: SandboxServer, tmp_path: Path
):
    sandbox.client.configure(task_delay_s=60.0)
    task_id = submit("a lighthouse made of books")
    wait = sensor(task_id, tmp_path)
    ctx = context()
    assert wait.poke(ctx) is False
    sandbox.client.set_task(task_id, delay_s=0)
    done = wait.poke(ctx)
    assert isinstance(done, PokeReturnValue) and done.is_done
    assert_stored(done.xcom_value, task_id)


def test_poke_shrugs_off_a_transient_failure(
    sandbox_conn: str, sandbox: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    task_id = submit("a lighthouse")
    sandbox.client.set_task(task_id, delay_s=0)
    # No retries inside the hook, so the test need not wait through them.
    connection = json.loads(os.environ["AIRFLOW_CONN_AIHUBMIX_DEFAULT"])
    connection["extra"]["max_retries"] = 0
    monkeypatch.setenv("AIRFLOW_CONN_AIHUBMIX_DEFAULT", json.dumps(connection))
    sandbox.client.inject(kind="status", status=502, path=r"^/v1/tasks/")
    wait = sensor(task_id, tmp_path)
    assert wait.poke(context()) is False
    sandbox.client.clear_faults()
    assert isinstance(wait.poke(context()), PokeReturnValue)


@pytest.mark.parametrize("token", ["sandbox:content-moderated", "sandbox:failed"])
def test_poke_fails_on_a_failed_task(sandbox_conn: str, sandbox: SandboxServer, tmp_path: Path, token: str):
    task_id = submit(f"a lighthouse {token}")
    sandbox.client.set_task(task_id, delay_s=0)
    with pytest.raises(AIHubMixTaskFailedError):
        sensor(task_id, tmp_path).poke(context())


def test_unknown_task_fails(sandbox_conn: str, sandbox: SandboxServer, tmp_path: Path):
    with pytest.raises(AIHubMixTaskFailedError, match="Task not found"):
        sensor("no-such-task", tmp_path).poke(context())


def test_empty_task_id_is_refused(tmp_path: Path):
    with pytest.raises(AIHubMixValidationError, match="aihubmix_task_id"):
        sensor("  ", tmp_path, deferrable=True).execute(context())


def test_an_unusable_output_uri_fails_before_waiting(
    sandbox_conn: str, sandbox: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # Literal: when the DAG is parsed.
    with pytest.raises(AIHubMixValidationError, match="unsupported scheme 'hdfs'"):
        AIHubMixTaskSensor(task_id="wait", aihubmix_task_id="t-1", output_uri="hdfs://bucket/images")
    # Rendered: before polling or deferring, not after the task ended and its image URLs expire.
    waiting = sensor("t-1", tmp_path, deferrable=True)
    waiting.output_uri = "ftp://bucket/images"
    with pytest.raises(AIHubMixValidationError, match="unsupported scheme 'ftp'"):
        waiting.execute(context())
    # From the connection's extra output_uri too.
    connection = json.loads(os.environ["AIRFLOW_CONN_AIHUBMIX_DEFAULT"])
    connection["extra"]["output_uri"] = "file://relative/dir"
    monkeypatch.setenv("AIRFLOW_CONN_AIHUBMIX_DEFAULT", json.dumps(connection))
    from_connection = AIHubMixTaskSensor(task_id="wait", aihubmix_task_id="t-1", deferrable=True)
    with pytest.raises(AIHubMixValidationError, match="three slashes"):
        from_connection.execute(context())
    assert [r for r in sandbox.client.requests(host="api") if "/v1/tasks/" in r["path"]] == []


def test_deferrable_defers_then_collects_from_the_event(
    sandbox_conn: str, sandbox: SandboxServer, tmp_path: Path
):
    task_id = submit("a lighthouse in a storm")
    before = time.time()
    with pytest.raises(TaskDeferred) as info:
        sensor(task_id, tmp_path, deferrable=True, timeout=120).execute(context())
    deferred = info.value
    assert isinstance(deferred.trigger, AIHubMixTaskTrigger)
    _, kwargs = deferred.trigger.serialize()
    assert kwargs["remote_task_id"] == task_id and kwargs["model"] == "bfl/flux-2-flex"
    assert kwargs["end_time"] >= before + 120
    assert deferred.method_name == "execute_complete"
    assert deferred.timeout == timedelta(seconds=120) + DEFER_TIMEOUT_MARGIN

    event = run_trigger(deferred.trigger)
    # A fresh sensor on the resuming worker: the task id and the model come from the event.
    records = sensor("{{ unrendered }}", tmp_path, deferrable=True).execute_complete(context(), event)
    assert_stored(records, task_id)


def test_a_retry_after_collecting_returns_the_stored_images_without_downloading(
    sandbox_conn: str, sandbox: SandboxServer, tmp_path: Path
):
    task_id = submit("a lighthouse at dawn")
    with pytest.raises(TaskDeferred) as info:
        sensor(task_id, tmp_path, deferrable=True).execute(context())
    event = run_trigger(info.value.trigger)
    first = sensor(task_id, tmp_path, deferrable=True).execute_complete(context(), event)
    downloads = len(sandbox.client.requests(host="storage", path=r"^/images/"))
    # The worker died after storing; the retry resumes with the same event.
    again = sensor(task_id, tmp_path, deferrable=True).execute_complete(context(), event)
    assert again == first
    assert len(sandbox.client.requests(host="storage", path=r"^/images/")) == downloads == 1


def test_timeout_event_is_a_sensor_timeout_or_a_skip(
    sandbox_conn: str, sandbox: SandboxServer, tmp_path: Path
):
    task_id = submit("a lighthouse sandbox:never")
    with pytest.raises(TaskDeferred) as info:
        sensor(task_id, tmp_path, deferrable=True, timeout=1).execute(context())
    event = run_trigger(info.value.trigger)
    assert event["status"] == "timeout"
    with pytest.raises(AirflowSensorTimeout):
        sensor(task_id, tmp_path, deferrable=True).execute_complete(context(), event)
    soft = sensor(task_id, tmp_path, deferrable=True, soft_fail=True)
    with pytest.raises(AirflowSkipException):
        soft.resume_execution("execute_complete", {"event": event}, context())


def test_failed_event_fails(sandbox_conn: str, sandbox: SandboxServer, tmp_path: Path):
    task_id = submit("a lighthouse sandbox:request-moderated")
    with pytest.raises(TaskDeferred) as info:
        sensor(task_id, tmp_path, deferrable=True).execute(context())
    event = run_trigger(info.value.trigger)
    with pytest.raises(AIHubMixTaskFailedError, match="Request Moderated"):
        sensor(task_id, tmp_path, deferrable=True).execute_complete(context(), event)
