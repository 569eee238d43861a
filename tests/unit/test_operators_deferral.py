"""The image operators with async (Flux) models: defer, resume, poll in the worker, or hand the id on.

The operator runs against the sandbox over real HTTP and stores into a ``file://`` folder;
the context is the few task-instance fields the operator reads (Airflow's own provider tests
do the same). The trigger between ``execute`` and ``execute_complete`` is the real one, run
to its event on an event loop as the triggerer would.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from airflow_provider_aihubmix.engine.polling import DEFER_TIMEOUT_MARGIN
from airflow_provider_aihubmix.exceptions import (
    AIHubMixError,
    AIHubMixTaskFailedError,
    AIHubMixTaskTimeoutError,
)
from airflow_provider_aihubmix.gallery import OUTPUT_LOCATION_XCOM_KEY
from airflow_provider_aihubmix.operators.images import (
    AIHubMixFluxOperator,
    AIHubMixGenerateImageOperator,
)
from airflow_provider_aihubmix.sandbox import SandboxServer
from airflow_provider_aihubmix.triggers.aihubmix import AIHubMixTaskTrigger
from airflow_provider_aihubmix.version_compat import TaskDeferred
from tests.task_fakes import FakeTaskInstance, context_for, run_trigger

PREDICTIONS = r"^/v1/models/bfl/flux-2-pro/predictions$"
TASKS = r"^/v1/tasks/"


def flux(tmp_path: Path, **kwargs: Any) -> AIHubMixFluxOperator:
    kwargs.setdefault("prompt", "a paper-craft fox in an autumn forest")
    kwargs.setdefault("poll_interval", 0.2)
    kwargs.setdefault("timeout", 300)
    kwargs.setdefault("deferrable", True)
    return AIHubMixFluxOperator(
        task_id="generate", model="flux-2-pro", output_uri=(tmp_path / "out").as_uri(), **kwargs
    )


def manifest_of(tmp_path: Path) -> dict[str, Any]:
    (path,) = (tmp_path / "out").rglob("manifest.json")
    return json.loads(path.read_text())


def defer(operator: AIHubMixGenerateImageOperator, ti: FakeTaskInstance) -> TaskDeferred:
    with pytest.raises(TaskDeferred) as info:
        operator.execute(context_for(ti))
    return info.value


# -- deferral ----------------------------------------------------------------------------------


def test_defers_with_the_trigger_after_recording_the_task(
    sandbox_conn: str, sandbox: SandboxServer, tmp_path: Path
):
    before = time.time()
    deferred = defer(flux(tmp_path, timeout=300), FakeTaskInstance())
    after = time.time()

    trigger = deferred.trigger
    assert isinstance(trigger, AIHubMixTaskTrigger)
    assert deferred.method_name == "execute_complete"
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_aihubmix.triggers.aihubmix.AIHubMixTaskTrigger"
    # The task id was recorded in the manifest before deferring: a crash now re-attaches.
    manifest = manifest_of(tmp_path)
    assert manifest["status"] == "submitted"
    assert [t["task_id"] for t in manifest["remote_tasks"]] == [kwargs["remote_task_id"]]
    assert kwargs["model"] == "bfl/flux-2-pro"
    assert kwargs["aihubmix_conn_id"] == "aihubmix_default"
    assert kwargs["poll_interval"] == 0.2
    assert before + 300 <= kwargs["end_time"] <= after + 300
    # Airflow's own defer timeout is only a backstop behind the trigger's deadline.
    assert deferred.timeout == timedelta(seconds=300) + DEFER_TIMEOUT_MARGIN
    assert deferred.timeout > timedelta(seconds=kwargs["end_time"] - before)
    # Submitted once; no status poll in the worker.
    assert len(sandbox.client.requests(host="api", path=PREDICTIONS)) == 1
    assert sandbox.client.requests(host="api", path=TASKS) == []


def test_execute_complete_stores_the_images_from_the_event(
    sandbox_conn: str, sandbox: SandboxServer, tmp_path: Path
):
    ti = FakeTaskInstance()
    deferred = defer(flux(tmp_path), ti)
    event = run_trigger(deferred.trigger)
    assert event["status"] == "success"

    # A fresh operator object, as on the worker that resumes: nothing carried over in memory.
    records = flux(tmp_path).execute_complete(context_for(ti), event)

    assert len(records) == 1
    (record,) = records
    assert record["remote_task_id"] == event["remote_task_id"]
    assert record["model"] == "bfl/flux-2-pro" and record["map_index"] == -1
    stored = Path(urlsplit(record["uri"]).path)
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == record["sha256"]
    assert record["bytes"] == stored.stat().st_size
    assert manifest_of(tmp_path)["status"] == "complete"
    # Only where the images are, for the gallery: never bytes, never a link carrying a signature.
    assert list(ti.pushed) == [OUTPUT_LOCATION_XCOM_KEY]
    assert ti.pushed[OUTPUT_LOCATION_XCOM_KEY] == {
        "output_uri": (tmp_path / "out").as_uri(),
        "conn_id": "aws_default",
        "show_prompt": False,
    }
    # Downloaded once from the signed URL, straight away; one submission in all.
    assert len(sandbox.client.requests(host="storage", path=r"^/images/")) == 1
    assert len(sandbox.client.requests(host="api", path=PREDICTIONS)) == 1
    # Nothing secret or signed in XCom.
    assert sandbox_conn not in json.dumps(records) and "Signature" not in json.dumps(records)


@pytest.mark.parametrize(
    ("token", "raw_status"),
    [("sandbox:content-moderated", "Content Moderated"), ("sandbox:error", "Error")],
)
def test_execute_complete_raises_on_a_failed_event(
    sandbox_conn: str, sandbox: SandboxServer, tmp_path: Path, token: str, raw_status: str
):
    ti = FakeTaskInstance()
    deferred = defer(flux(tmp_path, prompt=f"a fox {token}"), ti)
    event = run_trigger(deferred.trigger)
    assert event["status"] == "failed"
    with pytest.raises(AIHubMixTaskFailedError, match=raw_status):
        flux(tmp_path, prompt=f"a fox {token}").execute_complete(context_for(ti), event)
    assert manifest_of(tmp_path)["status"] == "failed"


def test_timeout_event_fails_and_the_retry_reattaches_without_paying_again(
    sandbox_conn: str, sandbox: SandboxServer, tmp_path: Path
):
    prompt = "a fox sandbox:never"
    ti = FakeTaskInstance()
    deferred = defer(flux(tmp_path, prompt=prompt, timeout=1.0), ti)
    event = run_trigger(deferred.trigger)
    assert event["status"] == "timeout"
    with pytest.raises(AIHubMixTaskTimeoutError, match="re-attaches"):
        flux(tmp_path, prompt=prompt, timeout=1.0).execute_complete(context_for(ti), event)
    assert manifest_of(tmp_path)["status"] == "submitted"

    retry = defer(flux(tmp_path, prompt=prompt), FakeTaskInstance(try_number=2))
    assert retry.trigger.serialize()[1]["remote_task_id"] == event["remote_task_id"]
    assert len(sandbox.client.requests(host="api", path=PREDICTIONS)) == 1


def test_polling_errors_keep_the_task_and_the_retry_reattaches_without_paying_again(
    sandbox_conn: str, sandbox: SandboxServer, tmp_path: Path
):
    ti = FakeTaskInstance()
    deferred = defer(flux(tmp_path), ti)
    # The status endpoint is down longer than the trigger tolerates; the task itself is fine.
    sandbox.client.inject(kind="status", status=503, path=TASKS, count=3)
    trigger = AIHubMixTaskTrigger(**{**deferred.trigger.serialize()[1], "max_transient_failures": 2})
    event = run_trigger(trigger)
    assert event["status"] == "error"
    with pytest.raises(AIHubMixError, match="re-attaches"):
        flux(tmp_path).execute_complete(context_for(ti), event)
    assert manifest_of(tmp_path)["status"] == "submitted"

    retry = defer(flux(tmp_path), FakeTaskInstance(try_number=2))
    records = flux(tmp_path).execute_complete(context_for(ti), run_trigger(retry.trigger))
    assert len(records) == 1 and manifest_of(tmp_path)["status"] == "complete"
    assert len(sandbox.client.requests(host="api", path=PREDICTIONS)) == 1


def test_an_expired_result_link_is_fetched_anew_from_the_task(
    sandbox_conn: str, sandbox: SandboxServer, tmp_path: Path
):
    ti = FakeTaskInstance()
    event = run_trigger(defer(flux(tmp_path), ti).trigger)
    polls_before = len(sandbox.client.requests(host="api", path=TASKS))
    # The link in the event died while the task waited for a worker.
    sandbox.client.inject(kind="expired", count=1)
    records = flux(tmp_path).execute_complete(context_for(ti), event)
    assert len(records) == 1 and manifest_of(tmp_path)["status"] == "complete"
    assert len(sandbox.client.requests(host="api", path=TASKS)) == polls_before + 1  # one fresh link
    assert len(sandbox.client.requests(host="storage", path=r"^/images/")) == 2
    assert len(sandbox.client.requests(host="api", path=PREDICTIONS)) == 1


def test_execute_complete_refuses_a_malformed_or_foreign_event(
    sandbox_conn: str, sandbox: SandboxServer, tmp_path: Path
):
    ti = FakeTaskInstance()
    defer(flux(tmp_path), ti)
    with pytest.raises(AIHubMixError, match="Malformed"):
        flux(tmp_path).execute_complete(context_for(ti), {"status": "done"})
    foreign = {"status": "success", "remote_task_id": "someone-else", "result_urls": ["https://x/y.png"]}
    with pytest.raises(AIHubMixError, match="does not match"):
        flux(tmp_path).execute_complete(context_for(ti), foreign)
    assert sandbox.client.requests(host="storage") == []


# -- without the triggerer -----------------------------------------------------------------------


def test_blocking_mode_polls_in_the_worker(sandbox_conn: str, sandbox: SandboxServer, tmp_path: Path):
    # Long enough that a loaded machine still polls while the task is pending.
    sandbox.client.configure(task_delay_s=3.0)
    sandbox.client.inject(kind="status", status=503, path=TASKS, count=1)
    records = flux(tmp_path, deferrable=False).execute(context_for(FakeTaskInstance()))
    assert len(records) == 1 and records[0]["sha256"]
    assert len(sandbox.client.requests(host="api", path=PREDICTIONS)) == 1
    assert len(sandbox.client.requests(host="api", path=TASKS)) >= 3  # waited, and shrugged off a 503
    assert manifest_of(tmp_path)["status"] == "complete"


def test_blocking_mode_raises_on_failure_and_on_timeout(
    sandbox_conn: str, sandbox: SandboxServer, tmp_path: Path
):
    with pytest.raises(AIHubMixTaskFailedError, match="Request Moderated"):
        flux(tmp_path / "a", prompt="a fox sandbox:request-moderated", deferrable=False).execute(
            context_for(FakeTaskInstance())
        )
    with pytest.raises(AIHubMixTaskTimeoutError):
        flux(tmp_path / "b", prompt="a fox sandbox:never", deferrable=False, timeout=1.0).execute(
            context_for(FakeTaskInstance(task_id="other"))
        )


@pytest.mark.parametrize("deferrable", [True, False])
def test_without_waiting_returns_only_the_task_id(
    sandbox_conn: str, sandbox: SandboxServer, tmp_path: Path, deferrable: bool
):
    ti = FakeTaskInstance(map_index=3)
    records = flux(tmp_path, wait_for_completion=False, deferrable=deferrable).execute(context_for(ti))
    assert records == [
        {
            "remote_task_id": manifest_of(tmp_path)["remote_tasks"][0]["task_id"],
            "model": "bfl/flux-2-pro",
            "map_index": 3,
        }
    ]
    assert sandbox.client.requests(host="api", path=TASKS) == []
