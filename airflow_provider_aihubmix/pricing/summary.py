"""A DAG run's cost summary, read from the manifests of its task instances in storage.

The last task of a run (or any task, on demand) calls :func:`write_run_cost_summary`; the JSON
lands beside the images as ``dag_id=<dag>/run_id=<run>/cost-summary.json``::

    {"dag_id", "run_id", "currency": "USD", "generated_at",
     "total": {"estimated", "actual", "images", "tasks", "tasks_unknown_cost"},
     "models": {"<model>": {"estimated", "actual", "images", "tasks", "price_source", "price_read"}},
     "tasks": [{"task_id", "map_index", "model", "status", "images", "estimated", "actual",
                "reused_or_pending", "manifest"}]}

``actual`` sums the actual figures known (a task whose model has no public price adds nothing and
is counted in ``tasks_unknown_cost``); ``estimated`` sums the estimates made before each request.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_aihubmix.pricing.table import CURRENCY
from airflow_provider_aihubmix.responses.balance import Balance

if TYPE_CHECKING:
    from airflow_provider_aihubmix.storage import ObjectStore

SUMMARY_NAME = "cost-summary.json"


def _add(total: float | None, value: Any) -> float | None:
    if value is None:
        return total
    return round((total or 0.0) + float(value), 6)


def task_entry(manifest: Mapping[str, Any], uri: str) -> dict[str, Any]:
    """One task instance's line of the summary, from its manifest."""
    cost = manifest.get("cost") if isinstance(manifest.get("cost"), Mapping) else None
    cost = cost or {}
    status = str(manifest.get("status", ""))
    return {
        "task_id": manifest.get("task_id"),
        "map_index": manifest.get("map_index", -1),
        "model": manifest.get("model"),
        "status": status,
        "images": len(manifest.get("records") or []),
        "estimated": cost.get("estimated", manifest.get("estimated_cost_usd")),
        # Only a complete task has spent its actual; a failed request billed nothing.
        "actual": cost.get("actual") if status == "complete" else (0.0 if status == "failed" else None),
        "price_source": (cost.get("price") or {}).get("source"),
        "price_read": (cost.get("price") or {}).get("read"),
        "manifest": uri,
    }


def run_cost_summary(store: ObjectStore, dag_id: str, run_id: str) -> dict[str, Any]:
    """The cost summary of one DAG run, from every manifest under ``store`` (see the module docs)."""
    # Start-up cost: DAG parsing loads pricing (cost caps); storage loads only for a summary.
    from airflow_provider_aihubmix.storage import MANIFEST_NAME, run_prefix

    tasks = []
    for key in store.list_keys(run_prefix(dag_id, run_id)):
        if key.endswith("/" + MANIFEST_NAME):
            manifest = store.read_json(key)
            if isinstance(manifest, Mapping):
                tasks.append(task_entry(manifest, store.uri_for(key)))
    tasks.sort(key=lambda t: (str(t["task_id"]), int(t["map_index"] or -1)))
    models: dict[str, dict[str, Any]] = {}
    total: dict[str, Any] = {"estimated": None, "actual": None, "images": 0, "tasks": 0}
    total["tasks_unknown_cost"] = 0
    for entry in tasks:
        model = models.setdefault(
            str(entry["model"]),
            {
                "estimated": None,
                "actual": None,
                "images": 0,
                "tasks": 0,
                "price_source": entry["price_source"],
                "price_read": entry["price_read"],
            },
        )
        for bucket in (model, total):
            bucket["estimated"] = _add(bucket["estimated"], entry["estimated"])
            bucket["actual"] = _add(bucket["actual"], entry["actual"])
            bucket["images"] += entry["images"]
            bucket["tasks"] += 1
        if entry["actual"] is None and entry["status"] == "complete":
            total["tasks_unknown_cost"] += 1
    return {
        "dag_id": dag_id,
        "run_id": run_id,
        "currency": CURRENCY,
        "generated_at": datetime.now(timezone.utc).isoformat(),
        "total": total,
        "models": models,
        "tasks": tasks,
    }


def write_run_cost_summary(store: ObjectStore, dag_id: str, run_id: str) -> tuple[str, dict[str, Any]]:
    """Compute the run's summary and store it beside the images; return its URI and the summary."""
    # Start-up cost: DAG parsing loads pricing (cost caps); storage loads only for a summary.
    from airflow_provider_aihubmix.storage import join_key, run_prefix

    summary = run_cost_summary(store, dag_id, run_id)
    uri = store.write_json(join_key(run_prefix(dag_id, run_id), SUMMARY_NAME), summary)
    return uri, summary


def summarize_run(
    context: Mapping[str, Any],
    output_uri: str,
    *,
    aws_conn_id: str | None = "aws_default",
    balance: Balance | None = None,
) -> dict[str, Any]:
    """For a ``@task``: write the summary of the current run under ``output_uri``, log and return it.

    The returned dict is the summary plus ``"uri"`` (where it was written); XCom-safe. ``balance``
    (``AIHubMixHook().get_balance()``) is reported beside the totals as ``"balance"``.
    """
    # Start-up cost: DAG parsing loads pricing (cost caps); storage loads only for a summary.
    from airflow_provider_aihubmix.storage import open_store

    ti = context["ti"]
    store = open_store(output_uri, aws_conn_id=aws_conn_id)
    uri, summary = write_run_cost_summary(store, ti.dag_id, context.get("run_id") or ti.run_id)
    if balance is not None:
        summary = {**summary, "balance": balance.as_dict()}
    return {**summary, "uri": uri}


def total_line(summary: Mapping[str, Any]) -> str:
    """``Run cost: actual 0.1234 USD (estimated 0.1500 USD), 12 image(s) from 6 task(s)``."""
    total = summary["total"]

    def usd(value: float | None) -> str:
        return "unknown" if value is None else f"{value:.4f} {summary.get('currency', CURRENCY)}"

    line = (
        f"Run cost: actual {usd(total['actual'])} (estimated {usd(total['estimated'])}), "
        f"{total['images']} image(s) from {total['tasks']} task(s)"
    )
    if total["tasks_unknown_cost"]:
        line += f"; {total['tasks_unknown_cost']} task(s) of models with no public price not counted"
    balance = summary.get("balance")
    if isinstance(balance, Mapping):
        if balance.get("unlimited"):
            line += "; balance unlimited"
        elif balance.get("remaining_usd") is not None:
            line += f"; balance {balance['remaining_usd']:.4f} USD remaining (/dashboard/billing/remain)"
    return line


__all__ = [
    "SUMMARY_NAME",
    "run_cost_summary",
    "summarize_run",
    "task_entry",
    "total_line",
    "write_run_cost_summary",
]
