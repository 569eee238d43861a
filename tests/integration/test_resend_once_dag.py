"""``on_possibly_billed="resend_once"`` through a real run (dag.test, sandbox, moto S3, DAG budget).

The sandbox bills a gpt-image request and cuts the connection before its answer (a worker that
never hears back, as after SIGKILL mid-request). With the policy, the retry sends the request once
more: both sends are in the sandbox's bill, the manifest (the first send kept under ``earlier/``
marked ``resend``), the run's cost summary and the DAG budget's ledger. When the second answer is
lost too, the next retry refuses: never a third send.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
import pytest
from airflow.sdk import DAG, Param

from airflow_provider_aihubmix.catalog.models import resolve_model
from airflow_provider_aihubmix.exceptions import AIHubMixValidationError
from airflow_provider_aihubmix.operators.images import AIHubMixOpenAIImageOperator
from airflow_provider_aihubmix.pricing.cost import estimate_request
from airflow_provider_aihubmix.pricing.reservations import RunLedger, ledger_store
from airflow_provider_aihubmix.pricing.summary import run_cost_summary
from airflow_provider_aihubmix.sandbox import SandboxServer
from airflow_provider_aihubmix.schemas import build_input
from airflow_provider_aihubmix.storage import open_store
from tests.fixtures.airflow_db import DagTest, task_states, try_numbers
from tests.fixtures.s3 import S3Bucket
from tests.integration.operator_checks import api_posts

pytestmark = pytest.mark.timeout(240)

PARAMS = {"quality": "low", "size": "1024x1024"}
PATH = "/v1/models/openai/gpt-image-1-mini/predictions"
MICRO = 1_000_000


def one_estimate() -> float:
    spec = resolve_model("gpt-image-1-mini")
    found = estimate_request(spec, build_input(spec, {"prompt": "x", **PARAMS}, {}), None)
    assert found.total_usd is not None
    return found.total_usd


def resend_dag(dag_id: str, output_uri: str, retries: int) -> DAG:
    with DAG(
        dag_id,
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        params={"max_cost_usd": Param(10 * one_estimate(), type="number")},
        default_args={"retries": retries, "retry_delay": timedelta(0)},
    ) as dag:
        AIHubMixOpenAIImageOperator(
            task_id="poster",
            model="gpt-image-1-mini",
            prompt="a lighthouse at dusk",
            output_uri=output_uri,
            on_possibly_billed="resend_once",
            **PARAMS,
        )
    return dag


def test_a_lost_answer_is_sent_once_more_and_both_sends_are_counted(
    dag_test: DagTest, sandbox: SandboxServer, sandbox_conn: str, s3_bucket: S3Bucket
) -> None:
    estimate = one_estimate()
    sandbox.client.inject(kind="reset_after_send", path=f"^{PATH}$", count=1)
    dag = resend_dag("aihubmix_resend_once", s3_bucket.uri, retries=1)

    run = dag_test(dag)

    assert task_states(run) == {"poster[-1]": "success"}
    assert len(api_posts(sandbox)) == 2 and sandbox.client.billed_count(f"^{PATH}$") == 2
    store = open_store(s3_bucket.uri)
    root = open_store(f"s3://{s3_bucket.name}")
    manifests = {key: root.read_json(key) for key in s3_bucket.list_keys() if key.endswith("manifest.json")}
    (final,) = [m for k, m in manifests.items() if "/earlier/" not in k]
    (first,) = [m for k, m in manifests.items() if "/earlier/" in k]
    assert final["status"] == "complete" and first["status"] == "ambiguous"
    (mark,) = final["earlier"]
    assert mark["resend"] is True and mark["status"] == "ambiguous"
    assert mark["estimated_cost_usd"] == pytest.approx(estimate)
    # The cost summary reads both manifests: two estimates, the second send's actual.
    summary = run_cost_summary(store, dag.dag_id, run.run_id)
    assert summary["total"]["tasks"] == 2
    assert summary["total"]["estimated"] == pytest.approx(2 * estimate)
    assert summary["total"]["possibly_billed"] == pytest.approx(estimate)
    # The DAG budget reserved the second send apart before sending it; the first stays counted.
    led = RunLedger(ledger_store(open_store(s3_bucket.uri)), dag.dag_id, run.run_id)
    entries = led.entries()
    assert [e.kind for e in entries] == ["reserve", "reserve", "settle"]
    assert entries[-1].total_micro_usd == round(estimate * MICRO) + round(final["actual_cost_usd"] * MICRO)
    assert led.report()["tasks"]["'poster'"]["open"] == 1


def test_a_second_lost_answer_is_never_followed_by_a_third_send(
    dag_test: DagTest, sandbox: SandboxServer, sandbox_conn: str, s3_bucket: S3Bucket
) -> None:
    sandbox.client.inject(kind="reset_after_send", path=f"^{PATH}$", count=5)
    dag = resend_dag("aihubmix_resend_once_twice_lost", s3_bucket.uri, retries=3)

    run = dag_test(dag)

    assert task_states(run) == {"poster[-1]": "failed"}
    assert try_numbers(run) == {"poster[-1]": 4}  # lost, sent again and lost, refused twice
    assert len(api_posts(sandbox)) == 2 and sandbox.client.billed_count(f"^{PATH}$") == 2
    led = RunLedger(ledger_store(open_store(s3_bucket.uri)), dag.dag_id, run.run_id)
    assert [e.kind for e in led.entries()] == ["reserve", "reserve"]  # both kept: may be billed


@pytest.mark.parametrize("value", ["retry", "resend", True])
def test_a_bad_policy_is_refused_when_the_dag_is_parsed(value: object) -> None:
    with pytest.raises(AIHubMixValidationError, match=r"on_possibly_billed.*'fail', 'resend_once'"):
        AIHubMixOpenAIImageOperator(
            task_id="poster", prompt="x", output_uri="file:///tmp/x", on_possibly_billed=value
        )
