"""The DAG budget's reservation ledger on a real file system: order, release, reuse, reclaim, stress."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_aihubmix.exceptions import AIHubMixBudgetExceededError, AtomicCreateUnsupportedError
from airflow_provider_aihubmix.pricing.reservation_chain import Request
from airflow_provider_aihubmix.pricing.reservations import (
    Reservation,
    RunLedger,
    check_atomic,
    ledger_store,
)
from airflow_provider_aihubmix.storage import LocalObjectStore

CAP = 0.035  # fits three purchases of 0.01 USD, not four
EST = 0.01


def ledger(root: Path, **kwargs: Any) -> RunLedger:
    return RunLedger(LocalObjectStore(root.as_uri()), "fan_out", "manual__1", **kwargs)


def reserve(
    led: RunLedger, task: str, usd: float = EST, cap: float = CAP, fingerprint: str = "fp"
) -> Reservation:
    return led.reserve(task, fingerprint, usd, cap_usd=cap, describe_cap="DAG param 'max_cost_usd'")


def test_local_create_json_is_create_if_absent(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path.as_uri())
    assert store.create_json("a/b.json", {"n": 1}) is True
    assert store.create_json("a/b.json", {"n": 2}) is False
    assert store.read_json("a/b.json") == {"n": 1}
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["b.json"]  # no temporary left
    check_atomic(store)


def test_refusal_names_task_cap_committed_and_estimate(tmp_path: Path) -> None:
    led = ledger(tmp_path)
    for i in range(3):
        reserve(led, f"'paint[{i}]'")
    with pytest.raises(AIHubMixBudgetExceededError) as caught:
        reserve(led, "'paint[3]'")
    message = str(caught.value)
    for part in ("'paint[3]'", "0.0350 USD", "0.0300 USD is already committed", "estimate is 0.0100 USD"):
        assert part in message
    assert caught.value.param == "max_cost_usd"


def test_release_lets_a_later_task_buy_and_actual_replaces_estimate(tmp_path: Path) -> None:
    led = ledger(tmp_path)
    held = [reserve(led, f"t{i}") for i in range(3)]
    assert led.release(held[1]) is True
    assert led.release(held[1]) is False  # settled once
    fourth = reserve(led, "t3")
    assert led.settle(fourth, 0.004) is True  # cheaper than estimated: 0.024 committed
    reserve(led, "t4")  # 0.034
    with pytest.raises(AIHubMixBudgetExceededError):
        reserve(led, "t5")
    head = led.head()
    assert head is not None and head.total_micro_usd == 34_000
    kinds = [(e.kind, e.task, e.delta_micro_usd) for e in led.entries()]
    assert kinds[:3] == [("reserve", "t0", 10_000), ("reserve", "t1", 10_000), ("reserve", "t2", 10_000)]
    assert kinds[3:] == [
        ("settle", "t1", -10_000),
        ("reserve", "t3", 10_000),
        ("settle", "t3", -6_000),
        ("reserve", "t4", 10_000),
    ]


def test_report_shows_reservations_actual_and_refusals_per_task(tmp_path: Path) -> None:
    led = ledger(tmp_path)
    held = [reserve(led, f"t{i}") for i in range(3)]
    led.settle(held[0], 0.004)
    led.release(held[1])
    reserve(led, "t3")
    reserve(led, "t4")  # 0.034 of 0.035
    with pytest.raises(AIHubMixBudgetExceededError):
        reserve(led, "t5")
    report = led.report()
    assert report["committed_usd"] == 0.034 and report["entries"] == 7
    assert report["held_usd"] == 0.03 and report["refusals"] == 1
    tasks = report["tasks"]
    assert tasks["t0"] == {
        "reserved_usd": 0.01,
        "actual_usd": 0.004,
        "released": 0,
        "open": 0,
        "refused": False,
        "reservations": [{"seq": 0, "usd": 0.01, "state": "replaced_by_actual", "actual_usd": 0.004}],
    }
    assert tasks["t1"]["reservations"] == [{"seq": 1, "usd": 0.01, "state": "released", "actual_usd": 0.0}]
    assert tasks["t2"]["reservations"] == [{"seq": 2, "usd": 0.01, "state": "held", "actual_usd": None}]
    assert tasks["t1"]["released"] == 1 and tasks["t1"]["actual_usd"] == 0.0
    assert tasks["t2"]["open"] == 1 and tasks["t3"]["open"] == 1
    assert tasks["t5"]["refused"] is True and tasks["t5"]["reserved_usd"] == 0.0


def test_a_retry_reuses_its_reservation_and_a_new_request_does_not(tmp_path: Path) -> None:
    led = ledger(tmp_path)
    first = reserve(led, "t0")
    assert reserve(led, "t0") == first  # the retry: no second reservation
    assert len(led.entries()) == 1
    led.release(first)
    again = reserve(led, "t0")  # released (a non-billing error): the retry reserves anew
    assert again.seq != first.seq


def test_a_changed_request_releases_the_unsent_reservation_of_the_old_one(tmp_path: Path) -> None:
    led = ledger(tmp_path)
    old = reserve(led, "t0", fingerprint="old")
    sent = reserve(led, "t1", fingerprint="x")
    assert led.mark_sending(sent)
    reserve(led, "t0", fingerprint="new")  # the old one was never sent: released first
    reserve(led, "t1", fingerprint="y")  # t1's was sent: kept (it may be billed)
    head = led.head()
    assert head is not None and head.total_micro_usd == 30_000
    assert led.mark_sending(old) is False


def test_a_reservation_never_sent_is_reclaimed_after_the_lease(tmp_path: Path) -> None:
    now = [1000.0]
    led = ledger(tmp_path, clock=lambda: now[0], reclaim_after=60)
    dead = [reserve(led, f"t{i}") for i in range(3)]
    assert led.mark_sending(dead[0]) is True  # t0 sent: its money stays
    with pytest.raises(AIHubMixBudgetExceededError):
        reserve(led, "t3")  # within the lease nothing is reclaimed
    now[0] += 61
    reserve(led, "t3")  # t1 and t2 never sent: reclaimed, t3 fits
    assert led.mark_sending(dead[1]) is False  # the slow owner must reserve again before sending
    assert led.mark_sending(dead[0]) is True  # a retry of the sender still owns its reservation


def test_a_store_that_ignores_the_condition_is_refused_by_name(tmp_path: Path) -> None:
    class Ignoring(LocalObjectStore):
        def create_json(self, key: str, obj: Any) -> bool:
            self.write_json(key, obj)
            return True

    store = Ignoring((tmp_path / "x").as_uri())
    with pytest.raises(AtomicCreateUnsupportedError, match=r"store file://.*/x .*ignores the condition"):
        check_atomic(store)


def test_ledger_store_is_the_task_store_for_file(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path.as_uri())
    assert ledger_store(store) is store
    assert ledger_store(store, (tmp_path / "shared").as_uri()).base_uri.endswith("/shared")


# -- stress: threads and processes hammering one ledger --------------------------------------------


def _hammer(root: str, round_no: int, worker: int, tasks: int) -> list[int]:
    led = RunLedger(LocalObjectStore(Path(root).as_uri()), "stress", f"round_{round_no}")
    admitted = []
    for i in range(tasks):
        try:
            held = reserve(led, f"w{worker}-{i}", cap=0.05)
        except AIHubMixBudgetExceededError:
            continue
        admitted.append(held.micro_usd)
        if i % 3 == 0:
            led.release(held)  # a non-billing error: money back, someone else may use it
            admitted.pop()
    return admitted


def _check_round(root: Path, round_no: int) -> None:
    led = RunLedger(LocalObjectStore(root.as_uri()), "stress", f"round_{round_no}")
    total = 0
    for entry in led.entries():
        total += entry.delta_micro_usd
        assert entry.total_micro_usd == total
        assert total <= 50_000, f"round {round_no}: overspend at entry {entry.seq}"
    assert [e.seq for e in led.entries()] == list(range(len(led.entries())))


def test_stress_threads_and_processes_never_overspend(tmp_path: Path) -> None:
    rounds = 100
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        for round_no in range(rounds):
            procs = [pool.apply_async(_hammer, (str(tmp_path), round_no, w, 4)) for w in range(2)]
            results: list[list[int]] = []

            def run(worker: int, round_no: int = round_no, results: list[list[int]] = results) -> None:
                results.append(_hammer(str(tmp_path), round_no, worker, 4))

            threads = [threading.Thread(target=run, args=(w,)) for w in range(2, 6)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            results += [p.get(timeout=60) for p in procs]
            assert sum(map(sum, results)) <= 50_000
            _check_round(tmp_path, round_no)


# -- combining: one slot decides every pending request it sees ------------------------------------


def _post(led: RunLedger, task: str, micro: int, cap: int, at_ms: int) -> str:
    """A task that posted its request and has not combined yet (asleep, or dead)."""
    req = Request(0, f"n{task}", "reserve", -1, micro, cap, int(time.time() * 1000) - 10_000 + at_ms, task)
    led.store.write_json(f"{led.prefix}/pending/{req.name()}", {"task": task})
    return req.nonce


def test_one_slot_decides_every_pending_request_in_posting_order(tmp_path: Path) -> None:
    led = ledger(tmp_path)
    posted = [_post(led, f"'paint[{i}]'", 10_000, 35_000, at_ms=i) for i in range(4)]
    with pytest.raises(AIHubMixBudgetExceededError, match=r"0\.0300 USD is already committed"):
        reserve(led, "late")  # posted last: decided after the four, and refused by the cap
    assert [(e.task, e.total_micro_usd) for e in led.entries()] == [
        ("'paint[0]'", 10_000),
        ("'paint[1]'", 20_000),
        ("'paint[2]'", 30_000),
    ]
    assert led.chain.listed() == 1  # one slot decided all five
    slot = led.chain.slot(0)
    assert slot is not None and len(slot["decided"]) == 5 and len(slot["refused"]) == 2
    assert (
        not led.store.list_keys(f"{led.prefix}/pending")
        or len(led.store.list_keys(f"{led.prefix}/pending")) == 4
    )
    assert posted


def test_a_pending_request_is_decided_once_and_its_leftover_listing_is_ignored(tmp_path: Path) -> None:
    led = ledger(tmp_path)
    _post(led, "'paint[0]'", 10_000, 35_000, at_ms=0)  # its owner died after posting
    first = reserve(led, "t1")
    assert [e.task for e in led.entries()] == ["'paint[0]'", "t1"] and first.seq == 1
    second = reserve(led, "t2")  # the dead owner's request is still listed: not decided again
    assert [e.task for e in led.entries()] == ["'paint[0]'", "t1", "t2"] and second.seq == 2
    assert led.chain.listed() == 2  # two slots: the first decided two requests
    assert led.head() is not None and led.head().total_micro_usd == 30_000  # type: ignore[union-attr]


def test_a_fresh_ledger_reads_slots_that_decide_several_entries(tmp_path: Path) -> None:
    led = ledger(tmp_path)
    _post(led, "a", 10_000, 35_000, at_ms=0)
    held = reserve(led, "b")
    led.settle(held, 0.004)
    other = ledger(tmp_path)  # another process: nothing cached
    assert [(e.kind, e.task, e.total_micro_usd) for e in other.entries()] == [
        ("reserve", "a", 10_000),
        ("reserve", "b", 20_000),
        ("settle", "b", 14_000),
    ]
    assert reserve(other, "c").seq == 3
    with pytest.raises(AIHubMixBudgetExceededError, match=r"0\.0240 USD is already committed"):
        reserve(other, "d", usd=0.012)


@pytest.mark.parametrize(
    ("task", "in_name"), [("'paint[3]'", True), ("dag.t/x y~z", True), ("é" * 80, False)]
)
def test_a_request_name_carries_every_field(task: str, in_name: bool) -> None:
    req = Request(7, "abcd", "settle", 12, -3_000, -1, 1_700_000_000_000, task)
    parsed = Request.parse(req.name())
    assert parsed is not None
    expected = task if in_name else None  # too long a label is read from the request's body
    assert parsed == Request(7, "abcd", "settle", 12, -3_000, -1, 1_700_000_000_000, expected)


def test_a_pending_request_with_a_long_label_is_decided_from_its_body(tmp_path: Path) -> None:
    led = ledger(tmp_path)
    _post(led, "é" * 80, 10_000, 35_000, at_ms=0)
    reserve(led, "t1")
    assert [e.task for e in led.entries()] == ["é" * 80, "t1"]


def test_a_listing_that_lags_the_creates_still_finds_the_head_and_every_entry(tmp_path: Path) -> None:
    class Lagging(LocalObjectStore):
        def list_keys(self, prefix: str) -> list[str]:
            return [] if prefix.endswith("/chain") else super().list_keys(prefix)

    reserve(ledger(tmp_path), "t0")
    reserve(ledger(tmp_path), "t1")
    lagging = RunLedger(Lagging(tmp_path.as_uri()), "fan_out", "manual__1")
    head = lagging.head()
    assert head is not None and head.total_micro_usd == 20_000
    assert [e.task for e in lagging.entries()] == ["t0", "t1"]
    assert reserve(lagging, "t2").seq == 2
