"""The DAG budget under a parallel fan-out on a real deployment (LocalExecutor, 10 slots, S3).

Issue 22's two runs: ten mapped gpt-image-1-mini tasks start together under DAG param
``max_cost_usd`` = 3.5 x the provider's own estimate for one request, answered by the sandbox
after 3 s so every task checks the budget while the others' requests are in flight. Each task
reserves its estimate in the run's ledger (an atomic create on the moto S3 server) before any
request: exactly three are bought and seven refused naming the cap -- blocking, and deferrable
(the request sent by the triggerer, its reservation counted while it waits there).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from airflow_provider_aihubmix.catalog.models import resolve_model
from airflow_provider_aihubmix.pricing.cost import estimate_request
from airflow_provider_aihubmix.sandbox import SandboxServer
from airflow_provider_aihubmix.schemas import build_input
from tests.fixtures.airflow import AirflowClusterFactory
from tests.fixtures.s3 import S3Bucket, aws_connection_json

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

PATH = "/v1/models/openai/gpt-image-1-mini/predictions"

DAG_FILE = textwrap.dedent(
    '''
    """Ten mapped gpt-image-1-mini tasks under a DAG budget (written by the end-to-end test)."""
    import os

    import pendulum
    from airflow.sdk import DAG, Param

    from airflow_provider_aihubmix.operators.images import AIHubMixOpenAIImageOperator

    for dag_id, deferrable in (("budget_blocking", False), ("budget_deferrable", True)):
        with DAG(
            dag_id,
            schedule=None,
            start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
            catchup=False,
            max_active_tasks=10,
            params={"max_cost_usd": Param(float(os.environ["BUDGET_CAP"]), type="number")},
            default_args={"retries": 0},
        ):
            AIHubMixOpenAIImageOperator.partial(
                task_id="paint",
                model="gpt-image-1-mini",
                quality="low",
                size="1024x1024",
                deferrable=deferrable,
                output_uri=os.environ["AIHUBMIX_OUTPUT_URI"],
            ).expand(prompt=[f"a paper boat, number {i}" for i in range(10)])
    '''
)


def one_estimate() -> float:
    spec = resolve_model("gpt-image-1-mini")
    found = estimate_request(
        spec, build_input(spec, {"prompt": "x", "quality": "low", "size": "1024x1024"}, {}), None
    )
    assert found.total_usd is not None
    return found.total_usd


def test_ten_mapped_tasks_buy_exactly_three_blocking_and_deferrable(
    airflow_cluster: AirflowClusterFactory,
    sandbox_conn: str,
    sandbox: SandboxServer,
    s3_bucket: S3Bucket,
    tmp_path: Path,
) -> None:
    cap = 3.5 * one_estimate()
    sandbox.client.inject(kind="slow", delay_s=3, path=f"^{PATH}$")
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "budget_fanout.py").write_text(DAG_FILE)
    cluster = airflow_cluster(
        dags,
        extra_env={
            "AIHUBMIX_OUTPUT_URI": s3_bucket.uri,
            "AIRFLOW_CONN_AWS_DEFAULT": aws_connection_json(s3_bucket.endpoint_url),
            "AIRFLOW__CORE__PARALLELISM": "10",
            "BUDGET_CAP": repr(cap),
        },
    )
    for dag_id in ("budget_blocking", "budget_deferrable"):
        before = sandbox.client.billed_count(f"^{PATH}$")
        run_id = cluster.trigger_dag(dag_id, conf={})
        observer = cluster.observe(dag_id, run_id, interval=1.0)
        assert observer.wait_for_finish(timeout=240) == "failed", observer.task_states
        states = cluster.task_states(dag_id, run_id)
        bought = [k for k, v in states.items() if v == "success"]
        refused = [k for k, v in states.items() if v == "failed"]
        assert len(bought) == 3 and len(refused) == 7, (dag_id, states)
        assert sandbox.client.billed_count(f"^{PATH}$") - before == 3, dag_id
        logs = cluster.task_log(dag_id, run_id, "paint")  # every mapped instance's log
        assert logs.count(f"caps the run at {cap:.4f} USD") >= 7, dag_id
        assert "AIHubMixBudgetExceededError" in logs
    assert not [k for k in s3_bucket.list_keys() if k.endswith("request.json")]
