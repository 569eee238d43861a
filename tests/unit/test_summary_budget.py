"""The run cost summary shows the DAG budget's reservations, actual spend and refusals per task
(file:// store; the same through a real run on the moto S3 server: test_budget_release_dag.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_provider_aihubmix.exceptions import AIHubMixBudgetExceededError
from airflow_provider_aihubmix.pricing.reservations import RunLedger, task_label
from airflow_provider_aihubmix.pricing.summary import run_cost_summary, total_line, write_run_cost_summary
from airflow_provider_aihubmix.storage import LocalObjectStore, join_key, run_prefix

DAG, RUN = "fan_out", "manual__1"


def manifest(store: LocalObjectStore, index: int, status: str, actual: float | None) -> None:
    doc: dict[str, Any] = {
        "task_id": "paint",
        "map_index": index,
        "model": "gpt-image-1-mini",
        "status": status,
        "records": [{}] if status == "complete" else [],
        "cost": {"estimated": 0.01, "actual": actual},
    }
    store.write_json(join_key(run_prefix(DAG, RUN), f"task_id=paint/map_index={index}/manifest.json"), doc)


def test_summary_shows_held_released_replaced_and_refused_per_task(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path.as_uri())
    led = RunLedger(store, DAG, RUN)

    def reserve(i: int) -> Any:
        return led.reserve(task_label("paint", i), "fp", 0.01, cap_usd=0.03, describe_cap="cap")

    bought, failed, in_flight = reserve(0), reserve(1), reserve(2)
    led.settle(bought, 0.004)
    led.release(failed)
    reserve(3)  # fits after the release: 0.004 + 0.01 + 0.01
    with pytest.raises(AIHubMixBudgetExceededError):
        reserve(4)  # refused before writing a manifest
    manifest(store, 0, "complete", 0.004)
    manifest(store, 1, "failed", None)
    manifest(store, 2, "submitted", None)
    assert in_flight.seq == 2

    summary = run_cost_summary(store, DAG, RUN)
    rows = {row["map_index"]: row for row in summary["tasks"]}
    assert rows[0]["reservation"] == {
        "seq": 0,
        "usd": 0.01,
        "state": "replaced_by_actual",
        "actual_usd": 0.004,
        "count": 1,
    }
    assert rows[0]["actual"] == 0.004 and rows[0]["budget_refused"] is False
    assert rows[1]["reservation"]["state"] == "released" and rows[1]["actual"] == 0.0
    assert rows[2]["reservation"]["state"] == "held" and rows[2]["reservation"]["actual_usd"] is None
    budget = summary["budget"]
    assert budget["ledger"] == store.base_uri
    assert (budget["committed_usd"], budget["reserved_usd"], budget["held_usd"]) == (0.024, 0.04, 0.02)
    assert (budget["released"], budget["replaced_by_actual"], budget["refusals"]) == (1, 1, 1)
    assert budget["tasks"]["'paint[4]'"]["refused"] is True  # no manifest: named by the ledger
    assert budget["tasks"]["'paint[4]'"]["reservations"] == []
    # The existing keys are unchanged beside the new ones.
    assert set(summary) == {
        "dag_id",
        "run_id",
        "currency",
        "generated_at",
        "total",
        "models",
        "tasks",
        "budget",
    }
    assert summary["total"]["tasks"] == 3 and summary["total"]["actual"] == 0.004
    line = total_line(summary)
    assert "DAG budget: 0.0240 USD committed, reservations 2 held (0.0200 USD)" in line
    assert "1 replaced by actual, 1 released; 1 task(s) refused" in line


def test_a_run_without_a_dag_budget_has_no_budget_section(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path.as_uri())
    manifest(store, 0, "complete", 0.004)
    uri, summary = write_run_cost_summary(store, DAG, RUN)
    assert summary["budget"] is None
    assert summary["tasks"][0]["reservation"] is None and summary["tasks"][0]["budget_refused"] is False
    assert "DAG budget" not in total_line(summary)
    assert store.read_json(uri[len(store.base_uri) + 1 :])["budget"] is None


def test_a_ledger_named_by_the_dag_is_read_there(tmp_path: Path) -> None:
    shared = LocalObjectStore((tmp_path / "ledger").as_uri())
    RunLedger(shared, DAG, RUN).reserve(task_label("paint", 0), "fp", 0.01, cap_usd=1, describe_cap="cap")
    images = LocalObjectStore((tmp_path / "images").as_uri())
    manifest(images, 0, "submitted", None)
    assert run_cost_summary(images, DAG, RUN)["budget"] is None
    summary = run_cost_summary(images, DAG, RUN, ledger_uri=shared.base_uri)
    assert summary["tasks"][0]["reservation"]["state"] == "held"
