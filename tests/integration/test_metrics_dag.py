"""Metrics (issue 27) through Airflow's own StatsD backend to a UDP receiver the test owns.

The example marketing DAG on the sandbox: the documented names arrive with the counts the run's
manifests and the sandbox's request log give, the actual-USD counter adds up to the run's cost
summary, and no datagram carries the API key, a prompt or a URL.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_provider_aihubmix.metrics import METRICS, MICRO
from airflow_provider_aihubmix.pricing.summary import run_cost_summary
from airflow_provider_aihubmix.sandbox import SandboxServer
from airflow_provider_aihubmix.storage import open_store
from tests.fixtures.airflow_db import DagTest, task_states, xcom_values
from tests.fixtures.statsd import StatsDReceiver
from tests.integration.operator_checks import api_posts
from tests.integration.test_examples import BRIEFS, load_example

pytestmark = pytest.mark.timeout(240)


def test_marketing_example_emits_the_documented_metrics(
    dag_test: DagTest,
    sandbox: SandboxServer,
    sandbox_conn: str,
    statsd_receiver: StatsDReceiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    output_uri = (tmp_path / "images").as_uri()
    dag = load_example("aihubmix_marketing_assets", "aihubmix_marketing_assets", output_uri, monkeypatch)

    run = dag_test(dag)

    assert set(task_states(run).values()) == {"success"}, task_states(run)
    received = statsd_receiver.drain()
    ours = [d for d in received if d.name.startswith("airflow.aihubmix.")]
    documented = {f"airflow.{m.name}" for m in METRICS}
    assert ours and {d.name for d in ours} <= documented, {d.name for d in ours} - documented

    posts = api_posts(sandbox)
    families = ("gpt_image", "imagen", "seedream")
    requests = statsd_receiver.by_tag("airflow.aihubmix.requests", "outcome")
    assert requests == {"success": len(posts)} == {"success": len(families) * len(BRIEFS)}
    durations = [d for d in ours if d.name == "airflow.aihubmix.request.duration"]
    assert len(durations) == len(posts) and all(d.kind == "ms" and d.value >= 0 for d in durations)
    for d in ours:
        if d.name != "airflow.aihubmix.retries" and not d.name.startswith("airflow.aihubmix.triggers"):
            assert d.tags["dag_id"] == dag.dag_id and d.tags["model"] and d.tags["family"], d

    xcom = xcom_values(dag.dag_id, run.run_id)
    records = [r for task_id in families for rs in xcom[task_id].values() for r in rs]
    assert statsd_receiver.totals("airflow.aihubmix.images.stored") == len(records)
    assert statsd_receiver.totals("airflow.aihubmix.images.bytes") == sum(r["bytes"] for r in records)
    # Per model, too: the counters are tagged with the catalog path the manifests record.
    by_model = statsd_receiver.by_tag("airflow.aihubmix.images.stored", "model")
    assert sum(by_model.values()) == len(records) and len(by_model) == len(families)

    # Cost adds up: the actual-USD counter is the run's cost summary, to the micro-dollar.
    summary = run_cost_summary(open_store(output_uri), dag.dag_id, run.run_id)
    actual = statsd_receiver.totals("airflow.aihubmix.spend.actual_microusd")
    assert summary["total"]["actual"] is not None
    assert abs(actual / MICRO - summary["total"]["actual"]) <= len(posts) / MICRO
    assert statsd_receiver.totals("airflow.aihubmix.spend.unknown") == summary["total"]["tasks_unknown_cost"]
    estimated = statsd_receiver.totals("airflow.aihubmix.spend.estimated_microusd")
    assert abs(estimated / MICRO - summary["total"]["estimated"]) <= len(posts) / MICRO

    # Never a secret, a prompt or a URL: not in a name, a tag or a value.
    wire = b"\n".join(statsd_receiver.raw).decode()
    assert sandbox_conn not in wire
    prompts = [body["json"].get("prompt") or body["json"].get("input", {}).get("prompt") for body in posts]
    for prompt in filter(None, prompts):
        assert prompt not in wire and json.dumps(prompt)[1:-1] not in wire
    for needle in ("http:", "https:", "file:", "s3:", "//"):
        assert needle not in wire, needle
