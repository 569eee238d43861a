"""The reservation ledger's chain: one total order of money changes, decided in combined rounds.

Every change to a run's committed money (a reservation, or its settlement) is an :class:`Entry`
with a dense sequence number and the running total after it. Entries are stored in **slots**:
slot ``k`` is the object ``chain/<k>.json``, created only if absent
(:meth:`~airflow_provider_aihubmix.storage.base.ObjectStore.create_json`: S3 ``If-None-Match: *``,
a hard link on ``file://``), and it holds the entries (and refusals) decided in that round.

Combining (why a fan-out is fast): a task does not race alone for the next slot. It first posts
its request as ``pending/<name>.json`` -- every field it needs in the object's *name*, so one
listing reads all pending requests -- and then tries to create the next slot with **every**
pending request it sees that no slot has decided yet (its own always included), deciding them in
the slot's order: settlements first, then reservations, each admitted only if the running total
stays within its cap, else recorded as refused. Whoever wins the slot decides for everyone in it;
a loser reads the winning slot and is done when its request is in it, else it tries the next one.
So 200 tasks starting together are decided in a few rounds instead of 200 serial ones, with the
same guarantees: slots are created once and never change, so every task reads the same order,
and each entry's total is computed from the slot before it -- never above a reservation's cap.

Why a request is decided at most once: a request names ``after``, the number of slots its owner
saw listed before posting it. A slot that decides it was created after it was posted, so its
index is ``>= after``; a combiner reads every slot from ``after`` up to the one it creates and
leaves out requests already decided there; the create of that slot succeeds only if no one else
created it meanwhile. Owners delete their pending request once decided (a combiner deletes
decided ones left behind by a dead owner), so the listing stays short.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from airflow_provider_aihubmix.storage import join_key
from airflow_provider_aihubmix.storage.base import ObjectStore

MICRO = 1_000_000
#: A task label longer than this (quoted) is read from the pending request's body, not its name.
_NAME_TASK_LIMIT = 120
#: Decided pending requests older than this are deleted by any combiner (their owner died).
_LEFTOVER_SECONDS = 60.0


def to_micro(usd: float) -> int:
    return round(usd * MICRO)


def to_usd(micro: int) -> float:
    return round(micro / MICRO, 6)


@dataclass(frozen=True)
class Entry:
    """One money change of the chain (``seq`` dense from 0; ``total`` the committed money after it)."""

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
class Request:
    """A pending money change, every field in its object name (``task`` None: read the body)."""

    after: int
    nonce: str
    kind: str  # "reserve" or "settle"
    reservation: int  # -1 for a reserve
    delta: int
    cap: int  # -1 for a settle (no cap)
    at_ms: int
    task: str | None

    def name(self) -> str:
        task = quote(self.task or "", safe="")
        if len(task) > _NAME_TASK_LIMIT:
            task = "*"
        fields = (
            f"{self.after:09d}",
            self.nonce,
            self.kind,
            self.reservation,
            self.delta,
            self.cap,
            self.at_ms,
        )
        return ".".join(str(f) for f in fields) + "." + task + ".json"

    @classmethod
    def parse(cls, name: str) -> Request | None:
        parts = name.removesuffix(".json").split(".", 7)
        if len(parts) != 8 or parts[2] not in ("reserve", "settle"):
            return None
        try:
            after, reservation, delta, cap, at_ms = (int(parts[i]) for i in (0, 3, 4, 5, 6))
        except ValueError:
            return None
        task = None if parts[7] == "*" else unquote(parts[7])
        return cls(after, parts[1], parts[2], reservation, delta, cap, at_ms, task)


class Chain:
    """The chain of one run's ledger under ``prefix`` of ``store`` (see the module docstring).

    Slots are immutable once created, so this instance caches those it has read.
    """

    def __init__(self, store: ObjectStore, prefix: str, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.prefix = prefix
        self.clock = clock
        self._slots: dict[int, Mapping[str, Any]] = {}
        self._decided: dict[str, int] = {}  # request nonce -> slot that decided it
        self._free = 0  # a lower bound of the first slot not created yet

    def _slot_key(self, slot: int) -> str:
        return join_key(self.prefix, "chain", f"{slot:09d}.json")

    def _pending_folder(self) -> str:
        return join_key(self.prefix, "pending")

    def slot(self, slot: int) -> Mapping[str, Any] | None:
        """Slot ``slot``'s document (None while it does not exist)."""
        if slot in self._slots:
            return self._slots[slot]
        doc = self.store.read_json(self._slot_key(slot))
        if not isinstance(doc, Mapping):
            return None
        self._learn(slot, doc)
        return doc

    def _learn(self, slot: int, doc: Mapping[str, Any]) -> None:
        self._slots[slot] = doc
        for nonce in doc.get("decided", ()):
            self._decided[str(nonce)] = slot
        self._free = max(self._free, slot + 1)

    def listed(self) -> int:
        """How many slots a listing shows (a lower bound: a listing may lag a create)."""
        keys = self.store.list_keys(join_key(self.prefix, "chain"))
        seqs = [int(k.rsplit("/", 1)[-1].split(".")[0]) for k in keys if k.endswith(".json")]
        self._free = max([self._free, *(s + 1 for s in seqs)])
        return self._free

    def advance(self) -> int:
        """The first slot not created yet, reading forward from what is known."""
        while self.slot(self._free) is not None:
            pass
        return self._free

    def ensure_read(self, first: int, end: int) -> None:
        for slot in range(max(first, 0), end):
            if slot not in self._slots:
                self.slot(slot)

    def tail(self, end: int) -> tuple[int, int]:
        """(the next entry seq, the committed total) after the slots before ``end``."""
        if end == 0:
            return 0, 0
        doc = self.slot(end - 1)
        assert doc is not None, "a slot before the first free one exists"
        return int(doc["next_seq"]), int(doc["total_micro_usd"])

    def entries(self) -> list[Entry]:
        """Every entry in order (listing the slots, then reading forward past any listing lag)."""
        self.ensure_read(0, self.listed())
        end = self.advance()
        self.ensure_read(0, end)
        return [Entry.of(item) for slot in range(end) for item in self._slots[slot].get("entries", ())]

    def head(self) -> Entry | None:
        """The latest entry (None for an empty ledger)."""
        if not self._free:
            self.listed()
        end = self.advance()  # reads past a listing that lags a create
        for slot in range(end - 1, -1, -1):
            doc = self.slot(slot)
            if doc and doc.get("entries"):
                return Entry.of(doc["entries"][-1])
        return None

    # -- deciding a request ------------------------------------------------------------------
    def submit(
        self, kind: str, task: str, delta: int, *, reservation: int = -1, cap: int = -1
    ) -> dict[str, Any]:
        """Post a request and return its decision once a slot holds it: an entry's dict (with
        ``"request"``) when admitted, or ``{"request", "task", "micro_usd", "committed",
        "refused": True}`` when a reservation did not fit its ``cap``.

        A reservation that does not fit even the committed total already decided is refused
        without posting (as the ledger before combining did: a refusal never adds money, so it
        needs no place in the order), which keeps a fan-out past its cap as cheap as one read.
        """
        # A lower bound of the slots made (a listing may lag): enough to refuse early, as the
        # committed total only grows by reservations; the slot that decides reads past it.
        after = self._free or self.listed()
        if kind == "reserve":
            committed = self.tail(after)[1]
            if committed + delta > cap:
                return {
                    "request": None,
                    "task": task,
                    "micro_usd": delta,
                    "committed": committed,
                    "refused": True,
                }
        request = Request(
            after, secrets.token_hex(8), kind, reservation, delta, cap, int(self.clock() * 1000), task
        )
        key = join_key(self._pending_folder(), request.name())
        self.store.write_json(key, {"task": task})
        while True:
            # A look before combining: a listing of the pending requests costs more than a read.
            free = self.advance()
            if request.nonce in self._decided:
                break
            doc = self._combine(free, self._pending(request, task, free))
            if self.store.create_json(self._slot_key(free), doc):
                self._learn(free, doc)
                break
        self.store.delete(key)
        decided = self._slots[self._decided[request.nonce]]
        for item in (*decided.get("entries", ()), *decided.get("refused", ())):
            if item.get("request") == request.nonce:
                return dict(item)
        raise AssertionError(f"slot {self._decided[request.nonce]} decides {request.nonce} but holds no item")

    def _pending(self, own: Request, task: str, free: int) -> list[tuple[Request, str]]:
        """Undecided pending requests (own included) as of the slots before ``free``, with their
        task labels, in deciding order."""
        found: dict[str, tuple[Request, str]] = {own.nonce: (own, task)}
        listed: list[tuple[str, Request]] = []
        for key in self.store.list_keys(self._pending_folder()):
            parsed = Request.parse(key.rsplit("/", 1)[-1])
            if parsed is not None and parsed.nonce != own.nonce:
                listed.append((key, parsed))
        if listed:
            self.ensure_read(min(r.after for _, r in listed), free)
        now = self.clock()
        for key, req in listed:
            slot = self._decided.get(req.nonce)
            if slot is not None:
                if now - float(self._slots[slot].get("at", now)) > _LEFTOVER_SECONDS:
                    self.store.delete(key)  # decided, its owner gone: keep the listing short
                continue
            label = req.task
            if label is None:
                body = self.store.read_json(key)
                if not isinstance(body, Mapping):
                    continue  # deleted meanwhile: its owner saw it decided
                label = str(body.get("task"))
            found[req.nonce] = (req, label)
        # Settlements first (they only give money back or record what was spent), then by posting.
        return sorted(
            found.values(), key=lambda pair: (pair[0].kind != "settle", pair[0].at_ms, pair[0].nonce)
        )

    def _combine(self, free: int, pending: list[tuple[Request, str]]) -> dict[str, Any]:
        seq, total = self.tail(free)
        now = self.clock()
        entries: list[dict[str, Any]] = []
        refused: list[dict[str, Any]] = []
        for req, task in pending:
            if req.kind == "reserve" and total + req.delta > req.cap:
                refused.append(
                    {
                        "request": req.nonce,
                        "task": task,
                        "micro_usd": req.delta,
                        "committed": total,
                        "refused": True,
                    }
                )
                continue
            total += req.delta
            entry = Entry(
                seq=seq,
                kind=req.kind,
                reservation=seq if req.kind == "reserve" else req.reservation,
                task=task,
                delta_micro_usd=req.delta,
                total_micro_usd=total,
                at=req.at_ms / 1000,
                nonce=req.nonce,
            )
            entries.append({**entry.as_dict(), "request": req.nonce})
            seq += 1
        return {
            "slot": free,
            "at": now,
            "entries": entries,
            "refused": refused,
            "decided": [req.nonce for req, _ in pending],
            "next_seq": seq,
            "total_micro_usd": total,
        }


__all__ = ["MICRO", "Chain", "Entry", "Request", "to_micro", "to_usd"]
