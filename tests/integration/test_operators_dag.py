"""Every image operator through ``dag.test()``: the sandbox answers, moto S3 or local disk stores.

Tasks run in this process through Airflow's real task runner; XCom is read back from the
metadata DB and every stored object is read independently of the store (boto3 / open()).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG

from airflow_provider_aihubmix.catalog.models import resolve_model
from airflow_provider_aihubmix.exceptions import AIHubMixValidationError
from airflow_provider_aihubmix.gallery import OUTPUT_LOCATION_XCOM_KEY
from airflow_provider_aihubmix.gallery.urls import gallery_path
from airflow_provider_aihubmix.operators.images import (
    AIHubMixFluxOperator,
    AIHubMixGenerateImageOperator,
    AIHubMixIdeogramOperator,
    AIHubMixImagenOperator,
    AIHubMixIRAGOperator,
    AIHubMixOpenAIImageOperator,
    AIHubMixQwenImageOperator,
    AIHubMixSeedreamOperator,
)
from airflow_provider_aihubmix.sandbox import SandboxServer
from airflow_provider_aihubmix.storage import InvalidOutputURIError
from tests.compat import needs_callback_exception
from tests.fixtures.airflow_db import DagTest, raw_xcom_json, task_states, xcom_values
from tests.fixtures.s3 import S3Bucket
from tests.integration.operator_checks import (
    api_posts,
    check_no_secrets,
    check_record,
    manifest_beside,
)

pytestmark = pytest.mark.timeout(180)

START = pendulum.datetime(2026, 1, 1, tz="UTC")
PASS_THROUGH = "acme/brand-new-model"


def family_tasks(output_uri: str) -> dict[str, str]:
    """One task per family operator plus the generic one with a pass-through model; task → model path."""
    common: dict[str, Any] = {"output_uri": output_uri}
    AIHubMixOpenAIImageOperator(
        task_id="openai", model="gpt-image-1-mini", prompt="a red kite", quality="low", **common
    )
    AIHubMixImagenOperator(task_id="imagen", prompt="a blue kite", aspect_ratio="16:9", **common)
    AIHubMixQwenImageOperator(task_id="qwen", prompt="a green kite", **common)
    AIHubMixSeedreamOperator(task_id="seedream", prompt="a yellow kite", size="2K", watermark=False, **common)
    AIHubMixFluxOperator(task_id="flux", prompt="a white kite", poll_interval=0.2, timeout=60, **common)
    AIHubMixIRAGOperator(task_id="irag", prompt="a black kite", **common)
    AIHubMixIdeogramOperator(task_id="ideogram", prompt="a kite, poster", **common)
    AIHubMixGenerateImageOperator(task_id="generic", model=PASS_THROUGH, prompt="a grey kite", **common)
    return {
        "openai": "openai/gpt-image-1-mini",
        "imagen": resolve_model(AIHubMixImagenOperator.default_model or "").path,
        "qwen": resolve_model(AIHubMixQwenImageOperator.default_model or "").path,
        "seedream": resolve_model(AIHubMixSeedreamOperator.default_model or "").path,
        "flux": resolve_model(AIHubMixFluxOperator.default_model or "").path,
        "irag": resolve_model(AIHubMixIRAGOperator.default_model or "").path,
        "ideogram": resolve_model(AIHubMixIdeogramOperator.default_model or "").path,
        "generic": PASS_THROUGH,
    }


def test_every_family_operator_stores_real_images(
    dag_test: DagTest, sandbox: SandboxServer, sandbox_conn: str, output: tuple[str, Any]
) -> None:
    output_uri, s3_client = output
    scheme = output_uri.split(":", 1)[0]
    with DAG(f"aihubmix_families_{scheme}", schedule=None, start_date=START) as dag:
        models = family_tasks(output_uri)

    run = dag_test(dag)

    assert set(task_states(run).values()) == {"success"}, task_states(run)
    xcom = xcom_values(dag.dag_id, run.run_id)
    locations = xcom_values(dag.dag_id, run.run_id, key=OUTPUT_LOCATION_XCOM_KEY)
    for task_id, model in models.items():
        records = xcom[task_id][-1]
        assert records, task_id
        for index, record in enumerate(records):
            assert record["index"] == index
            assert record["uri"].startswith(output_uri + "/dag_id=")
            check_record(record, model=model, map_index=-1, s3_client=s3_client)
        manifest = manifest_beside(records[0], s3_client)
        assert manifest["status"] == "complete"
        assert manifest["records"] == records
        assert manifest["model"] == model
        assert len(manifest["fingerprint"]) == 64
        assert all(item["url"] is None for item in manifest["received"])  # signed URLs dropped
        # The gallery finds the task's manifest from this record, written before the request.
        assert locations[task_id][-1] == {
            "output_uri": output_uri,
            "conn_id": "aws_default",
            "show_prompt": False,
        }
        # "View image", rendered by Airflow at the end of the task: the task's gallery entry.
        link = xcom_values(dag.dag_id, run.run_id, key="_link_AIHubMixImageLink")[task_id][-1]
        assert link.endswith(gallery_path(dag.dag_id, run.run_id, task_id, -1)), link
    assert xcom["flux"][-1][0]["remote_task_id"]
    # One billable request per task; nothing bought twice.
    assert len(api_posts(sandbox)) == len(models)
    check_no_secrets(raw_xcom_json(dag.dag_id, run.run_id))


def test_mapped_tasks_do_not_collide(
    dag_test: DagTest, sandbox: SandboxServer, sandbox_conn: str, s3_bucket: S3Bucket
) -> None:
    prompts = ["a lighthouse at dawn", "a lighthouse at noon", "a lighthouse at dusk"]
    kwargs: list[dict[str, Any]] = [
        {"prompt": "a fox", "model": "imagen-4.0-fast-generate-001"},
        {"prompt": "a fox", "model": "imagen-4.0-generate-001", "n": 2},
    ]
    with DAG("aihubmix_mapping", schedule=None, start_date=START) as dag:
        AIHubMixSeedreamOperator.partial(
            task_id="expand", size="2K", output_uri=s3_bucket.uri, output_conn_id="aws_default"
        ).expand(prompt=prompts)
        AIHubMixImagenOperator.partial(task_id="expand_kwargs", output_uri=s3_bucket.uri).expand_kwargs(
            kwargs
        )

    run = dag_test(dag)

    assert set(task_states(run).values()) == {"success"}, task_states(run)
    xcom = xcom_values(dag.dag_id, run.run_id)
    seedream = resolve_model("doubao-seedream-4-5").path
    assert sorted(xcom["expand"]) == [0, 1, 2]
    assert sorted(xcom["expand_kwargs"]) == [0, 1]
    uris: list[str] = []
    for map_index, records in xcom["expand"].items():
        assert len(records) == 1
        check_record(records[0], model=seedream, map_index=map_index, s3_client=s3_bucket.client)
        uris.append(records[0]["uri"])
    for map_index, records in xcom["expand_kwargs"].items():
        model = resolve_model(kwargs[map_index]["model"]).path
        assert len(records) == kwargs[map_index].get("n", 1)
        for record in records:
            check_record(record, model=model, map_index=map_index, s3_client=s3_bucket.client)
            uris.append(record["uri"])
    assert len(set(uris)) == len(uris) == 3 + 1 + 2
    # Every mapped instance sent its own prompt once: results join back to inputs by map_index.
    sent = [r["json"] for r in api_posts(sandbox)]
    assert len(sent) == 5
    for map_index, prompt in enumerate(prompts):
        assert sum(body["input"]["prompt"] == prompt for body in sent) == 1
        manifest = manifest_beside(xcom["expand"][map_index][0], s3_bucket.client)
        assert (manifest["map_index"], manifest["input"]["prompt"]) == (map_index, prompt)
    keys = s3_bucket.list_keys()
    thumbnails = [key for key in keys if key.endswith(".thumb.webp")]
    assert len(thumbnails) == len(uris)  # one per image, beside it
    assert len(keys) - len(thumbnails) == len(uris) + 5  # images + one manifest per task instance


@needs_callback_exception
def test_bad_rendered_input_fails_before_any_request(
    dag_test: DagTest, sandbox: SandboxServer, sandbox_conn: str, tmp_path: Path
) -> None:
    errors: dict[str, BaseException] = {}

    def remember(context: Any) -> None:
        errors[context["ti"].task_id] = context["exception"]

    with DAG(
        "aihubmix_bad_input",
        schedule=None,
        start_date=START,
        params={"size": "banana", "n": "9"},
        default_args={"retries": 0, "on_failure_callback": remember},
    ) as dag:
        AIHubMixImagenOperator(
            task_id="bad_size", prompt="a kite", size="{{ params.size }}", output_uri=tmp_path.as_uri()
        )
        AIHubMixImagenOperator(
            task_id="bad_n", prompt="a kite", n="{{ params.n }}", output_uri=tmp_path.as_uri()
        )
        AIHubMixImagenOperator(
            task_id="bad_output", prompt="a kite", output_uri="{{ 'ftp://' ~ params.size }}/x"
        )

    run = dag_test(dag)

    assert task_states(run) == {f"{t}[-1]": "failed" for t in ("bad_size", "bad_n", "bad_output")}
    assert sandbox.client.requests(host="api") == []
    # Each failed on its own bad value, named in the error.
    assert isinstance(errors["bad_size"], AIHubMixValidationError) and "'size' = 'banana'" in str(
        errors["bad_size"]
    )
    assert isinstance(errors["bad_n"], AIHubMixValidationError) and "'n'" in str(errors["bad_n"])
    assert isinstance(errors["bad_output"], InvalidOutputURIError) and "ftp://banana/x" in str(
        errors["bad_output"]
    )
    assert not any(tmp_path.rglob("*.json"))


def test_xcom_scan_catches_forbidden_values() -> None:
    # The scan above must be able to fail: a record with a signed URL or the key is caught.
    with pytest.raises(AssertionError):
        check_no_secrets(json.dumps({"uri": "https://x/img.png?Expires=1&Signature=abc"}))
    with pytest.raises(AssertionError):
        check_no_secrets(json.dumps({"note": "Bearer sk-sandbox-test-key"}))
