"""Lineage, Assets, cost and the budget guard through ``dag.test()`` with the sandbox and moto S3.

Each scenario runs ``dag.test()`` in a fresh Python process (``python -m
tests.integration.test_lineage_dag <scenario> <result.json>``) with its own ``AIRFLOW_HOME``
and the OpenLineage provider enabled with a ``file`` transport. A fresh process is needed
because Airflow decides once per process whether OpenLineage is enabled (its plugin and the
hook lineage collector are created on first use); in the test process that already happened
without a transport. Inside that process ``dag.test()`` runs the real task runner, which calls
the OpenLineage listener exactly as a worker does, so the events asserted here are the ones
a deployment emits. The sandbox and the moto S3 server run in the pytest process and are
reached over loopback.

One caveat of ``dag.test()``: every task runs in the same process, so Airflow's process-wide
hook lineage collector accumulates across tasks (a worker runs each task in a new process).
Assertions on operator events use COMPLETE/FAIL events, whose datasets come from the
operators' own lineage methods; hook lineage is asserted on the collector itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_aihubmix.facets import FACET_NAME
from airflow_provider_aihubmix.lineage import dataset_id

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_DAGS = ROOT / "example_dags"
GUARD_DAGS = Path(__file__).resolve().parent / "dags"
BRIEFS = json.loads((EXAMPLE_DAGS / "briefs" / "campaign_briefs.json").read_text())["briefs"]
FAMILY_TASKS = ("gpt_image", "imagen", "seedream")
SCENARIO_TIMEOUT_S = 420


# -- the child process -------------------------------------------------------------------------


def _return_values(dag_id: str, run_id: str) -> dict[str, dict[int, Any]]:
    """Every task's ``return_value`` XCom of one run: {task_id: {map_index: value}}."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    values: dict[str, dict[int, Any]] = defaultdict(dict)
    with create_session() as session:
        rows = session.scalars(
            select(XComModel).where(
                XComModel.dag_id == dag_id, XComModel.run_id == run_id, XComModel.key == "return_value"
            )
        )
        for row in rows:
            values[row.task_id][row.map_index] = XComModel.deserialize_value(row)
    return values


def _task_states(dag_run: Any) -> dict[str, str]:
    return {f"{ti.task_id}[{ti.map_index}]": str(ti.state) for ti in dag_run.get_task_instances()}


def _hook_lineage() -> dict[str, list[str]]:
    from airflow_provider_aihubmix.version_compat import get_hook_lineage_collector

    collected = get_hook_lineage_collector().collected_assets
    return {
        "inputs": sorted({info.asset.uri for info in collected.inputs}),
        "outputs": sorted({info.asset.uri for info in collected.outputs}),
    }


def _run_marketing() -> dict[str, Any]:
    """Producer with dag.test(), its Asset event, then the Asset-scheduled review DAG."""
    from airflow.models.asset import AssetDagRunQueue, AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from tests.compat import DagBag

    bag = DagBag(str(EXAMPLE_DAGS))
    assert not bag.import_errors, bag.import_errors
    producer = bag.get_dag("aihubmix_marketing_assets")
    consumer = bag.get_dag("aihubmix_marketing_review")
    produced = producer.test()
    result: dict[str, Any] = {
        "producer_state": str(produced.state),
        "producer_tasks": _task_states(produced),
        "xcom": _return_values(producer.dag_id, produced.run_id),
        "hook_lineage": _hook_lineage(),
    }
    with create_session() as session:
        events = session.execute(
            select(AssetEvent.extra, AssetEvent.source_dag_id, AssetEvent.source_run_id, AssetModel.uri).join(
                AssetModel, AssetModel.id == AssetEvent.asset_id
            )
        ).all()
        result["asset_events"] = [
            {"extra": extra, "source_dag_id": dag_id, "source_run_id": run_id, "uri": uri}
            for extra, dag_id, run_id, uri in events
        ]
        result["queued_for"] = sorted(session.scalars(select(AssetDagRunQueue.target_dag_id)))
    reviewed = consumer.test()
    result["consumer_state"] = str(reviewed.state)
    result["review"] = _return_values(consumer.dag_id, reviewed.run_id).get("review_manifests", {}).get(-1)
    return result


def _run_guards() -> dict[str, Any]:
    from tests.compat import DagBag

    bag = DagBag(str(GUARD_DAGS))
    assert not bag.import_errors, bag.import_errors
    dag = bag.get_dag("aihubmix_lineage_guards")
    dag_run = dag.test()
    return {
        "state": str(dag_run.state),
        "tasks": _task_states(dag_run),
        "xcom": _return_values(dag.dag_id, dag_run.run_id),
    }


def _child_main(scenario: str, result_path: str) -> None:
    from airflow.utils import db

    db.initdb()
    result = {"marketing": _run_marketing, "guards": _run_guards}[scenario]()
    Path(result_path).write_text(json.dumps(result, default=str))


# -- the pytest side ---------------------------------------------------------------------------


def run_scenario(scenario: str, tmp_path: Path, *, dags_folder: Path, output_uri: str) -> dict[str, Any]:
    """Run one scenario in a child process; return its result and the OpenLineage events."""
    home = tmp_path / "airflow-home"
    home.mkdir()
    events_file = tmp_path / "openlineage.jsonl"
    result_file = tmp_path / "result.json"
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # Paused DAGs are not queued by Asset events; a deployment unpauses the review DAG.
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        # A deployment, not Airflow's own unit-test mode.
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(events_file), "append": True}
        ),
        "AIHUBMIX_OUTPUT_URI": output_uri,
        # The example DAGs import their shared settings module from the dags folder.
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(dags_folder), str(ROOT), os.environ.get("PYTHONPATH")])
        ),
    }
    env.pop("OPENLINEAGE_DISABLED", None)
    env.pop("AIRFLOW__OPENLINEAGE__DISABLED", None)
    proc = subprocess.run(
        [sys.executable, "-m", "tests.integration.test_lineage_dag", scenario, str(result_file)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=SCENARIO_TIMEOUT_S,
    )
    (tmp_path / "child.log").write_text(proc.stdout + proc.stderr)
    assert proc.returncode == 0, (
        f"scenario {scenario} failed; log in {tmp_path / 'child.log'}:\n"
        + (proc.stdout + proc.stderr)[-6000:]
    )
    result = json.loads(result_file.read_text())
    result["events"] = [json.loads(line) for line in events_file.read_text().splitlines() if line.strip()]
    return result


def task_events(events: list[dict], dag_id: str, task_id: str, event_type: str) -> dict[int, dict]:
    """The events of one task by map index (from the provider's mapped-task facet)."""
    found: dict[int, dict] = {}
    for event in events:
        if event.get("eventType") != event_type or event.get("job", {}).get("name") != f"{dag_id}.{task_id}":
            continue
        facets = event["run"]["facets"]
        map_index = facets.get("airflow_mappedTask", {}).get("mapIndex", -1)
        if map_index == -1:
            map_index = facets.get("airflow", {}).get("taskInstance", {}).get("map_index", -1)
        assert map_index not in found, f"two {event_type} events for {task_id}[{map_index}]"
        found[map_index] = event
    return found


def names(datasets: list[dict]) -> set[tuple[str, str]]:
    return {(d["namespace"], d["name"]) for d in datasets}


def expected(*uris: str) -> set[tuple[str, str]]:
    out = set()
    for uri in uris:
        found = dataset_id(uri)
        assert found is not None
        out.add((found.namespace, found.name))
    return out


@pytest.fixture
def facet_validator():
    from tests.unit.test_lineage import facet_validator as build

    return build()


@pytest.mark.timeout(SCENARIO_TIMEOUT_S + 60)
def test_marketing_example_emits_lineage_of_the_exact_s3_objects_and_feeds_the_review_dag(
    sandbox_conn, sandbox, s3_bucket, tmp_path, facet_validator
):
    output_uri = f"s3://{s3_bucket.name}/campaigns"
    result = run_scenario("marketing", tmp_path, dags_folder=EXAMPLE_DAGS, output_uri=output_uri)
    assert result["producer_state"] == "success", result["producer_tasks"]
    events, xcom = result["events"], result["xcom"]
    dag_id = "aihubmix_marketing_assets"

    all_images: list[str] = []
    manifests: list[str] = []
    for task_id in FAMILY_TASKS:
        completes = task_events(events, dag_id, task_id, "COMPLETE")
        starts = task_events(events, dag_id, task_id, "START")
        assert sorted(completes) == sorted(int(i) for i in xcom[task_id]) == list(range(len(BRIEFS)))
        for map_index, event in completes.items():
            records = xcom[task_id][str(map_index)]
            uris = [r["uri"] for r in records]
            assert all(uri.startswith(f"s3://{s3_bucket.name}/campaigns/") for uri in uris)
            manifest_uri = uris[0].rsplit("/", 1)[0] + "/manifest.json"
            # Outputs are exactly the stored objects in XCom plus the manifest, and they exist.
            assert names(event["outputs"]) == expected(*uris, manifest_uri)
            keys = set(s3_bucket.list_keys())
            assert {name for _, name in names(event["outputs"])} <= keys
            assert event["inputs"] == []

            facet = event["run"]["facets"][FACET_NAME]
            facet_validator.validate(facet)
            prompt = BRIEFS[map_index]["prompt"]
            assert facet["promptSha256"] == hashlib.sha256(prompt.encode()).hexdigest()
            # The example opts in (lineage_include_prompt=True: campaign briefs are not secret); the
            # default keeps only the sha256 (tests/unit/test_lineage.py).
            assert facet["prompt"] == prompt
            assert facet["model"] == records[0]["model"]
            assert facet["imagesCount"] == len(records) and facet["moderation"] == "passed"
            assert facet["manifestUri"] == manifest_uri
            assert [c["uri"] for c in facet["cost"]["images"]] == uris

            manifest = json.loads(
                s3_bucket.client.get_object(Bucket=s3_bucket.name, Key=manifest_uri.split("/", 3)[3])[
                    "Body"
                ].read()
            )
            assert [c["uri"] for c in manifest["cost"]["images"]] == uris
            assert facet.get("usage") == manifest["usage"]
            assert facet["cost"]["estimated"] == manifest["cost"]["estimated"]
            assert manifest["cost"]["estimated"] == manifest["estimated_cost_usd"]
            assert facet["cost"]["actual"] == manifest["cost"]["actual"] == manifest["actual_cost_usd"]
            assert facet["cost"]["priceSource"] == manifest["cost"]["price"]["source"]
            if task_id == "imagen":  # 0.02 USD per image, published
                assert facet["cost"]["actual"] == pytest.approx(0.02 * len(records))
                assert manifest["cost"]["images"][0]["actual"] == pytest.approx(0.02)
            if task_id == "gpt_image":  # token-billed: the actual comes from the usage tokens
                assert facet["usage"]["total_tokens"] > 0
                assert facet["cost"]["basis"]["actual"] == "usage_tokens" and facet["cost"]["actual"] > 0
            # START carries the request facet already (no outputs from the operator yet).
            start_facet = starts[map_index]["run"]["facets"][FACET_NAME]
            assert start_facet["promptSha256"] == facet["promptSha256"] and start_facet["imagesCount"] == 0
            all_images += uris
            manifests.append(manifest_uri)

    # Hook lineage: every S3 write of the run reached Airflow's collector, as did the
    # contact sheet's reads of the images (no operator lineage methods involved there).
    hook = result["hook_lineage"]
    assert set(all_images) <= set(hook["outputs"])
    assert set(all_images) <= set(hook["inputs"])
    contact_sheet = xcom["contact_sheet"]["-1"]["contact_sheet"]
    assert contact_sheet in hook["outputs"]

    # The Asset: one event from this run carrying the manifests, and the review DAG queued on it.
    asset_uri = f"{output_uri}/dag_id=aihubmix_marketing_assets"
    asset_events = [e for e in result["asset_events"] if e["uri"] == asset_uri]
    assert len(asset_events) == 1 and asset_events[0]["source_dag_id"] == dag_id
    assert sorted(asset_events[0]["extra"]["manifests"]) == sorted(manifests)
    assert "aihubmix_marketing_review" in result["queued_for"]

    # The review DAG read those manifests back from S3.
    assert result["consumer_state"] == "success"
    review = result["review"]
    assert review["images"] == len(all_images)
    assert review["models"] == sorted({r["model"] for t in FAMILY_TASKS for v in xcom[t].values() for r in v})
    # The run's cost summary, written by the last task beside the images, read back by the review.
    summary_uri = xcom["contact_sheet"]["-1"]["cost_summary"]
    summary = json.loads(
        s3_bucket.client.get_object(Bucket=s3_bucket.name, Key=summary_uri.split("/", 3)[3])["Body"].read()
    )
    assert summary["total"]["images"] == len(all_images)
    assert summary["total"]["tasks"] == len(manifests)
    assert review["cost_usd"] == pytest.approx(summary["total"]["actual"]) and review["cost_usd"] > 0


@pytest.mark.timeout(SCENARIO_TIMEOUT_S + 60)
def test_budget_guard_moderation_and_sensor_lineage(
    sandbox_conn, sandbox, s3_bucket, tmp_path, facet_validator
):
    output_uri = f"s3://{s3_bucket.name}/guards"
    result = run_scenario("guards", tmp_path, dags_folder=GUARD_DAGS, output_uri=output_uri)
    events, tasks = result["events"], result["tasks"]
    dag_id = "aihubmix_lineage_guards"

    # The budget guard: every mapped task refused, and not one request for those models was sent,
    # while the other tasks of the same run did reach the sandbox.
    for task_id in ("over_budget", "unpriced"):
        assert all(tasks[f"{task_id}[{i}]"] == "failed" for i in range(3)), tasks
    assert sandbox.client.requests(host="api", path="imagen-4.0-ultra|qwen-image") == []
    assert sandbox.client.requests(host="api", path="flux-2-pro")
    over_budget = task_events(events, dag_id, "over_budget", "FAIL")
    assert sorted(over_budget) == [0, 1, 2]
    for event in over_budget.values():
        facet = event["run"]["facets"][FACET_NAME]
        facet_validator.validate(facet)
        assert facet["error"]["type"] == "AIHubMixBudgetExceededError"
        assert "max_cost_usd" in facet["error"]["message"]
        assert facet["cost"]["estimated"] == pytest.approx(0.24)
        assert "moderation" not in facet and event["outputs"] == []
    for event in task_events(events, dag_id, "unpriced", "FAIL").values():
        assert "allow_unknown_cost" in event["run"]["facets"][FACET_NAME]["error"]["message"]

    # Moderation: a refused request and a moderated async task, each named in the facet.
    for task_id, outcome in (
        ("request_moderated", "request_moderated"),
        ("content_moderated", "content_moderated"),
    ):
        assert tasks[f"{task_id}[-1]"] == "failed"
        (event,) = task_events(events, dag_id, task_id, "FAIL").values()
        facet = event["run"]["facets"][FACET_NAME]
        facet_validator.validate(facet)
        assert facet["moderation"] == outcome, facet
        assert facet["imagesCount"] == 0
        # The manifest recording the refusal is the one output.
        assert [o["name"].rsplit("/", 1)[-1] for o in event["outputs"]] == ["manifest.json"]
    (flux_fail,) = task_events(events, dag_id, "content_moderated", "FAIL").values()
    assert flux_fail["run"]["facets"][FACET_NAME]["remoteTaskIds"]

    # Submit (no wait) then collect with the sensor: the remote task id links the two events.
    (submitted,) = task_events(events, dag_id, "submit", "COMPLETE").values()
    (collected,) = task_events(events, dag_id, "collect", "COMPLETE").values()
    submit_facet = submitted["run"]["facets"][FACET_NAME]
    collect_facet = collected["run"]["facets"][FACET_NAME]
    facet_validator.validate(submit_facet)
    facet_validator.validate(collect_facet)
    remote_id = result["xcom"]["submit"]["-1"][0]["remote_task_id"]
    assert submit_facet["remoteTaskIds"] == [remote_id] == collect_facet["remoteTaskIds"]
    assert submit_facet["prompt"] == "a lighthouse at dawn"  # lineage_include_prompt=True
    assert "moderation" not in submit_facet  # not judged yet when submitted
    records = result["xcom"]["collect"]["-1"]
    manifest_uri = records[0]["uri"].rsplit("/", 1)[0] + "/manifest.json"
    assert names(collected["outputs"]) == expected(*(r["uri"] for r in records), manifest_uri)
    assert collect_facet["imagesCount"] == len(records) and collect_facet["moderation"] == "passed"
    assert collect_facet["model"] == "flux-2-pro" and collect_facet["family"] == "flux"


if __name__ == "__main__":
    _child_main(sys.argv[1], sys.argv[2])
