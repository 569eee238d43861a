"""The DAG-level budget: a run's purchases reserve their estimate before buying, and stop at a cap.

The cap is the DAG param ``max_cost_usd`` or, when the DAG has none, the Airflow Variable
``aihubmix_budget_<dag_id>`` (USD). Before any request a task reserves its estimate in the run's
reservation ledger (:mod:`airflow_provider_aihubmix.pricing.reservations`), an atomic
create-if-absent chain in storage, so tasks that start together are admitted one after the other
and the run's committed money (reserved, then replaced by the actual cost) never passes the cap:

* the ledger lives under ``_aihubmix_budget/dag_id=.../run_id=.../`` of the DAG param
  ``max_cost_ledger_uri`` when set, else of the bucket root (``s3://``) or the ``output_uri``
  (``file://``) of the task (:func:`~.reservations.ledger_store`);
* a store that ignores conditional creates is refused naming it (AtomicCreateUnsupportedError).

:func:`run_spend` still reads the spend the run's manifests record (summaries, reports).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_aihubmix.engine.manifest import MAY_BE_BILLED
from airflow_provider_aihubmix.exceptions import AIHubMixValidationError
from airflow_provider_aihubmix.pricing.reservations import (
    LEDGER_PARAM,
    Reservation,
    RunLedger,
    check_atomic,
    ledger_store,
)
from airflow_provider_aihubmix.storage import MANIFEST_NAME, join_key, run_prefix

if TYPE_CHECKING:
    from airflow_provider_aihubmix.pricing.estimate import Estimate
    from airflow_provider_aihubmix.storage import ObjectStore

log = logging.getLogger(__name__)

DAG_PARAM = "max_cost_usd"
VARIABLE_PREFIX = "aihubmix_budget_"


def variable_name(dag_id: str) -> str:
    return f"{VARIABLE_PREFIX}{dag_id}"


@dataclass(frozen=True)
class TaskSpend:
    """What one task instance of the run has spent (or committed), as its manifest records it."""

    task_id: str
    map_index: int
    model: str
    status: str
    usd: float | None
    counted_as: str  # "actual", "estimated", "failed" or "unknown"

    @property
    def label(self) -> str:
        return self.task_id if self.map_index < 0 else f"{self.task_id}[{self.map_index}]"


@dataclass(frozen=True)
class RunSpend:
    """The spend of a DAG run so far, task instance by task instance."""

    tasks: list[TaskSpend] = field(default_factory=list)

    @property
    def total_usd(self) -> float:
        return round(sum(t.usd or 0.0 for t in self.tasks), 6)

    @property
    def unknown(self) -> list[TaskSpend]:
        return [t for t in self.tasks if t.counted_as == "unknown"]


def manifest_spend(manifest: Mapping[str, Any]) -> TaskSpend:
    """The spend one manifest records (see the module docstring for what counts)."""
    status = str(manifest.get("status", ""))
    raw_cost = manifest.get("cost")
    cost: Mapping[str, Any] = raw_cost if isinstance(raw_cost, Mapping) else {}
    estimated = cost.get("estimated", manifest.get("estimated_cost_usd"))
    actual = cost.get("actual")
    if status == "failed":
        usd, how = 0.0, "failed"
    elif status == "complete" and actual is not None:
        usd, how = float(actual), "actual"
    elif (status == "complete" or status in MAY_BE_BILLED) and estimated is not None:
        usd, how = float(estimated), "estimated"
    else:
        usd, how = None, "unknown"
    return TaskSpend(
        task_id=str(manifest.get("task_id", "?")),
        map_index=int(manifest.get("map_index", -1)),
        model=str(manifest.get("model", "?")),
        status=status,
        usd=usd,
        counted_as=how,
    )


def run_spend(store: ObjectStore, dag_id: str, run_id: str, *, exclude_prefix: str | None = None) -> RunSpend:
    """Read every manifest of the run under ``store`` (but the one under ``exclude_prefix``)."""
    tasks = []
    for key in store.list_keys(run_prefix(dag_id, run_id)):
        if not key.endswith("/" + MANIFEST_NAME):
            continue
        # The task's own manifest is about to be replaced; an earlier purchase it kept still counts.
        if exclude_prefix and key == join_key(exclude_prefix.rstrip("/"), MANIFEST_NAME):
            continue
        manifest = store.read_json(key)
        if isinstance(manifest, Mapping):
            tasks.append(manifest_spend(manifest))
    return RunSpend(tasks)


def parse_cap(value: Any, where: str) -> float:
    try:
        cap = float(value)
    except (TypeError, ValueError):
        cap = -1.0
    if isinstance(value, bool) or cap < 0 or cap != cap:
        raise AIHubMixValidationError(f"{where} must be a number of USD >= 0, got {value!r}", param=DAG_PARAM)
    return cap


@dataclass(frozen=True)
class DagBudget:
    """A cap on what one DAG run may spend, and where it was set (for the error message)."""

    cap_usd: float
    source: str
    ledger_uri: str | None = None

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> DagBudget | None:
        """The DAG param ``max_cost_usd``, else the Variable ``aihubmix_budget_<dag_id>``, else None."""
        params = context.get("params") or {}
        value = params.get(DAG_PARAM) if isinstance(params, Mapping) else None
        where = params.get(LEDGER_PARAM) if isinstance(params, Mapping) else None
        if where is not None and not (isinstance(where, str) and "://" in where):
            raise AIHubMixValidationError(
                f"DAG param '{LEDGER_PARAM}' must be an s3:// or file:// URI, got {where!r}",
                param=LEDGER_PARAM,
            )
        ledger_uri = where or None
        if value is not None:
            return cls(parse_cap(value, f"DAG param '{DAG_PARAM}'"), f"DAG param '{DAG_PARAM}'", ledger_uri)
        ti = context.get("ti")
        dag_id = getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", None)
        if not dag_id:
            return None
        name = variable_name(dag_id)
        value = _variable(name)
        if value is None or str(value).strip() == "":
            return None
        return cls(parse_cap(value, f"Variable '{name}'"), f"Variable '{name}'", ledger_uri)

    def ledger(self, store: ObjectStore, *, dag_id: str, run_id: str) -> RunLedger:
        """The run's reservation ledger (see the module docstring for where it lives).

        :raises AtomicCreateUnsupportedError: the ledger's store ignores conditional creates.
        """
        where = ledger_store(store, self.ledger_uri)
        check_atomic(where)
        return RunLedger(where, dag_id, run_id)

    def reserve(
        self,
        ledger: RunLedger,
        *,
        task_label: str,
        fingerprint: str,
        found: Estimate,
        allow_unknown_cost: bool,
    ) -> Reservation | None:
        """Reserve ``found`` for the task before any request (a retry reuses its reservation).

        Returns None when the estimate is unknown and ``allow_unknown_cost`` lets it through
        unreserved (said in the log).

        :raises AIHubMixBudgetExceededError: naming the task, the cap, the committed spend and the estimate.
        :raises AIHubMixValidationError: the estimate is unknown and ``allow_unknown_cost`` is false.
        """
        if not found.known:
            if not allow_unknown_cost:
                raise AIHubMixValidationError(
                    f"The DAG budget ({self.source} = {self.cap_usd} USD) cannot be enforced for task "
                    f"{task_label}: model {found.model} has {found.reason}. Set allow_unknown_cost=True "
                    "or add the model's price with 'prices'.",
                    param=DAG_PARAM,
                )
            log.warning(
                "DAG budget: %s has no known price; submitting unreserved (allow_unknown_cost)", task_label
            )
            return None
        return ledger.reserve(
            task_label, fingerprint, found.total_usd or 0.0, cap_usd=self.cap_usd, describe_cap=self.source
        )


def _variable(name: str) -> Any:
    from airflow.sdk import Variable

    try:
        return Variable.get(name, default=None)
    except Exception as err:  # no Variable backend reachable: no budget, said out loud
        log.warning("Could not read Variable %s (%s); no DAG budget from it", name, err)
        return None


__all__ = [
    "DAG_PARAM",
    "LEDGER_PARAM",
    "VARIABLE_PREFIX",
    "DagBudget",
    "RunSpend",
    "TaskSpend",
    "manifest_spend",
    "run_spend",
    "variable_name",
]
