"""Cost through real runs: ``dag.test()`` against the sandbox, manifests in moto S3 or on disk.

* a mapped fan-out under a DAG-level budget stops buying at the cap: the sandbox's request log
  shows no request after it, and the refusal names the task and the run's spend so far;
* the same cap from the Airflow Variable ``aihubmix_budget_<dag_id>``, for token-billed and
  megapixel-billed models;
* the run cost summary adds up the manifests, per model and per task.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG, Param

from airflow_provider_aihubmix.exceptions import AIHubMixBudgetExceededError
from airflow_provider_aihubmix.operators.images import (
    AIHubMixFluxOperator,
    AIHubMixGeminiImageOperator,
    AIHubMixImagenOperator,
    AIHubMixOpenAIImageOperator,
    AIHubMixSeedreamOperator,
)
from airflow_provider_aihubmix.pricing.summary import write_run_cost_summary
from airflow_provider_aihubmix.sandbox import SandboxServer
from airflow_provider_aihubmix.storage import open_store
from tests.compat import needs_callback_exception
from tests.fixtures.airflow_db import DagTest, task_states, xcom_values
from tests.fixtures.s3 import S3Bucket
from tests.integration.operator_checks import api_posts

pytestmark = pytest.mark.timeout(240)

START = pendulum.datetime(2026, 1, 1, tz="UTC")
PROMPTS = [f"a paper kite, colour {i}" for i in range(8)]


def _remember(errors: dict[str, BaseException]) -> Any:
    def callback(context: Any) -> None:
        ti = context["ti"]
        errors[f"{ti.task_id}[{ti.map_index}]"] = context["exception"]

    return callback


@needs_callback_exception
def test_mapped_fan_out_stops_buying_at_the_dag_budget(
    dag_test: DagTest, sandbox: SandboxServer, sandbox_conn: str, s3_bucket: S3Bucket
) -> None:
    errors: dict[str, BaseException] = {}
    # 0.02 USD per image (Imagen 4 Fast); 0.10 USD buys five of the eight mapped tasks.
    with DAG(
        "aihubmix_dag_budget",
        schedule=None,
        start_date=START,
        params={"max_cost_usd": Param(0.10, type="number")},
        default_args={"retries": 2, "on_failure_callback": _remember(errors)},
    ) as dag:
        AIHubMixImagenOperator.partial(
            task_id="kites", model="imagen-4.0-fast-generate-001", n=1, output_uri=s3_bucket.uri
        ).expand(prompt=PROMPTS)

    run = dag_test(dag)

    states = task_states(run)
    bought = sorted(int(k.split("[")[1][:-1]) for k, v in states.items() if v == "success")
    refused = sorted(int(k.split("[")[1][:-1]) for k, v in states.items() if v == "failed")
    assert len(bought) == 5 and len(refused) == 3, states
    # The request log: exactly one request per bought task, none for the refused ones -- not even
    # a retry (the refusal is final: the spend so far only grows).
    posts = api_posts(sandbox)
    assert len(posts) == len(bought)
    sent = {body["json"]["input"]["prompt"] for body in posts}
    assert sent == {PROMPTS[i] for i in bought}
    assert not sent & {PROMPTS[i] for i in refused}
    # Each refusal names its task, the cap and the spend so far (five images at 0.02 USD).
    for index in refused:
        error = errors[f"kites[{index}]"]
        assert isinstance(error, AIHubMixBudgetExceededError)
        message = str(error)
        assert f"task 'kites[{index}]'" in message
        assert "DAG param 'max_cost_usd' caps the run at 0.1000 USD" in message
        assert "0.1000 USD is already committed (reserved or spent)" in message
        assert "estimate is 0.0200 USD" in message
    # The manifests that make up the spend say so, actual figure and price row included.
    xcom = xcom_values(dag.dag_id, run.run_id)
    store = open_store(s3_bucket.uri)
    _, summary = write_run_cost_summary(store, dag.dag_id, run.run_id)
    assert summary["total"]["actual"] == pytest.approx(0.10)
    assert summary["total"]["images"] == sum(len(xcom["kites"][i]) for i in bought) == 5


@needs_callback_exception
def test_variable_budget_guards_token_and_megapixel_billed_models(
    dag_test: DagTest,
    sandbox: SandboxServer,
    sandbox_conn: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    errors: dict[str, BaseException] = {}
    dag_id = "aihubmix_variable_budget"
    # gpt-image-1 high 1024x1024: 4160 tokens x $40/1M = 0.1664 USD. Flux 2 pro, size unset:
    # 0.075 USD (4 MP upper bound). A 0.20 USD cap buys the first, then refuses the second.
    monkeypatch.setenv(f"AIRFLOW_VAR_AIHUBMIX_BUDGET_{dag_id.upper()}", "0.20")
    output_uri = (tmp_path / "out").as_uri()
    default_args = {"on_failure_callback": _remember(errors)}
    with DAG(dag_id, schedule=None, start_date=START, default_args=default_args):
        first = AIHubMixOpenAIImageOperator(
            task_id="poster",
            model="gpt-image-1",
            prompt="a poster",
            quality="high",
            size="1024x1024",
            output_uri=output_uri,
        )
        second = AIHubMixFluxOperator(
            task_id="flux", prompt="a kite", poll_interval=0.2, timeout=60, output_uri=output_uri
        )
        first >> second
    dag = first.dag

    run = dag_test(dag)

    assert task_states(run) == {"poster[-1]": "success", "flux[-1]": "failed"}
    posts = api_posts(sandbox)
    assert len(posts) == 1 and "gpt-image-1" in posts[0]["path"]  # nothing sent for flux
    message = str(errors["flux[-1]"])
    assert f"Variable 'aihubmix_budget_{dag_id}' caps the run at 0.2000 USD" in message
    assert "estimate is 0.0750 USD" in message
    # The spend so far is the poster's actual cost, from the usage tokens the sandbox reported.
    manifest = json.loads(
        next((tmp_path / "out").rglob("task_id=poster/map_index=-1/manifest.json")).read_text()
    )
    assert manifest["cost"]["basis"]["actual"] == "usage_tokens"
    assert f"{manifest['cost']['actual']:.4f} USD is already committed" in message


def test_run_cost_summary_adds_up_the_manifests_per_model_and_task(
    dag_test: DagTest, sandbox: SandboxServer, sandbox_conn: str, tmp_path: Path
) -> None:
    output_uri = (tmp_path / "out").as_uri()
    with DAG("aihubmix_cost_summary", schedule=None, start_date=START) as dag:
        AIHubMixSeedreamOperator.partial(
            task_id="seedream", model="doubao-seedream-4-0", size="2K", output_uri=output_uri
        ).expand(prompt=PROMPTS[:2])
        AIHubMixImagenOperator(
            task_id="imagen", model="imagen-4.0-generate-001", n=2, prompt="a kite", output_uri=output_uri
        )

    run = dag_test(dag)

    assert set(task_states(run).values()) == {"success"}
    uri, summary = write_run_cost_summary(open_store(output_uri), dag.dag_id, run.run_id)
    assert uri.endswith("/cost-summary.json") and f"dag_id={dag.dag_id}" in uri
    on_disk = json.loads(Path(uri.removeprefix("file://")).read_text())
    assert on_disk["total"] == summary["total"]
    models = summary["models"]
    assert models["doubao/doubao-seedream-4-0"]["actual"] == pytest.approx(0.03 * 2)
    assert models["google/imagen-4.0-generate-001"]["actual"] == pytest.approx(0.04 * 2)
    assert summary["total"]["actual"] == pytest.approx(0.14)
    assert summary["total"]["estimated"] == pytest.approx(0.14)
    assert [(t["task_id"], t["map_index"]) for t in summary["tasks"]] == [
        ("imagen", -1),
        ("seedream", 0),
        ("seedream", 1),
    ]
    assert all(t["price_source"] and t["price_read"] == "2026-11-29" for t in summary["tasks"])


def test_gemini_cost_is_settled_from_the_usage_metadata_of_every_request(
    dag_test: DagTest, sandbox: SandboxServer, sandbox_conn: str, tmp_path: Path
) -> None:
    output_uri = (tmp_path / "out").as_uri()
    with DAG("aihubmix_gemini_cost", schedule=None, start_date=START) as dag:
        # Two images = two generateContent requests at 2K: 2 x 1680 tokens x $60/1M estimated.
        AIHubMixGeminiImageOperator(
            task_id="banana",
            model="gemini-3.1-flash-image-preview",
            prompt="a paper kite",
            n=2,
            image_size="2K",
            max_cost_usd=0.25,
            output_uri=output_uri,
        )

    run = dag_test(dag)

    assert task_states(run) == {"banana[-1]": "success"}
    assert len(api_posts(sandbox)) == 2
    manifest = json.loads(
        next((tmp_path / "out").rglob("task_id=banana/map_index=-1/manifest.json")).read_text()
    )
    cost, usage = manifest["cost"], manifest["usage"]
    assert cost["estimated"] == pytest.approx(2 * 1680 * 60e-6)
    image_tokens = sum(d["tokenCount"] for d in usage["candidatesTokensDetails"] if d["modality"] == "IMAGE")
    text_tokens = usage["candidatesTokenCount"] - image_tokens + usage.get("thoughtsTokenCount", 0)
    expected = usage["promptTokenCount"] * 0.5e-6 + image_tokens * 60e-6 + text_tokens * 3e-6
    assert cost["actual"] == pytest.approx(expected) and cost["basis"]["actual"] == "usage_tokens"
    assert image_tokens == 2 * 1680  # both requests' usage, added by modality
    assert [i["actual"] for i in cost["images"]] == [pytest.approx(expected / 2, abs=1e-6)] * 2


def test_connection_prices_change_the_estimate_the_guard_and_the_manifest(
    dag_test: DagTest,
    sandbox: SandboxServer,
    sandbox_conn: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The account's own price: 0.01 USD a Seedream 4.5 image instead of the 0.04 list price.
    conn = json.loads(os.environ["AIRFLOW_CONN_AIHUBMIX_DEFAULT"])
    conn["extra"]["prices"] = {"doubao-seedream-4-5": 0.01}
    monkeypatch.setenv("AIRFLOW_CONN_AIHUBMIX_DEFAULT", json.dumps(conn))
    output_uri = (tmp_path / "out").as_uri()
    with DAG("aihubmix_price_override", schedule=None, start_date=START) as dag:
        # At the list price (2 x 0.04) this would be refused by its 0.05 cap; at 2 x 0.01 it is bought.
        AIHubMixSeedreamOperator(
            task_id="discounted", prompt="a kite", n=2, size="2K", max_cost_usd=0.05, output_uri=output_uri
        )
        # The operator parameter wins over the connection.
        AIHubMixSeedreamOperator(
            task_id="negotiated",
            prompt="a kite",
            size="2K",
            prices={"doubao-seedream-4-5": 0.02},
            output_uri=output_uri,
        )

    run = dag_test(dag)

    assert set(task_states(run).values()) == {"success"}
    manifests = {
        path.parent.parent.name: json.loads(path.read_text())
        for path in (tmp_path / "out").rglob("manifest.json")
    }
    discounted = manifests["task_id=discounted"]["cost"]
    assert discounted["estimated"] == pytest.approx(0.02) and discounted["actual"] == pytest.approx(0.02)
    assert discounted["price"]["origin"] == "connection 'aihubmix_default' extra 'prices'"
    negotiated = manifests["task_id=negotiated"]["cost"]
    assert negotiated["actual"] == pytest.approx(0.02)
    assert negotiated["price"]["origin"] == "operator parameter 'prices'"
