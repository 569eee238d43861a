"""Metrics (issue 27) through Airflow's own backends to receivers the test owns.

The example marketing DAG on the sandbox, once with StatsD (a UDP socket) and once with
OpenTelemetry (an OTLP/HTTP endpoint): the documented names arrive with the counts the run's
manifests and the sandbox's request log give, the actual-USD counter adds up to the run's cost
summary, and nothing received carries the API key, a prompt or a URL.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_aihubmix.metrics import METRICS, MICRO
from airflow_provider_aihubmix.pricing.summary import run_cost_summary
from airflow_provider_aihubmix.sandbox import SandboxServer
from airflow_provider_aihubmix.storage import open_store
from tests.fixtures.airflow_db import DagTest, task_states, xcom_values
from tests.integration.operator_checks import api_posts
from tests.integration.test_examples import BRIEFS, load_example

pytestmark = pytest.mark.timeout(240)

FAMILIES = ("gpt_image", "imagen", "seedream")


@pytest.mark.parametrize("backend", ["statsd_receiver", "otlp_receiver"])
def test_marketing_example_emits_the_documented_metrics(
    backend: str,
    request: pytest.FixtureRequest,
    dag_test: DagTest,
    sandbox: SandboxServer,
    sandbox_conn: str,
    example_output_uri: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    receiver: Any = request.getfixturevalue(backend)
    output_uri = example_output_uri
    dag = load_example("aihubmix_marketing_assets", "aihubmix_marketing_assets", output_uri, monkeypatch)

    run = dag_test(dag)
    if hasattr(receiver, "flush"):
        receiver.flush()

    assert set(task_states(run).values()) == {"success"}, task_states(run)
    ours = {n for n in receiver.names() if n.startswith("airflow.aihubmix.")}
    documented = {f"airflow.{m.name}" for m in METRICS}
    assert ours and ours <= documented, ours - documented

    posts = api_posts(sandbox)
    assert len(posts) == len(FAMILIES) * len(BRIEFS)
    assert receiver.by_tag("airflow.aihubmix.requests", "outcome") == {"success": len(posts)}
    timer_gauges = getattr(receiver, "gauges", lambda _name: {})("airflow.aihubmix.request.duration")
    if timer_gauges:
        # Airflow 3.1 and 3.2's OpenTelemetry logger keeps a timer as a gauge (its latest value per tag set),
        # so only "one positive duration per model" can be read, not a count.
        assert {dict(attrs)["model"] for attrs in timer_gauges} == set(
            receiver.by_tag("airflow.aihubmix.requests", "model")
        )
        assert all(value > 0 for value in timer_gauges.values()), timer_gauges
    else:
        assert receiver.observations("airflow.aihubmix.request.duration") == len(posts)
    models = receiver.by_tag("airflow.aihubmix.requests", "model")
    assert len(models) == len(FAMILIES) and set(receiver.by_tag("airflow.aihubmix.requests", "dag_id")) == {
        dag.dag_id
    }

    xcom = xcom_values(dag.dag_id, run.run_id)
    records = [r for task_id in FAMILIES for rs in xcom[task_id].values() for r in rs]
    assert receiver.totals("airflow.aihubmix.images.stored") == len(records)
    assert receiver.totals("airflow.aihubmix.images.bytes") == sum(r["bytes"] for r in records)

    # Cost adds up: the actual-USD counter is the run's cost summary, to the micro-dollar.
    summary = run_cost_summary(open_store(output_uri), dag.dag_id, run.run_id)
    assert summary["total"]["actual"] is not None
    actual = receiver.totals("airflow.aihubmix.spend.actual_microusd")
    assert abs(actual / MICRO - summary["total"]["actual"]) <= len(posts) / MICRO
    assert receiver.totals("airflow.aihubmix.spend.unknown") == summary["total"]["tasks_unknown_cost"]
    estimated = receiver.totals("airflow.aihubmix.spend.estimated_microusd")
    assert abs(estimated / MICRO - summary["total"]["estimated"]) <= len(posts) / MICRO

    # Never a secret, a prompt or a URL: not in a name, a tag or a value.
    wire = receiver.wire_text()
    assert sandbox_conn not in wire
    prompts = [body["json"].get("prompt") or body["json"].get("input", {}).get("prompt") for body in posts]
    for prompt in filter(None, prompts):
        assert prompt not in wire and json.dumps(prompt)[1:-1] not in wire
    for tags in receiver.attribute_sets():
        for value in tags.values():
            assert "://" not in value and "sk-" not in value, tags
