"""What a task does with a request that may have been billed: fail (default) or send it again once.

A request whose answer was lost -- the worker or triggerer killed mid-request (SIGKILL, out of
memory, a lost node), a connection cut after the body went out -- may have been billed; AIHubMix
offers no idempotency key and no way to ask whether it was. The policy ``on_possibly_billed``
(operator parameter, else connection extra of the same name; values and parsing in
:mod:`airflow_provider_aihubmix.possibly_billed`, import-light for DAG parsing) chooses:

* ``"fail"`` (default): the task fails with :class:`AIHubMixPossiblyBilledError` and nothing is
  sent again (``regenerate=True`` buys anew on purpose);
* ``"resend_once"``: the request is sent one more time. Before it goes out, the first send's
  manifest is kept under ``earlier/`` marked ``"resend": true`` (so the run's cost summary and
  budget, which read every manifest under the run, keep counting its estimate), the DAG budget
  reserves the second send's estimate separately (:func:`reservation_key`), and the new manifest
  carries the mark -- so a second send that is lost too is never followed by a third, whatever
  dies next (worker, triggerer, a retry).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_aihubmix.possibly_billed import PossiblyBilledPolicy

if TYPE_CHECKING:
    from airflow_provider_aihubmix.engine.manifest import Manifest

RESEND_MARK = "resend"


def resent(manifest: Manifest) -> bool:
    """Whether ``manifest``'s request is already a second send (the mark kept in ``earlier``)."""
    return any(entry.get(RESEND_MARK) for entry in manifest.earlier)


def reservation_key(fingerprint: str, earlier: list[dict[str, Any]]) -> str:
    """The DAG-budget reservation key of a purchase: the second send reserves apart from the first,
    whose reservation stays open (counted) because it may have been billed."""
    return f"{fingerprint}:resend" if any(e.get(RESEND_MARK) for e in earlier) else fingerprint


__all__ = ["RESEND_MARK", "PossiblyBilledPolicy", "resent", "reservation_key"]
