"""Issue 28 through ``dag.test()`` on the sandbox: each new model stores its images, blocking and
deferrable; a new model of a known provider runs through its family operator with one warning; a
streamed Gemini answer with a multi-megabyte ``thoughtSignature`` yields exactly its image and the
signature reaches no manifest, log line, XCom value or lineage event."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG
from openlineage.client.serde import Serde

from airflow_provider_aihubmix.catalog import passthrough
from airflow_provider_aihubmix.exceptions import AIHubMixValidationError
from airflow_provider_aihubmix.operators.images import (
    AIHubMixGeminiImageOperator,
    AIHubMixGenerateImageOperator,
    AIHubMixOpenAIImageOperator,
    AIHubMixSeedreamOperator,
)
from airflow_provider_aihubmix.sandbox import SandboxServer
from tests.fixtures.airflow_db import DagTest, raw_xcom_json, task_states, xcom_values
from tests.integration.operator_checks import api_posts, check_no_secrets, check_record, manifest_beside

pytestmark = pytest.mark.timeout(300)

START = pendulum.datetime(2026, 1, 1, tz="UTC")
MARKER = "IssueTwentyEightSignatureMarker"
SIGNATURE_CHARS = 3_000_000
LINEAGE: list[str] = []


def _lineage_text(operator: Any) -> str:
    lineage = operator.get_openlineage_facets_on_complete(None)
    parts = [Serde.to_dict(facet) for facet in lineage.run_facets.values()]
    parts += [Serde.to_dict(dataset) for dataset in (*lineage.inputs, *lineage.outputs)]
    return json.dumps(parts)


class CapturedGemini(AIHubMixGeminiImageOperator):
    """Records the lineage the OpenLineage listener would emit when the task completes."""

    def execute(self, context: Any) -> Any:
        result = super().execute(context)
        LINEAGE.append(_lineage_text(self))
        return result

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        result = super().execute_complete(context, event)
        LINEAGE.append(_lineage_text(self))
        return result


def new_model_tasks(output_uri: str, deferrable: bool) -> dict[str, str]:
    """One task per new model; task -> the model path its records carry."""
    common: dict[str, Any] = {"output_uri": output_uri, "deferrable": deferrable}
    AIHubMixOpenAIImageOperator(
        task_id="gpt_image_2",
        model="gpt-image-2",
        prompt="a kite",
        size="1536x1024",
        quality="high",
        **common,
    )
    AIHubMixSeedreamOperator(
        task_id="seedream_5_lite",
        model="doubao-seedream-5.0-lite",
        prompt="a kite",
        size="2K",
        output_format="png",
        tools=[{"type": "web_search"}],
        **common,
    )
    AIHubMixSeedreamOperator(
        task_id="seedream_dated", model="doubao-seedream-4-5-251128", prompt="a kite", size="2K", **common
    )
    AIHubMixOpenAIImageOperator(task_id="gpt_image_3", model="gpt-image-3", prompt="a kite", **common)
    AIHubMixGeminiImageOperator(
        task_id="gemini_stream",
        model="gemini-3-pro-image-preview",
        prompt="a kite",
        stream=True,
        **common,
    )
    return {
        "gpt_image_2": "openai/gpt-image-2",
        "seedream_5_lite": "doubao/doubao-seedream-5.0-lite",
        "seedream_dated": "doubao/doubao-seedream-4-5",
        "gpt_image_3": "openai/gpt-image-3",
        "gemini_stream": "gemini-3-pro-image-preview",
    }


@pytest.mark.parametrize("deferrable", [False, True], ids=["blocking", "deferrable"])
def test_each_new_model_stores_its_images(
    dag_test: DagTest,
    sandbox: SandboxServer,
    sandbox_conn: str,
    output: tuple[str, Any],
    deferrable: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    passthrough._warned.clear()
    caplog.set_level(logging.WARNING)
    output_uri, s3_client = output
    mode = "deferrable" if deferrable else "blocking"
    with DAG(
        f"aihubmix_new_models_{mode}_{output_uri.split(':')[0]}", schedule=None, start_date=START
    ) as dag:
        models = new_model_tasks(output_uri, deferrable)

    run = dag_test(dag)

    assert set(task_states(run).values()) == {"success"}, task_states(run)
    xcom = xcom_values(dag.dag_id, run.run_id)
    for task_id, model in models.items():
        records = xcom[task_id][-1]
        assert len(records) == 1, task_id
        check_record(records[0], model=model, map_index=-1, s3_client=s3_client)
        manifest = manifest_beside(records[0], s3_client)
        assert manifest["status"] == "complete" and manifest["records"] == records
    paths = {post["path"] for post in api_posts(sandbox)}
    assert {
        "/v1/models/openai/gpt-image-2/predictions",
        "/v1/models/doubao/doubao-seedream-5.0-lite/predictions",
        "/v1/models/doubao/doubao-seedream-4-5/predictions",
        "/v1/models/openai/gpt-image-3/predictions",
        "/gemini/v1beta/models/gemini-3-pro-image-preview:streamGenerateContent",
    } == paths
    lite = next(p for p in api_posts(sandbox) if "5.0-lite" in p["path"])
    assert lite["json"]["input"]["tools"] == [{"type": "web_search"}]
    # gpt-image-2 is priced by tokens: the manifest's actual cost comes from the answer's usage.
    gpt2 = manifest_beside(xcom["gpt_image_2"][-1][0], s3_client)
    assert gpt2["cost"]["actual"] is not None and gpt2["cost"]["estimated"] is not None
    # The new model of a known provider: one warning, however often it was resolved.
    warned = [r for r in caplog.records if "openai/gpt-image-3" in r.getMessage()]
    assert len(warned) == 1 and "limits are not known" in warned[0].getMessage()
    gpt3 = manifest_beside(xcom["gpt_image_3"][-1][0], s3_client)
    assert gpt3["cost"]["estimated"] is None
    check_no_secrets(raw_xcom_json(dag.dag_id, run.run_id))


def test_family_operators_take_their_new_models_when_the_dag_is_parsed() -> None:
    AIHubMixOpenAIImageOperator(task_id="a", model="gpt-image-2", prompt="p", size="3840x2160")
    AIHubMixSeedreamOperator(task_id="b", model="doubao-seedream-5.0-lite", prompt="p", size="3K")
    AIHubMixSeedreamOperator(task_id="c", model="doubao-seedream-4-0-250828", prompt="p")
    AIHubMixSeedreamOperator(task_id="d", model="doubao/doubao-seedream-6-0", prompt="p", max_images=3)
    with pytest.raises(AIHubMixValidationError, match="size"):
        AIHubMixOpenAIImageOperator(task_id="e", model="gpt-image-2", prompt="p", size="4096x4096")
    # A model of another provider is not a family model: the generic operator passes it through.
    with pytest.raises(AIHubMixValidationError, match="AIHubMixGenerateImageOperator"):
        AIHubMixOpenAIImageOperator(task_id="f", model="acme/gpt-image-3", prompt="p")
    assert AIHubMixGenerateImageOperator(task_id="g", model="acme/gpt-image-3", prompt="p").model


@pytest.mark.parametrize("deferrable", [False, True], ids=["blocking", "deferrable"])
def test_a_streamed_gemini_answer_keeps_its_signature_out_of_every_record(
    dag_test: DagTest,
    sandbox: SandboxServer,
    sandbox_conn: str,
    tmp_path: Path,
    deferrable: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    LINEAGE.clear()
    sandbox.client.configure(thought_signature_chars=SIGNATURE_CHARS, thought_signature_marker=MARKER)
    output_uri = (tmp_path / "images").as_uri()
    mode = "deferrable" if deferrable else "blocking"
    with DAG(f"aihubmix_gemini_signature_{mode}", schedule=None, start_date=START) as dag:
        CapturedGemini(
            task_id="banana",
            model="gemini-3-pro-image-preview",
            prompt="a kite over the sea",
            n=2,
            stream=True,
            output_uri=output_uri,
            deferrable=deferrable,
        )

    run = dag_test(dag)

    assert set(task_states(run).values()) == {"success"}
    records = xcom_values(dag.dag_id, run.run_id)["banana"][-1]
    assert len(records) == 2  # exactly its images: one per request, the signatures not taken for one
    answers = [r for r in sandbox.client.requests(host="api") if "streamGenerateContent" in r["path"]]
    assert len(answers) == 2
    for record in records:
        check_record(record, model="gemini-3-pro-image-preview", map_index=-1)
    # The signature (3 M characters, twice) is in no stored file, log line, XCom value or lineage event.
    stored = [p for p in (tmp_path / "images").rglob("*") if p.is_file()]
    assert any(p.name == "manifest.json" for p in stored)
    for path in stored:
        assert MARKER.encode() not in path.read_bytes(), path
    assert MARKER not in caplog.text
    assert MARKER not in raw_xcom_json(dag.dag_id, run.run_id)
    assert LINEAGE and all(MARKER not in text for text in LINEAGE)
