"""The DAG budget's reservations follow the money, through a real run (dag.test, sandbox, moto S3).

Under a cap that fits three gpt-image-1-mini images, three mapped tasks reserve; the sandbox
refuses one request (400 moderation_blocked: nothing billed), whose reservation is released, so a
fourth task started after that failure reserves and buys: three images bought in all. Without the
release the fourth would be refused (three reservations + one estimate > the cap).
"""

from __future__ import annotations

import pendulum
import pytest
from airflow.sdk import DAG, Param

from airflow_provider_aihubmix.catalog.models import resolve_model
from airflow_provider_aihubmix.operators.images import AIHubMixOpenAIImageOperator
from airflow_provider_aihubmix.pricing.cost import estimate_request
from airflow_provider_aihubmix.pricing.reservations import RunLedger, ledger_store
from airflow_provider_aihubmix.pricing.summary import total_line, write_run_cost_summary
from airflow_provider_aihubmix.sandbox import SandboxServer
from airflow_provider_aihubmix.schemas import build_input
from airflow_provider_aihubmix.storage import open_store
from tests.fixtures.airflow_db import DagTest, task_states
from tests.fixtures.s3 import S3Bucket
from tests.integration.operator_checks import api_posts

pytestmark = pytest.mark.timeout(240)

PARAMS = {"quality": "low", "size": "1024x1024"}
PATH = "/v1/models/openai/gpt-image-1-mini/predictions"


def one_estimate() -> float:
    spec = resolve_model("gpt-image-1-mini")
    found = estimate_request(spec, build_input(spec, {"prompt": "x", **PARAMS}, {}), None)
    assert found.total_usd is not None
    return found.total_usd


def test_a_non_billing_error_releases_its_reservation_for_a_later_task(
    dag_test: DagTest, sandbox: SandboxServer, sandbox_conn: str, s3_bucket: S3Bucket
) -> None:
    estimate = one_estimate()
    sandbox.client.inject(kind="moderation", count=1, path=f"^{PATH}$")
    with DAG(
        "aihubmix_budget_release",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        params={"max_cost_usd": Param(3.5 * estimate, type="number")},
        default_args={"retries": 0},
    ) as dag:
        first = AIHubMixOpenAIImageOperator.partial(
            task_id="first", model="gpt-image-1-mini", output_uri=s3_bucket.uri, **PARAMS
        ).expand(prompt=[f"a lantern, take {i}" for i in range(3)])
        fourth = AIHubMixOpenAIImageOperator(
            task_id="fourth",
            model="gpt-image-1-mini",
            prompt="a lantern, the fourth",
            output_uri=f"s3://{s3_bucket.name}/elsewhere",  # another folder: the same run ledger
            trigger_rule="all_done",
            **PARAMS,
        )
        first >> fourth

    run = dag_test(dag)

    states = task_states(run)
    assert sorted(states.values()) == ["failed", "success", "success", "success"], states
    assert states["fourth[-1]"] == "success"
    assert len(api_posts(sandbox)) == 4  # three billed, one refused before billing
    assert sandbox.client.billed_count(f"^{PATH}$") == 3
    led = RunLedger(ledger_store(open_store(s3_bucket.uri)), dag.dag_id, run.run_id)
    entries = led.entries()
    reserves = [e for e in entries if e.kind == "reserve"]
    releases = [
        e for e in entries if e.kind == "settle" and e.delta_micro_usd == -reserves[0].delta_micro_usd
    ]
    assert len(reserves) == 4 and len(releases) == 1
    assert max(e.total_micro_usd for e in entries) <= round(3.5 * estimate * 1_000_000)
    # Every reservation settled: what stays committed is the actual cost the manifests record.
    root = open_store(f"s3://{s3_bucket.name}")
    actual = [
        manifest["actual_cost_usd"]
        for key in s3_bucket.list_keys()
        if key.endswith("manifest.json") and (manifest := root.read_json(key))["status"] == "complete"
    ]
    assert len(actual) == 3
    assert entries[-1].total_micro_usd == sum(round(usd * 1_000_000) for usd in actual)

    # The run's cost summary shows each task's reservation, its actual spend and no refusal; its
    # budget section covers the whole run's ledger, also "fourth", which stores elsewhere.
    _, summary = write_run_cost_summary(open_store(s3_bucket.uri), dag.dag_id, run.run_id)
    rows = {(row["task_id"], row["map_index"]): row for row in summary["tasks"]}
    assert sorted(rows) == [("first", 0), ("first", 1), ("first", 2)]
    states = sorted(row["reservation"]["state"] for row in rows.values())
    assert states == ["released", "replaced_by_actual", "replaced_by_actual"]
    for row in rows.values():
        held = row["reservation"]
        assert held["usd"] == round(estimate, 6) and held["count"] == 1 and row["budget_refused"] is False
        if held["state"] == "released":
            assert row["status"] == "failed" and held["actual_usd"] == 0.0
        else:
            assert held["actual_usd"] == row["actual"]
    budget = summary["budget"]
    assert budget["ledger"] == f"s3://{s3_bucket.name}" and budget["refusals"] == 0
    assert (budget["released"], budget["replaced_by_actual"], budget["held_usd"]) == (1, 3, 0.0)
    assert budget["committed_usd"] == round(sum(actual), 6)
    assert budget["tasks"]["'fourth'"]["reservations"][0]["state"] == "replaced_by_actual"
    assert "3 replaced by actual, 1 released; 0 task(s) refused" in total_line(summary)
