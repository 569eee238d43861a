"""A paid answer is never lost, and a task the store does not know yet is still collected: ``dag.test()``.

Counted in the sandbox's request log: an unreadable 200 answer is saved beside the manifest and
a later run of the same task instance finishes from it with no API request; a Flux task whose
first polls answer "Task not found" is submitted once and collected, blocking and deferrable.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pendulum
import pytest
from airflow.sdk import DAG

from airflow_provider_aihubmix.exceptions import AIHubMixUnreadableAnswerError
from airflow_provider_aihubmix.operators.images import AIHubMixFluxOperator, AIHubMixQwenImageOperator
from airflow_provider_aihubmix.responses import shapes
from airflow_provider_aihubmix.responses.answer_scan import ScanResult
from airflow_provider_aihubmix.sandbox import SandboxServer
from tests.compat import needs_callback_exception
from tests.fixtures.airflow_db import DagTest, task_states, try_numbers, xcom_values
from tests.fixtures.sandbox import SANDBOX_API_KEY
from tests.integration.operator_checks import api_posts, check_record, manifest_beside

pytestmark = pytest.mark.timeout(240)

START = pendulum.datetime(2026, 1, 1, tz="UTC")
QWEN = "qianfan/qwen-image"


def _path(uri: str) -> Path:
    return Path(unquote(urlsplit(uri).path))


@pytest.mark.parametrize("deferrable", [False, True], ids=["blocking", "sent-from-triggerer"])
@needs_callback_exception
def test_unreadable_answer_is_saved_and_a_later_run_collects_it_with_no_request(
    dag_test: DagTest, sandbox: SandboxServer, sandbox_conn: str, tmp_path: Path, deferrable: bool
) -> None:
    errors: list[BaseException] = []
    output = tmp_path / "out"
    with DAG(
        f"aihubmix_saved_answer_{'deferrable' if deferrable else 'blocking'}",
        schedule=None,
        start_date=START,
        default_args={
            "retries": 1,
            "retry_delay": timedelta(0),
            "on_failure_callback": lambda c: errors.append(c["exception"]),
        },
    ) as dag:
        AIHubMixQwenImageOperator(
            task_id="banner",
            prompt="a harbour at dusk sandbox:shape=unfamiliar",
            output_uri=output.as_uri(),
            deferrable=deferrable,
        )

    logical_date = pendulum.datetime(2026, 4, 1, tz="UTC")
    # An older reader: no last-resort scan, so an answer in unfamiliar keys reads as nothing.
    with pytest.MonkeyPatch.context() as older_reader:
        older_reader.setattr(shapes, "scan", lambda body: ScanResult())
        run = dag_test(dag, logical_date=logical_date)

    assert task_states(run) == {"banner[-1]": "failed"}
    assert try_numbers(run) == {"banner[-1]": 2}  # the Airflow retry read the saved answer, bought nothing
    (post,) = api_posts(sandbox)
    (error,) = errors
    assert isinstance(error, AIHubMixUnreadableAnswerError)
    assert "answer.json" in str(error) and post["request_id"] in str(error)
    (manifest_path,) = output.rglob("manifest.json")
    manifest = json.loads(manifest_path.read_text())
    assert manifest["status"] == "ambiguous" and manifest["saved_answer"] == "answer.json"
    saved = json.loads((manifest_path.parent / "answer.json").read_text())
    assert saved["request_id"] == post["request_id"]
    assert "signedLink" in json.dumps(saved["body"])  # the whole answer, for a later reader
    assert SANDBOX_API_KEY not in (manifest_path.parent / "answer.json").read_text()

    # The upgrade: today's reader. The same task instance finishes from the saved answer.
    api_before = len(sandbox.client.requests(host="api"))
    rerun = dag_test(dag, logical_date=logical_date)

    assert task_states(rerun) == {"banner[-1]": "success"}
    assert len(sandbox.client.requests(host="api")) == api_before  # 0 API requests
    assert len(api_posts(sandbox)) == 1
    (record,) = xcom_values(dag.dag_id, rerun.run_id)["banner"][-1]
    check_record(record, model=QWEN, map_index=-1)
    assert manifest_beside(record)["status"] == "complete"


@pytest.mark.parametrize("deferrable", [False, True], ids=["blocking", "deferrable"])
def test_flux_task_unknown_at_first_is_submitted_once_and_collected(
    dag_test: DagTest, sandbox: SandboxServer, sandbox_conn: str, tmp_path: Path, deferrable: bool
) -> None:
    # bfl-openapi StatusResponse: "Task not found" -- here for the first 1.5 s after submit.
    mode = "deferrable" if deferrable else "blocking"
    with DAG(f"aihubmix_flux_not_found_{mode}", schedule=None, start_date=START) as dag:
        AIHubMixFluxOperator(
            task_id="poster",
            model="flux-2-pro",
            prompt="a lighthouse poster sandbox:unknown-for=1.5",
            output_uri=(tmp_path / "out").as_uri(),
            deferrable=deferrable,
            poll_interval=0.2,
            not_found_grace=30,
        )

    run = dag_test(dag)

    assert task_states(run) == {"poster[-1]": "success"}
    assert len(api_posts(sandbox)) == 1
    polls = [r for r in sandbox.client.requests(host="api", path="^/v1/tasks/") if r["method"] == "GET"]
    assert len(polls) >= 2
    (record,) = xcom_values(dag.dag_id, run.run_id)["poster"][-1]
    check_record(record, model="bfl/flux-2-pro", map_index=-1)
    assert record["remote_task_id"]


@needs_callback_exception
def test_flux_task_unknown_past_the_grace_fails_and_stays_recorded(
    dag_test: DagTest, sandbox: SandboxServer, sandbox_conn: str, tmp_path: Path
) -> None:
    errors: list[BaseException] = []
    output = tmp_path / "out"
    args: dict[str, Any] = {
        "retries": 1,
        "retry_delay": timedelta(0),
        "on_failure_callback": lambda context: errors.append(context["exception"]),
    }
    with DAG("aihubmix_flux_not_found_past_grace", schedule=None, start_date=START, default_args=args) as dag:
        AIHubMixFluxOperator(
            task_id="poster",
            model="flux-2-pro",
            prompt="a lighthouse poster sandbox:unknown-for=600",
            output_uri=output.as_uri(),
            poll_interval=0.2,
            not_found_grace=1,
        )

    run = dag_test(dag)

    assert task_states(run) == {"poster[-1]": "failed"}
    assert try_numbers(run) == {"poster[-1]": 2}
    assert len(api_posts(sandbox)) == 1  # the retry re-attached; nothing was bought again
    (error,) = errors
    (task,) = sandbox.client.tasks()
    assert task["id"] in str(error) and "Task not found" in str(error)
    (manifest_path,) = output.rglob("manifest.json")
    manifest = json.loads(manifest_path.read_text())
    assert manifest["status"] == "submitted" and manifest["remote_tasks"][0]["task_id"] == task["id"]
