"""One purchase's reservation under the DAG budget, from before the request to its actual cost.

:class:`PurchaseBudget` is what the engine (worker, triggerer completion, Gemini series) calls at
the four moments money moves (see :mod:`airflow_provider_aihubmix.pricing.reservations`):

* :meth:`~PurchaseBudget.reserve` -- before anything is sent (a retry reuses its reservation);
* :meth:`~PurchaseBudget.sending` -- right before the first billable request (or before the
  request is stored for the triggerer); a reservation reclaimed meanwhile is made again first;
* :meth:`~PurchaseBudget.settle` -- the images are stored: the actual cost replaces the estimate;
* :meth:`~PurchaseBudget.after_error` -- released when nothing was sent, or the manifest records
  the request ``failed`` (an error that bills nothing) with nothing answered; otherwise kept.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from airflow_provider_aihubmix.engine.manifest import Manifest, ManifestStatus
from airflow_provider_aihubmix.engine.resend import reservation_key
from airflow_provider_aihubmix.exceptions import AIHubMixError
from airflow_provider_aihubmix.pricing.reservations import task_label as ledger_label

if TYPE_CHECKING:
    from airflow_provider_aihubmix.engine.budget import DagBudget
    from airflow_provider_aihubmix.engine.manifest import TaskIdentity
    from airflow_provider_aihubmix.pricing import Estimate
    from airflow_provider_aihubmix.pricing.reservations import Reservation, RunLedger
    from airflow_provider_aihubmix.storage import ObjectStore

log = logging.getLogger(__name__)


def task_label(identity: TaskIdentity) -> str:
    """How the budget names a task instance: ``'task_id'`` or ``'task_id[3]'`` (quoted)."""
    return ledger_label(identity.task_id, identity.map_index)


class PurchaseBudget:
    """The DAG budget's view of one task instance's purchase (a no-op without a DAG budget)."""

    def __init__(self, budget: DagBudget | None, store: ObjectStore, identity: TaskIdentity) -> None:
        self.budget = budget
        self.store = store
        self.identity = identity
        self.label = task_label(identity)
        self.ledger: RunLedger | None = None
        self.reservation: Reservation | None = None
        self.sent = False
        self._found: Estimate | None = None
        self._fingerprint = ""
        self._allow_unknown = False

    def _ledger(self) -> RunLedger | None:
        if self.budget is None:
            return None
        if self.ledger is None:
            self.ledger = self.budget.ledger(
                self.store, dag_id=self.identity.dag_id, run_id=self.identity.run_id
            )
        return self.ledger

    def reserve(self, found: Estimate, fingerprint: str, *, allow_unknown_cost: bool) -> None:
        """Reserve the estimate in the run's ledger, or raise AIHubMixBudgetExceededError."""
        ledger = self._ledger()
        if ledger is None or self.budget is None:
            return
        self._found, self._fingerprint, self._allow_unknown = found, fingerprint, allow_unknown_cost
        self.reservation = self.budget.reserve(
            ledger,
            task_label=self.label,
            fingerprint=fingerprint,
            found=found,
            allow_unknown_cost=allow_unknown_cost,
        )

    def sending(self) -> None:
        """Claim the reservation for the request about to go out (idempotent)."""
        if self.sent:
            return
        held = self.reservation
        if self.ledger is not None and held is not None and not self.ledger.mark_sending(held):
            log.warning(
                "DAG budget: reservation #%d of %s was reclaimed before sending; reserving again",
                held.seq,
                self.label,
            )
            assert self._found is not None
            self.reservation = None
            self.reserve(self._found, self._fingerprint, allow_unknown_cost=self._allow_unknown)
            if self.reservation is not None and not self.ledger.mark_sending(self.reservation):
                raise AIHubMixError(f"DAG budget: reservation of {self.label} lost twice; nothing sent")
        self.sent = True

    def _held(self, manifest: Manifest | None) -> Reservation | None:
        """This purchase's reservation: made in this process, else the one the ledger holds open
        for the task (the triggerer's completion, an async task collected by a later try)."""
        if self.reservation is not None or manifest is None:
            return self.reservation
        ledger = self._ledger()
        if ledger is None:
            return None
        # A second send (on_possibly_billed='resend_once') holds a reservation of its own.
        key = reservation_key(manifest.fingerprint, manifest.earlier)
        self.reservation = ledger.open_reservation(self.label, key)
        return self.reservation

    def settle(self, manifest: Manifest | None) -> None:
        """The images are stored: replace the reservation by the manifest's actual cost."""
        reservation = self._held(manifest)
        if reservation is None or self.ledger is None:
            return
        actual = manifest.actual_cost_usd if manifest is not None else None
        if self.ledger.settle(reservation, actual):
            log.info(
                "DAG budget: %s reserved %.4f USD, spent %s",
                self.label,
                reservation.usd,
                "an unknown amount (estimate kept)" if actual is None else f"{actual:.4f} USD",
            )

    def after_error(self, manifest: Manifest | None) -> None:
        """Release the reservation when the money did not move (see the module docstring)."""
        reservation = self._held(manifest) if self.sent else self.reservation
        if reservation is None or self.ledger is None:
            return
        unbilled = not self.sent or (
            manifest is not None
            and manifest.status is ManifestStatus.FAILED
            and manifest.requests_answered == 0
            and not manifest.received
            and not manifest.records
        )
        if unbilled and self.ledger.release(reservation):
            log.info(
                "DAG budget: %s released its reservation of %.4f USD (nothing billed)",
                self.label,
                reservation.usd,
            )


__all__ = ["PurchaseBudget", "task_label"]
