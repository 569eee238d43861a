"""Retries and re-runs never buy the same image twice: counted in the sandbox's request log.

Each scenario fails a try at a different point after the billable POST -- the manifest
write, the image download, the answer itself -- and lets ``dag.test()`` retry the task
(``retries=1``, no delay), then re-runs the same task instances (same logical date).
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG

from airflow_provider_aihubmix.exceptions import AIHubMixPossiblyBilledError
from airflow_provider_aihubmix.operators.images import AIHubMixImagenOperator, AIHubMixOpenAIImageOperator
from airflow_provider_aihubmix.sandbox import SandboxServer
from airflow_provider_aihubmix.storage import AIHubMixStorageError
from airflow_provider_aihubmix.storage.s3 import S3ObjectStore
from tests.compat import needs_callback_exception
from tests.fixtures.airflow_db import DagTest, task_states, try_numbers, xcom_values
from tests.fixtures.s3 import S3Bucket
from tests.integration.operator_checks import api_posts, check_record, manifest_beside

pytestmark = pytest.mark.timeout(180)

START = pendulum.datetime(2026, 1, 1, tz="UTC")
RETRY_ONCE = {"retries": 1, "retry_delay": timedelta(0)}
OPENAI = "openai/gpt-image-1-mini"  # answers inline (base64): the bytes exist only in the answer
IMAGEN = "google/imagen-4.0-fast-generate-001"  # answers with signed URLs on the storage host


def two_tasks(dag_id: str, output_uri: str, errors: dict[str, list[BaseException]]) -> DAG:
    def remember(context: Any) -> None:
        errors.setdefault(context["ti"].task_id, []).append(context["exception"])

    args = {**RETRY_ONCE, "on_retry_callback": remember, "on_failure_callback": remember}
    with DAG(dag_id, schedule=None, start_date=START, default_args=args) as dag:
        AIHubMixOpenAIImageOperator(
            task_id="inline",
            model="gpt-image-1-mini",
            quality="low",
            prompt="a tin robot",
            output_uri=output_uri,
        )
        AIHubMixImagenOperator(
            task_id="by_url",
            model="imagen-4.0-fast-generate-001",
            prompt="a tin robot",
            output_uri=output_uri,
        )
    return dag


def attempts(manifest: dict[str, Any]) -> list[tuple[int, str]]:
    return [(a["try_number"], a["status"]) for a in manifest["attempts"]]


@needs_callback_exception
def test_manifest_write_failure_then_retry_and_rerun_buy_once(
    dag_test: DagTest,
    sandbox: SandboxServer,
    sandbox_conn: str,
    s3_bucket: S3Bucket,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Images stored, then the "complete" manifest write fails once per task instance.
    original = S3ObjectStore.write_json
    failed: set[str] = set()

    def flaky_write_json(self: S3ObjectStore, key: str, obj: Any) -> str:
        if isinstance(obj, dict) and obj.get("status") == "complete" and key not in failed:
            failed.add(key)
            raise AIHubMixStorageError(f"simulated outage writing {key}")
        return original(self, key, obj)

    monkeypatch.setattr(S3ObjectStore, "write_json", flaky_write_json)
    errors: dict[str, list[BaseException]] = {}
    dag = two_tasks("aihubmix_retry_manifest", s3_bucket.uri, errors)
    logical_date = pendulum.datetime(2026, 3, 1, tz="UTC")

    run = dag_test(dag, logical_date=logical_date)

    assert set(task_states(run).values()) == {"success"}, task_states(run)
    assert try_numbers(run) == {"inline[-1]": 2, "by_url[-1]": 2}
    assert len(failed) == 2
    assert all("simulated outage" in str(e[0]) for e in errors.values()), errors
    # One billable request per task, though each task ran twice.
    assert sorted(r["path"] for r in api_posts(sandbox)) == sorted(
        f"/v1/models/{m}/predictions" for m in (OPENAI, IMAGEN)
    )
    xcom = xcom_values(dag.dag_id, run.run_id)
    for task_id, model in (("inline", OPENAI), ("by_url", IMAGEN)):
        (record,) = xcom[task_id][-1]
        check_record(record, model=model, map_index=-1, s3_client=s3_bucket.client)
        manifest = manifest_beside(record, s3_bucket.client)
        assert manifest["status"] == "complete" and manifest["records"] == [record]
        assert attempts(manifest) == [(1, "submitting"), (1, "received"), (2, "complete")]
    # The inline image was found stored; the URL image was downloaded again (a free GET).
    downloads = sandbox.client.requests(host="storage", path="^/images/")
    assert len(downloads) == 2
    keys = [key for key in s3_bucket.list_keys() if not key.endswith(".thumb.webp")]
    assert len(keys) == 4  # two images and two manifests: nothing duplicated

    # Re-run the same task instances: the complete manifests answer, no request is made.
    rerun = dag_test(dag, logical_date=logical_date)

    assert rerun.run_id == run.run_id
    assert set(task_states(rerun).values()) == {"success"}
    assert len(api_posts(sandbox)) == 2
    assert len(sandbox.client.requests(host="storage", path="^/images/")) == 2
    assert xcom_values(dag.dag_id, rerun.run_id) == xcom


@needs_callback_exception
def test_download_failure_and_lost_answer_are_never_bought_again(
    dag_test: DagTest, sandbox: SandboxServer, sandbox_conn: str, tmp_path: Path
) -> None:
    # by_url: the API answers, the first image download is refused (an expired signed URL).
    sandbox.client.inject(kind="expired", host="storage", count=1)
    # inline: the API processes (and bills) the request, but the answer never arrives.
    sandbox.client.inject(kind="reset_after_send", host="api", path="gpt-image", count=1)
    errors: dict[str, list[BaseException]] = {}
    dag = two_tasks("aihubmix_retry_download", (tmp_path / "out").as_uri(), errors)

    run = dag_test(dag)

    states = task_states(run)
    assert states == {"inline[-1]": "failed", "by_url[-1]": "success"}, states
    assert try_numbers(run) == {"inline[-1]": 2, "by_url[-1]": 2}
    # Billed once each: the lost answer is not bought again, the download is retried for free.
    assert sandbox.client.billed_count() == 2
    assert len(api_posts(sandbox)) == 2
    (record,) = xcom_values(dag.dag_id, run.run_id)["by_url"][-1]
    check_record(record, model=IMAGEN, map_index=-1)
    assert attempts(manifest_beside(record)) == [(1, "submitting"), (1, "received"), (2, "complete")]
    # The second try of "inline" refused to buy blindly, naming the way out.
    retry_error, final_error = errors["inline"]
    assert isinstance(final_error, AIHubMixPossiblyBilledError)
    assert "regenerate=True" in str(final_error)
    manifest_path = next((tmp_path / "out").rglob("task_id=inline/map_index=-1/manifest.json"))
    manifest = json.loads(manifest_path.read_text())
    assert manifest["status"] == "ambiguous"
    assert attempts(manifest) == [(1, "submitting"), (1, "ambiguous")]
    assert isinstance(retry_error, AIHubMixPossiblyBilledError)
