"""Every synchronous family, deferrable, through ``dag.test()``: the request is sent by the trigger.

``dag.test()`` runs a deferred task's trigger in this process and resumes the task with its
event, as a real triggerer and worker would (the end-to-end tests do it with real ones).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG

from airflow_provider_aihubmix.catalog.models import resolve_model
from airflow_provider_aihubmix.operators.images import (
    AIHubMixFluxOperator,
    AIHubMixGeminiImageOperator,
    AIHubMixGenerateImageOperator,
    AIHubMixIdeogramOperator,
    AIHubMixImagenOperator,
    AIHubMixIRAGOperator,
    AIHubMixOpenAIImageOperator,
    AIHubMixQwenImageOperator,
    AIHubMixSeedreamOperator,
)
from airflow_provider_aihubmix.sandbox import SandboxServer
from tests.fixtures.airflow_db import DagTest, raw_xcom_json, task_states, xcom_values
from tests.integration.operator_checks import api_posts, check_no_secrets, check_record, manifest_beside

pytestmark = pytest.mark.timeout(240)

START = pendulum.datetime(2026, 1, 1, tz="UTC")
PASS_THROUGH = "acme/brand-new-model"


def sync_family_tasks(output_uri: str) -> dict[str, str]:
    """One deferrable task per synchronous family (and a pass-through model); task -> model path."""
    common: dict[str, Any] = {"output_uri": output_uri, "deferrable": True}
    AIHubMixOpenAIImageOperator(
        task_id="openai", model="gpt-image-1-mini", prompt="a red kite", quality="low", n=2, **common
    )
    AIHubMixImagenOperator(task_id="imagen", prompt="a blue kite", **common)
    AIHubMixQwenImageOperator(task_id="qwen", prompt="a green kite", **common)
    AIHubMixSeedreamOperator(task_id="seedream", prompt="a yellow kite", size="2K", **common)
    AIHubMixFluxOperator(task_id="kontext", model="FLUX.1-Kontext-pro", prompt="a white kite", **common)
    AIHubMixIRAGOperator(task_id="irag", prompt="a black kite", **common)
    AIHubMixIdeogramOperator(task_id="ideogram", prompt="a kite, poster", **common)
    AIHubMixGenerateImageOperator(task_id="generic", model=PASS_THROUGH, prompt="a grey kite", **common)
    # One request per image: two requests, each recorded before the next.
    AIHubMixGeminiImageOperator(task_id="gemini", prompt="a violet kite", n=2, **common)
    paths = {
        "openai": "openai/gpt-image-1-mini",
        "imagen": resolve_model(AIHubMixImagenOperator.default_model or "").path,
        "qwen": resolve_model(AIHubMixQwenImageOperator.default_model or "").path,
        "seedream": resolve_model(AIHubMixSeedreamOperator.default_model or "").path,
        "kontext": resolve_model("FLUX.1-Kontext-pro").path,
        "irag": resolve_model(AIHubMixIRAGOperator.default_model or "").path,
        "ideogram": resolve_model(AIHubMixIdeogramOperator.default_model or "").path,
        "generic": PASS_THROUGH,
        "gemini": resolve_model(AIHubMixGeminiImageOperator.default_model or "").path,
    }
    assert not any(resolve_model(path).is_async for path in paths.values())
    return paths


def test_every_sync_family_is_sent_by_the_trigger(
    dag_test: DagTest, sandbox: SandboxServer, sandbox_conn: str, output: tuple[str, Any]
) -> None:
    output_uri, s3_client = output
    scheme = output_uri.split(":", 1)[0]
    with DAG(f"aihubmix_deferrable_sync_{scheme}", schedule=None, start_date=START) as dag:
        models = sync_family_tasks(output_uri)

    run = dag_test(dag)

    assert set(task_states(run).values()) == {"success"}, task_states(run)
    xcom = xcom_values(dag.dag_id, run.run_id)
    for task_id, model in models.items():
        records = xcom[task_id][-1]
        assert records, task_id
        for record in records:
            check_record(record, model=model, map_index=-1, s3_client=s3_client)
        manifest = manifest_beside(records[0], s3_client)
        assert manifest["status"] == "complete" and manifest["records"] == records
        # The worker stored the request and deferred; the trigger marked, sent and recorded the answer.
        steps = [attempt["status"] for attempt in manifest["attempts"]]
        sends = 2 if task_id == "gemini" else 1
        assert steps == ["deferred", "submitting"] * sends + ["received", "complete"], (task_id, steps)
        assert manifest["in_flight"] is None and manifest["requests_answered"] == sends
    assert len(xcom["openai"][-1]) == 2 and len(xcom["gemini"][-1]) == 2
    # One billable request per task (two for Gemini's n=2), nothing bought twice; requests cleaned up.
    assert len(api_posts(sandbox)) == len(models) + 1
    if s3_client is not None:
        bucket = output_uri.split("/")[2]
        keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket).get("Contents", [])]
        assert not [key for key in keys if key.endswith("request.json")]
    else:
        assert not list(Path(output_uri[len("file://") :]).rglob("request.json"))
    check_no_secrets(raw_xcom_json(dag.dag_id, run.run_id))
