"""A DAG run's cost summary, read from the manifests of its task instances and the run's budget ledger.

The last task of a run (or any task, on demand) calls :func:`write_run_cost_summary`; the JSON
lands beside the images as ``dag_id=<dag>/run_id=<run>/cost-summary.json``::

    {"dag_id", "run_id", "currency": "USD", "generated_at",
     "total": {"estimated", "actual", "possibly_billed", "images", "tasks", "tasks_unknown_cost"},
     "models": {"<model>": {"estimated", "actual", "images", "tasks", "price_source", "price_read"}},
     "tasks": [{"task_id", "map_index", "model", "status", "images", "estimated", "actual",
                "price_source", "price_read", "manifest", "reservation", "budget_refused"}],
     "budget": None | {"ledger", "committed_usd", "reserved_usd", "held_usd", "released",
                       "replaced_by_actual", "refusals", "tasks": {"<label>": {...}}}}

``actual`` sums the actual figures known (a task whose model has no public price adds nothing and
is counted in ``tasks_unknown_cost``); ``estimated`` sums the estimates made before each request;
``possibly_billed`` sums the estimates of requests whose answer was lost (``submitting`` or
``ambiguous``: billed or not, nobody can tell), including a first send kept under ``earlier/`` when
``on_possibly_billed="resend_once"`` sent it again.

The DAG budget (``max_cost_usd`` DAG param or Variable) adds, from the run's reservation ledger
(:mod:`.reservations`; ``budget`` is None for a run without one):

* per task row, ``reservation``: None (no reservation) or the task's latest one,
  ``{"seq", "usd", "state", "actual_usd", "count"}`` -- ``usd`` the estimate reserved (USD);
  ``state`` ``"held"`` (still counted against the cap: in flight, or kept because the request
  may have been billed), ``"released"`` (nothing billed, the money went back to the run) or
  ``"replaced_by_actual"`` (``actual_usd`` counts instead); ``count`` how many reservations the
  task made (a re-run of a changed request makes another); and ``budget_refused``: True when the
  task's last try was refused by the DAG budget (``AIHubMixBudgetExceededError``);
* ``budget``: ``ledger`` (where it lives), ``committed_usd`` (the run's committed money: held
  reservations plus actual costs), ``reserved_usd`` (every reservation made), ``held_usd``,
  ``released`` and ``replaced_by_actual`` (counts of reservations), ``refusals`` (tasks refused),
  and ``tasks``: every task the ledger knows -- also those refused before writing a manifest --
  keyed by its label (``'task_id'`` or ``'task_id[3]'``), as :meth:`RunLedger.report` gives them.
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


def budget_report(
    store: ObjectStore, dag_id: str, run_id: str, ledger_uri: str | None = None
) -> dict[str, Any] | None:
    """The run's reservation ledger as the summary's ``budget`` section; None when it has none.

    The ledger is where the DAG budget keeps it (:func:`.reservations.ledger_store`: the bucket
    of ``store`` on S3, ``store`` itself on ``file://``, or ``ledger_uri`` when the DAG names one).
    """
    # Start-up cost: DAG parsing loads pricing (cost caps); the ledger loads only for a summary.
    from airflow_provider_aihubmix.pricing.reservations import RunLedger, ledger_store

    where = ledger_store(store, ledger_uri)
    report = RunLedger(where, dag_id, run_id).report()
    if not report["entries"] and not report["tasks"]:
        return None
    rows = report["tasks"].values()
    states = [r["state"] for row in rows for r in row["reservations"]]
    return {
        "ledger": where.base_uri,
        "committed_usd": report["committed_usd"],
        "reserved_usd": round(sum(row["reserved_usd"] for row in rows), 6),
        "held_usd": report["held_usd"],
        "released": states.count("released"),
        "replaced_by_actual": states.count("replaced_by_actual"),
        "refusals": report["refusals"],
        "tasks": report["tasks"],
    }


def _with_budget(entry: dict[str, Any], budget: Mapping[str, Any] | None) -> dict[str, Any]:
    # Start-up cost: DAG parsing loads pricing (cost caps); the ledger loads only for a summary.
    from airflow_provider_aihubmix.pricing.reservations import task_label

    row = (budget or {}).get("tasks", {}).get(task_label(str(entry["task_id"]), int(entry["map_index"])))
    held = row["reservations"] if row else []
    reservation = {**held[-1], "count": len(held)} if held else None
    return {**entry, "reservation": reservation, "budget_refused": bool(row and row["refused"])}


def run_cost_summary(
    store: ObjectStore, dag_id: str, run_id: str, *, ledger_uri: str | None = None
) -> dict[str, Any]:
    """The cost summary of one DAG run, from every manifest under ``store`` and the run's budget
    ledger (``ledger_uri``: the DAG param ``max_cost_ledger_uri``, when set); see the module docs."""
    # Start-up cost: DAG parsing loads pricing (cost caps); storage loads only for a summary.
    from airflow_provider_aihubmix.storage import MANIFEST_NAME, run_prefix

    tasks = []
    for key in store.list_keys(run_prefix(dag_id, run_id)):
        if key.endswith("/" + MANIFEST_NAME):
            manifest = store.read_json(key)
            if isinstance(manifest, Mapping):
                tasks.append(task_entry(manifest, store.uri_for(key)))
    tasks.sort(key=lambda t: (str(t["task_id"]), -1 if t["map_index"] is None else int(t["map_index"])))
    budget = budget_report(store, dag_id, run_id, ledger_uri)
    tasks = [_with_budget(entry, budget) for entry in tasks]
    models: dict[str, dict[str, Any]] = {}
    total: dict[str, Any] = {
        "estimated": None,
        "actual": None,
        "possibly_billed": 0.0,
        "images": 0,
        "tasks": 0,
    }
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
        if entry["status"] in ("submitting", "ambiguous") and entry["estimated"] is not None:
            total["possibly_billed"] = _add(total["possibly_billed"], entry["estimated"])
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
        "budget": budget,
    }


def write_run_cost_summary(
    store: ObjectStore, dag_id: str, run_id: str, *, ledger_uri: str | None = None
) -> tuple[str, dict[str, Any]]:
    """Compute the run's summary and store it beside the images; return its URI and the summary."""
    # Start-up cost: DAG parsing loads pricing (cost caps); storage loads only for a summary.
    from airflow_provider_aihubmix.storage import join_key, run_prefix

    summary = run_cost_summary(store, dag_id, run_id, ledger_uri=ledger_uri)
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
    (``AIHubMixHook().get_balance()``) is reported beside the totals as ``"balance"``. The DAG
    budget's ledger is read where the tasks keep it (the DAG param ``max_cost_ledger_uri``, else
    beside ``output_uri``).
    """
    # Start-up cost: DAG parsing loads pricing (cost caps); storage loads only for a summary.
    from airflow_provider_aihubmix.pricing.reservations import LEDGER_PARAM
    from airflow_provider_aihubmix.storage import open_store

    ti = context["ti"]
    store = open_store(output_uri, aws_conn_id=aws_conn_id)
    params = context.get("params")
    ledger_uri = params.get(LEDGER_PARAM) if isinstance(params, Mapping) else None
    uri, summary = write_run_cost_summary(
        store,
        ti.dag_id,
        context.get("run_id") or ti.run_id,
        ledger_uri=str(ledger_uri) if ledger_uri else None,
    )
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
    budget = summary.get("budget")
    if isinstance(budget, Mapping):
        held = sum(1 for row in budget["tasks"].values() for r in row["reservations"] if r["state"] == "held")
        line += (
            f"; DAG budget: {usd(budget['committed_usd'])} committed, reservations "
            f"{held} held ({usd(budget['held_usd'])}), {budget['replaced_by_actual']} replaced by actual, "
            f"{budget['released']} released; {budget['refusals']} task(s) refused"
        )
    balance = summary.get("balance")
    if isinstance(balance, Mapping):
        if balance.get("unlimited"):
            line += "; balance unlimited"
        elif balance.get("remaining_usd") is not None:
            line += f"; balance {balance['remaining_usd']:.4f} USD remaining (/dashboard/billing/remain)"
    return line


__all__ = [
    "SUMMARY_NAME",
    "budget_report",
    "run_cost_summary",
    "summarize_run",
    "task_entry",
    "total_line",
    "write_run_cost_summary",
]
