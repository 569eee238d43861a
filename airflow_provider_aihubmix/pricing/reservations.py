"""The DAG budget's reservation ledger: a run reserves each purchase's estimate before buying it.

Concurrent mapped tasks that read "spend so far" and then buy all see the same spend and all buy.
Here every change to the run's committed money is one entry of a **chain** with one total order
every task agrees on, without a lock server: entries are decided in slots created only if absent
(S3 ``If-None-Match: *``, a hard link on ``file://``), each slot deciding every request pending
when it was made (:mod:`.reservation_chain`: combining, so a fan-out of 200 is decided in a few
rounds). Each entry carries the running total after it, and a reservation is admitted only if
that total fits the cap, so the committed total is never above the cap because of a reservation.

Layout (under ``_aihubmix_budget/dag_id=.../run_id=.../`` of the ledger store, :func:`ledger_store`):

* ``chain/<k>.json`` -- slot ``k``: the entries it decided -- ``reserve`` (+estimate), ``settle``
  (actual - estimate, or -estimate when released), in order, ``total_micro_usd`` the run's
  committed money after each -- and the reservations it refused;
* ``pending/<request>.json`` -- requests waiting for a slot (deleted once decided);
* ``tasks/<task>.json`` -- the task instance's pointer to its open reservation (reused by a
  retry or a re-run of the same request instead of reserving again) or its last refusal;
* ``sending/<n>.json`` (``n`` the reserve entry's seq) -- created (if absent) by the owner right
  before its request is sent, or by a reclaimer that releases a reservation whose owner died
  before sending: whoever creates it first decides, so a reservation is never both reclaimed
  and spent;
* ``settled/<n>.json`` -- created (if absent) before a reservation's ``settle`` entry, so it is
  settled once even when its owner and a reclaimer race.

Money follows the request: a reservation is released when its request is refused before sending
or answered with an error that bills nothing (``engine.outcomes.may_be_billed``), replaced by
the actual cost once known, and kept while the request may have been billed. A reservation whose
owner never marked it ``sending`` within :data:`RECLAIM_AFTER_SECONDS` of reserving is released
by the next task the budget would otherwise refuse (the owner, if it was only slow, finds
``sending`` taken and reserves again before it sends).

Amounts are integer micro-USD, so totals never drift by float rounding.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_aihubmix.exceptions import AIHubMixBudgetExceededError, AtomicCreateUnsupportedError
from airflow_provider_aihubmix.pricing.reservation_chain import Chain, Entry, to_micro, to_usd
from airflow_provider_aihubmix.storage import join_key, run_prefix
from airflow_provider_aihubmix.storage.base import ObjectStore
from airflow_provider_aihubmix.storage.keys import encode_key_part
from airflow_provider_aihubmix.storage.s3 import S3ObjectStore
from airflow_provider_aihubmix.storage.stores import open_store

log = logging.getLogger(__name__)

LEDGER_FOLDER = "_aihubmix_budget"
#: DAG param naming one store for the run's reservation ledger (tasks storing in different places).
LEDGER_PARAM = "max_cost_ledger_uri"
#: A reservation not marked ``sending`` this long after it was made may be released by another task.
RECLAIM_AFTER_SECONDS = 15 * 60
# Stores already probed for a working create-if-absent (by base URI), in this process.
_PROBED: set[str] = set()


def task_label(task_id: str, map_index: int) -> str:
    """How the ledger names a task instance: ``'task_id'`` or ``'task_id[3]'`` (quoted)."""
    return repr(task_id if map_index < 0 else f"{task_id}[{map_index}]")


def ledger_store(store: ObjectStore, ledger_uri: str | None = None) -> ObjectStore:
    """Where a run's ledger lives: ``ledger_uri`` when the DAG names one, else the task's store's root.

    For ``s3://`` that root is the bucket (``s3://bucket``), so every task of the run writing to
    any folder of the bucket shares one ledger; for ``file://`` it is the task's ``output_uri``.
    Tasks of one run that store in different buckets or directories share a ledger only when
    the DAG param ``max_cost_ledger_uri`` names one (see the README's budget section).
    """
    if isinstance(store, S3ObjectStore):
        if ledger_uri:
            return open_store(ledger_uri, aws_conn_id=store.aws_conn_id)
        if store.prefix:
            return S3ObjectStore(f"s3://{store.bucket}", aws_conn_id=store.aws_conn_id, client=store.client)
        return store
    return open_store(ledger_uri) if ledger_uri else store


def check_atomic(store: ObjectStore) -> None:
    """Probe once per store and process that a second create of one key is refused.

    :raises AtomicCreateUnsupportedError: naming the store, when it has no atomic create or
        answers a second create as if it had created it (a store ignoring ``If-None-Match``).
    """
    if store.base_uri in _PROBED:
        return
    key = join_key(LEDGER_FOLDER, "probe", secrets.token_hex(8) + ".json")
    first = store.create_json(key, {"probe": 1})
    second = store.create_json(key, {"probe": 2})
    store.delete(key)
    if not first or second:
        raise AtomicCreateUnsupportedError(
            f"The DAG budget needs an atomic create-if-absent, but the store {store.base_uri} "
            f"answered {'a second create of one key as created' if second else 'a first create as taken'}: "
            "it ignores the condition (If-None-Match), so reservations cannot be ordered there. "
            "Use a store that honours it (AWS S3, MinIO, a local or NFS file system) for the ledger "
            "(DAG param 'max_cost_ledger_uri'), or cap each task with max_cost_usd instead."
        )
    _PROBED.add(store.base_uri)


@dataclass(frozen=True)
class Reservation:
    """A task instance's admitted reservation: its chain entry and the amount it holds."""

    seq: int
    task: str
    fingerprint: str
    micro_usd: int

    @property
    def usd(self) -> float:
        return to_usd(self.micro_usd)


class RunLedger:
    """The reservation ledger of one DAG run in ``store`` (see the module docstring)."""

    def __init__(
        self,
        store: ObjectStore,
        dag_id: str,
        run_id: str,
        *,
        clock: Callable[[], float] = time.time,
        reclaim_after: float = RECLAIM_AFTER_SECONDS,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.prefix = join_key(LEDGER_FOLDER, run_prefix(dag_id, run_id))
        self.clock = clock
        self.reclaim_after = reclaim_after
        self.chain = Chain(store, self.prefix, clock)

    # -- keys ---------------------------------------------------------------------------------
    def _task_key(self, task: str) -> str:
        return join_key(self.prefix, "tasks", encode_key_part(task) + ".json")

    # -- the chain ----------------------------------------------------------------------------
    def head(self) -> Entry | None:
        """The latest entry (None for an empty ledger)."""
        return self.chain.head()

    def entries(self) -> list[Entry]:
        """Every entry, in order (the cost summary reads them)."""
        return self.chain.entries()

    # -- reserving ----------------------------------------------------------------------------
    def open_reservation(self, task: str, fingerprint: str) -> Reservation | None:
        """The task's reservation still held for this request (a retry or re-run reuses it)."""
        return self._open(self.store.read_json(self._task_key(task)), task, fingerprint)

    def _open(self, doc: Any, task: str, fingerprint: str) -> Reservation | None:
        if not isinstance(doc, Mapping) or doc.get("state") != "reserved":
            return None
        if doc.get("fingerprint") != fingerprint:
            return None
        seq = int(doc["seq"])
        if self.store.exists(join_key(self.prefix, "settled", f"{seq}.json")):
            return None
        return Reservation(seq, task, fingerprint, int(doc["micro_usd"]))

    def reserve(
        self, task: str, fingerprint: str, usd: float, *, cap_usd: float, describe_cap: str
    ) -> Reservation:
        """Reserve ``usd`` for ``task``'s request, or refuse.

        :raises AIHubMixBudgetExceededError: the committed money plus ``usd`` passes the cap;
            the message names the task, the cap, the committed spend and the estimate.
        """
        pointer = self.store.read_json(self._task_key(task))
        held = self._open(pointer, task, fingerprint)
        if held is not None:
            log.info("DAG budget: %s reuses its reservation #%d of %.4f USD", task, held.seq, held.usd)
            return held
        self._drop_unsent(task, pointer)
        amount, cap = to_micro(usd), to_micro(cap_usd)

        decision = self.chain.submit("reserve", task, amount, cap=cap)
        if decision.get("refused") and self.reclaim_stale():
            decision = self.chain.submit("reserve", task, amount, cap=cap)
        entry = None if decision.get("refused") else Entry.of(decision)
        committed = int(decision["committed"]) if entry is None else entry.total_micro_usd - amount
        if entry is None:
            self.store.write_json(
                self._task_key(task),
                {
                    "state": "refused",
                    "task": task,
                    "fingerprint": fingerprint,
                    "micro_usd": amount,
                    "committed": committed,
                },
            )
            raise AIHubMixBudgetExceededError(
                f"DAG budget reached: task {task} of run {self.run_id!r} was not submitted. {describe_cap} "
                f"caps the run at {cap_usd:.4f} USD; {to_usd(committed):.4f} USD is already committed "
                f"(reserved or spent) by the run's other purchases, and this task's estimate is "
                f"{usd:.4f} USD, which would bring the run to {to_usd(committed + amount):.4f} USD.",
                param="max_cost_usd",
            )
        self.store.write_json(
            self._task_key(task),
            {
                "state": "reserved",
                "seq": entry.seq,
                "fingerprint": fingerprint,
                "micro_usd": amount,
                "at": entry.at,
            },
        )
        log.info(
            "DAG budget: %s reserved %.4f USD (#%d); run %s committed %.4f of %.4f USD",
            task,
            usd,
            entry.seq,
            self.run_id,
            to_usd(entry.total_micro_usd),
            cap_usd,
        )
        return Reservation(entry.seq, task, fingerprint, amount)

    def report(self) -> dict[str, Any]:
        """Reservations, actual spend and refusals per task, as the ledger holds them::

            {"committed_usd", "entries", "held_usd", "refusals",
             "tasks": {"<task>": {"reserved_usd", "actual_usd", "released", "open", "refused",
                                  "reservations": [{"seq", "usd", "state", "actual_usd"}]}}}

        ``<task>`` is :func:`task_label`. Per task: ``reserved_usd`` sums its reservations,
        ``actual_usd`` what they were replaced by (released ones add 0), ``open`` counts those
        not settled yet, ``released`` those given back, ``refused`` whether its last try was
        refused by the budget. Each reservation's ``state`` is ``"held"`` (counted: in flight, or
        kept because the request may have been billed), ``"released"`` (nothing billed: money
        back to the run) or ``"replaced_by_actual"`` (``actual_usd`` counted instead of ``usd``).
        ``held_usd`` sums the held reservations of the run, ``refusals`` counts refused tasks.
        """
        tasks: dict[str, dict[str, Any]] = {}

        def row(task: str) -> dict[str, Any]:
            return tasks.setdefault(
                task,
                {
                    "reserved_usd": 0.0,
                    "actual_usd": 0.0,
                    "released": 0,
                    "open": 0,
                    "refused": False,
                    "reservations": [],
                },
            )

        entries = self.entries()
        amounts = {e.seq: e.delta_micro_usd for e in entries if e.kind == "reserve"}
        settled: dict[int, int] = {}
        for entry in entries:
            if entry.kind == "settle":
                settled[entry.reservation] = amounts.get(entry.reservation, 0) + entry.delta_micro_usd
        held = 0
        for entry in entries:
            if entry.kind != "reserve":
                continue
            item = row(entry.task)
            item["reserved_usd"] = to_usd(to_micro(item["reserved_usd"]) + entry.delta_micro_usd)
            actual: float | None = None
            if entry.seq not in settled:
                item["open"] += 1
                state = "held"
                held += entry.delta_micro_usd
            elif settled[entry.seq] == 0:
                item["released"] += 1
                state = "released"
                actual = 0.0
            else:
                item["actual_usd"] = to_usd(to_micro(item["actual_usd"]) + settled[entry.seq])
                state = "replaced_by_actual"
                actual = to_usd(settled[entry.seq])
            item["reservations"].append(
                {"seq": entry.seq, "usd": to_usd(entry.delta_micro_usd), "state": state, "actual_usd": actual}
            )
        for key in self.store.list_keys(join_key(self.prefix, "tasks")):
            doc = self.store.read_json(key)
            if isinstance(doc, Mapping) and doc.get("state") == "refused":
                task = next((e.task for e in entries if self._task_key(e.task) == key), None)
                label = task or doc.get("task") or key.rsplit("/", 1)[-1][: -len(".json")]
                row(str(label))["refused"] = True
        return {
            "committed_usd": to_usd(entries[-1].total_micro_usd) if entries else 0.0,
            "entries": len(entries),
            "held_usd": to_usd(held),
            "refusals": sum(1 for item in tasks.values() if item["refused"]),
            "tasks": tasks,
        }

    def _drop_unsent(self, task: str, doc: Any) -> None:
        """Release the task's open reservation (its pointer ``doc``) for another request (the
        request changed before anything was sent), instead of leaving it for :meth:`reclaim_stale`."""
        if not isinstance(doc, Mapping) or doc.get("state") != "reserved":
            return
        seq = int(doc["seq"])
        if self.store.create_json(join_key(self.prefix, "sending", f"{seq}.json"), {"by": "reclaimer"}):
            self.release(Reservation(seq, task, str(doc.get("fingerprint")), int(doc["micro_usd"])))

    def mark_sending(self, reservation: Reservation) -> bool:
        """Right before the request is sent: False when a reclaimer released the reservation first
        (the caller reserves again), True when it is ours to spend (also on a retry)."""
        key = join_key(self.prefix, "sending", f"{reservation.seq}.json")
        if self.store.create_json(key, {"by": "owner", "task": reservation.task}):
            return True
        doc = self.store.read_json(key)
        return isinstance(doc, Mapping) and doc.get("by") == "owner"

    def settle(self, reservation: Reservation, actual_usd: float | None) -> bool:
        """Replace the reservation by ``actual_usd`` (0 releases it); once, whoever calls first."""
        if not self.store.create_json(
            join_key(self.prefix, "settled", f"{reservation.seq}.json"),
            {
                "task": reservation.task,
                "actual_micro_usd": None if actual_usd is None else to_micro(actual_usd),
            },
        ):
            return False
        actual = reservation.micro_usd if actual_usd is None else to_micro(actual_usd)
        self.chain.submit(
            "settle", reservation.task, actual - reservation.micro_usd, reservation=reservation.seq
        )
        pointer = self.store.read_json(self._task_key(reservation.task))
        if isinstance(pointer, Mapping) and pointer.get("seq") == reservation.seq:
            state = "released" if actual == 0 else "settled"
            self.store.write_json(
                self._task_key(reservation.task), {**pointer, "state": state, "actual_micro_usd": actual}
            )
        return True

    def release(self, reservation: Reservation) -> bool:
        """Nothing was (or will be) billed for the reservation: give its money back to the run."""
        return self.settle(reservation, 0.0)

    def reclaim_stale(self) -> int:
        """Release reservations never marked ``sending`` within ``reclaim_after`` seconds of being
        made (their task died before sending, or before it recorded its pointer). Returns how many.

        Read only when the run's first entry is that old, so a fan-out's first minutes cost nothing.
        """
        now = self.clock()
        first = self.chain.slot(0)
        if (
            not first
            or not first.get("entries")
            or now - float(first["entries"][0]["at"]) < self.reclaim_after
        ):
            return 0
        released = 0
        for entry in self.entries():
            if entry.kind != "reserve" or now - entry.at < self.reclaim_after:
                continue
            if self.store.exists(join_key(self.prefix, "settled", f"{entry.seq}.json")):
                continue
            sending = join_key(self.prefix, "sending", f"{entry.seq}.json")
            if not self.store.create_json(sending, {"by": "reclaimer", "at": now}):
                continue
            stale = Reservation(entry.seq, entry.task, "", entry.delta_micro_usd)
            if self.settle(stale, 0.0):
                log.warning(
                    "DAG budget: released reservation #%d of %s (%.4f USD): not sent within %.0f s",
                    entry.seq,
                    entry.task,
                    stale.usd,
                    self.reclaim_after,
                )
                released += 1
        return released


__all__ = [
    "LEDGER_FOLDER",
    "LEDGER_PARAM",
    "RECLAIM_AFTER_SECONDS",
    "Entry",
    "Reservation",
    "RunLedger",
    "check_atomic",
    "ledger_store",
    "task_label",
]
