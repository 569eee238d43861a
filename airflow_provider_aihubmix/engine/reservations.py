"""The DAG budget's reservation ledger: a run reserves each purchase's estimate before buying it.

Concurrent mapped tasks that read "spend so far" and then buy all see the same spend and all buy.
Here every change to the run's committed money is one entry of a **chain**: entry ``n`` is the
object ``chain/<n>.json``, created only if absent (:meth:`ObjectStore.create_json`: S3
``If-None-Match: *``, a hard link on ``file://``), and it carries the running total after it. A
task reads the head entry ``h`` and creates ``h + 1`` with ``total(h) + estimate`` only if that
fits the cap; when another task took ``h + 1`` first it reads that entry and tries the next one.
So the chain is one total order every task agrees on, without a lock server, and the committed
total is never above the cap because of a reservation.

Layout (under ``_aihubmix_budget/dag_id=.../run_id=.../`` of the ledger store, :func:`ledger_store`):

* ``chain/<n>.json`` -- ``reserve`` (+estimate), ``settle`` (actual - estimate, or -estimate when
  released), in order; ``total_micro_usd`` is the run's committed money after the entry;
* ``tasks/<task>.json`` -- the task instance's pointer to its open reservation (reused by a
  retry or a re-run of the same request instead of reserving again) or its last refusal;
* ``sending/<n>.json`` -- created (if absent) by the owner right before its request is sent, or by
  a reclaimer that releases a reservation whose owner died before sending: whoever creates it
  first decides, so a reservation is never both reclaimed and spent;
* ``settled/<n>.json`` -- created (if absent) before a reservation's ``settle`` entry, so it is
  settled once even when its owner and a reclaimer race.

Money follows the request: a reservation is released when its request is refused before sending
or answered with an error that bills nothing (:func:`~.outcomes.may_be_billed`), replaced by the
actual cost once known, and kept while the request may have been billed. A reservation whose
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
from airflow_provider_aihubmix.storage import join_key, run_prefix
from airflow_provider_aihubmix.storage.base import ObjectStore
from airflow_provider_aihubmix.storage.keys import encode_key_part
from airflow_provider_aihubmix.storage.s3 import S3ObjectStore
from airflow_provider_aihubmix.storage.stores import open_store

log = logging.getLogger(__name__)

LEDGER_FOLDER = "_aihubmix_budget"
#: A reservation not marked ``sending`` this long after it was made may be released by another task.
RECLAIM_AFTER_SECONDS = 15 * 60
MICRO = 1_000_000
# Stores already probed for a working create-if-absent (by base URI), in this process.
_PROBED: set[str] = set()


def to_micro(usd: float) -> int:
    return round(usd * MICRO)


def to_usd(micro: int) -> float:
    return round(micro / MICRO, 6)


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
class Entry:
    """One entry of the chain."""

    seq: int
    kind: str  # "reserve" or "settle"
    reservation: int  # the reserve entry's seq (its own for a reserve)
    task: str
    delta_micro_usd: int
    total_micro_usd: int
    at: float
    nonce: str

    @classmethod
    def of(cls, doc: Mapping[str, Any]) -> Entry:
        return cls(**{name: doc[name] for name in cls.__dataclass_fields__})

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


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

    # -- keys ---------------------------------------------------------------------------------
    def _chain_key(self, seq: int) -> str:
        return join_key(self.prefix, "chain", f"{seq:09d}.json")

    def _task_key(self, task: str) -> str:
        return join_key(self.prefix, "tasks", encode_key_part(task) + ".json")

    # -- the chain ----------------------------------------------------------------------------
    def head(self) -> Entry | None:
        """The latest entry (None for an empty ledger)."""
        keys = self.store.list_keys(join_key(self.prefix, "chain"))
        seqs = sorted(int(k.rsplit("/", 1)[-1].split(".")[0]) for k in keys if k.endswith(".json"))
        for seq in reversed(seqs):
            doc = self.store.read_json(self._chain_key(seq))
            if isinstance(doc, Mapping):
                return self._after(Entry.of(doc))
        return None

    def _after(self, entry: Entry) -> Entry:
        # A listing can lag a create by a moment: walk forward to the real head.
        while True:
            doc = self.store.read_json(self._chain_key(entry.seq + 1))
            if not isinstance(doc, Mapping):
                return entry
            entry = Entry.of(doc)

    def entries(self) -> list[Entry]:
        """Every entry, in order (the cost summary and the gallery read them)."""
        out = []
        for key in self.store.list_keys(join_key(self.prefix, "chain")):
            doc = self.store.read_json(key)
            if isinstance(doc, Mapping):
                out.append(Entry.of(doc))
        return sorted(out, key=lambda e: e.seq)

    def append(self, make: Callable[[Entry | None], Entry | None]) -> tuple[Entry | None, Entry | None]:
        """Create the entry ``make(head)`` right after the head; ``make`` returns None to give up.

        Returns (the entry created or None, the head it was decided against).
        """
        head = self.head()
        while True:
            entry = make(head)
            if entry is None:
                return None, head
            if self.store.create_json(self._chain_key(entry.seq), entry.as_dict()):
                return entry, head
            # Another task took the slot: read it (its total) and try the next one.
            taken = self.store.read_json(self._chain_key(entry.seq))
            head = self._after(Entry.of(taken)) if isinstance(taken, Mapping) else self.head()

    def _entry(self, head: Entry | None, kind: str, reservation: int | None, task: str, delta: int) -> Entry:
        seq = 0 if head is None else head.seq + 1
        return Entry(
            seq=seq,
            kind=kind,
            reservation=seq if reservation is None else reservation,
            task=task,
            delta_micro_usd=delta,
            total_micro_usd=(0 if head is None else head.total_micro_usd) + delta,
            at=self.clock(),
            nonce=secrets.token_hex(8),
        )

    # -- reserving ----------------------------------------------------------------------------
    def open_reservation(self, task: str, fingerprint: str) -> Reservation | None:
        """The task's reservation still held for this request (a retry or re-run reuses it)."""
        doc = self.store.read_json(self._task_key(task))
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
        held = self.open_reservation(task, fingerprint)
        if held is not None:
            log.info("DAG budget: %s reuses its reservation #%d of %.4f USD", task, held.seq, held.usd)
            return held
        self._drop_unsent(task)
        amount, cap = to_micro(usd), to_micro(cap_usd)

        def fits(head: Entry | None) -> Entry | None:
            committed = 0 if head is None else head.total_micro_usd
            return self._entry(head, "reserve", None, task, amount) if committed + amount <= cap else None

        entry, head = self.append(fits)
        if entry is None and self.reclaim_stale():
            entry, head = self.append(fits)
        committed = 0 if head is None else head.total_micro_usd
        if entry is None:
            self.store.write_json(
                self._task_key(task),
                {"state": "refused", "fingerprint": fingerprint, "micro_usd": amount, "committed": committed},
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

            {"committed_usd", "entries",
             "tasks": {"<task>": {"reserved_usd", "actual_usd", "released", "open", "refused"}}}

        ``reserved_usd`` sums the task's reservations, ``actual_usd`` what they were settled to
        (released ones add 0), ``open`` counts reservations not settled yet (in flight, or kept
        because the request may have been billed), ``refused`` whether its last try was refused.
        """
        tasks: dict[str, dict[str, Any]] = {}

        def row(task: str) -> dict[str, Any]:
            return tasks.setdefault(
                task, {"reserved_usd": 0.0, "actual_usd": 0.0, "released": 0, "open": 0, "refused": False}
            )

        entries = self.entries()
        amounts = {e.seq: e.delta_micro_usd for e in entries if e.kind == "reserve"}
        settled: dict[int, int] = {}
        for entry in entries:
            if entry.kind == "settle":
                settled[entry.reservation] = amounts.get(entry.reservation, 0) + entry.delta_micro_usd
        for entry in entries:
            if entry.kind != "reserve":
                continue
            item = row(entry.task)
            item["reserved_usd"] = to_usd(to_micro(item["reserved_usd"]) + entry.delta_micro_usd)
            if entry.seq not in settled:
                item["open"] += 1
            elif settled[entry.seq] == 0:
                item["released"] += 1
            else:
                item["actual_usd"] = to_usd(to_micro(item["actual_usd"]) + settled[entry.seq])
        for key in self.store.list_keys(join_key(self.prefix, "tasks")):
            doc = self.store.read_json(key)
            if isinstance(doc, Mapping) and doc.get("state") == "refused":
                task = next((e.task for e in entries if self._task_key(e.task) == key), None)
                row(task or key.rsplit("/", 1)[-1][: -len(".json")])["refused"] = True
        return {
            "committed_usd": to_usd(entries[-1].total_micro_usd) if entries else 0.0,
            "entries": len(entries),
            "tasks": tasks,
        }

    def _drop_unsent(self, task: str) -> None:
        """Release the task's open reservation for another request (the request changed before
        anything was sent), instead of leaving it for :meth:`reclaim_stale`."""
        doc = self.store.read_json(self._task_key(task))
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
        self.append(
            lambda head: self._entry(
                head, "settle", reservation.seq, reservation.task, actual - reservation.micro_usd
            )
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
        first = self.store.read_json(self._chain_key(0))
        if not isinstance(first, Mapping) or now - float(first["at"]) < self.reclaim_after:
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
    "RECLAIM_AFTER_SECONDS",
    "Entry",
    "Reservation",
    "RunLedger",
    "check_atomic",
    "ledger_store",
]
