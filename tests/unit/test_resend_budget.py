"""A second send (on_possibly_billed='resend_once') completed by the triggerer settles its own
reservation: the worker's completion finds it by the resend key, and the first send's stays held."""

from __future__ import annotations

from pathlib import Path

from airflow_provider_aihubmix.engine.budget import DagBudget
from airflow_provider_aihubmix.engine.manifest import Manifest, ManifestStatus, TaskIdentity
from airflow_provider_aihubmix.engine.resend import reservation_key
from airflow_provider_aihubmix.engine.spending import PurchaseBudget
from airflow_provider_aihubmix.pricing.reservations import task_label
from airflow_provider_aihubmix.storage import LocalObjectStore

FP = "f" * 64
IDENTITY = TaskIdentity(dag_id="d", run_id="r", task_id="poster", map_index=-1, try_number=1)


def test_the_deferred_second_send_settles_its_own_reservation(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path.as_uri())
    budget = DagBudget(cap_usd=1.0, source="DAG param max_cost_usd")
    ledger = budget.ledger(store, dag_id="d", run_id="r")
    label = task_label("poster", -1)
    first = ledger.reserve(label, FP, 0.05, cap_usd=1.0, describe_cap="cap")
    assert ledger.mark_sending(first)  # sent; its answer lost: kept
    earlier = [{"manifest": "earlier/x/manifest.json", "fingerprint": FP, "resend": True}]
    second = ledger.reserve(label, reservation_key(FP, earlier), 0.05, cap_usd=1.0, describe_cap="cap")
    assert second.seq != first.seq and ledger.mark_sending(second)
    manifest = Manifest(
        status=ManifestStatus.COMPLETE,
        fingerprint=FP,
        model="openai/gpt-image-1-mini",
        family="openai",
        input={"prompt": "x"},
        dag_id="d",
        run_id="r",
        task_id="poster",
        map_index=-1,
        try_number=1,
        earlier=earlier,
        actual_cost_usd=0.04,
    )

    completion = PurchaseBudget(budget, store, IDENTITY)  # a new process: nothing held in memory
    completion.sent = True
    completion.settle(manifest)

    row = ledger.report()["tasks"][label]
    assert row["open"] == 1 and row["actual_usd"] == 0.04  # the first held, the second settled
