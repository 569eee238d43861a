"""The reservation ledger on a real S3 API (moto server): conditional creates give one total order."""

from __future__ import annotations

import threading
import time

import pytest

from airflow_provider_aihubmix.exceptions import AIHubMixBudgetExceededError
from airflow_provider_aihubmix.pricing.reservation_chain import Request
from airflow_provider_aihubmix.pricing.reservations import RunLedger, check_atomic, ledger_store
from airflow_provider_aihubmix.storage.s3 import S3ObjectStore
from tests.fixtures.s3 import S3Bucket


def store_of(bucket: S3Bucket, uri: str | None = None) -> S3ObjectStore:
    return S3ObjectStore(uri or bucket.uri, client=bucket.client, max_attempts=3, retry_base_delay=0.05)


def test_conditional_put_creates_once_and_a_lost_answer_retried_is_ours(s3_bucket: S3Bucket) -> None:
    store = store_of(s3_bucket)
    assert store.create_json("x/a.json", {"by": "me"}) is True
    assert store.create_json("x/a.json", {"by": "other"}) is False
    # Our own create retried after its answer was lost finds our document: still True.
    assert store.create_json("x/a.json", {"by": "me"}) is True
    assert store.read_json("x/a.json") == {"by": "me"}
    check_atomic(store)


def test_folders_of_one_bucket_share_the_run_ledger(s3_bucket: S3Bucket) -> None:
    one = ledger_store(store_of(s3_bucket, f"s3://{s3_bucket.name}/images/a"))
    two = ledger_store(store_of(s3_bucket, f"s3://{s3_bucket.name}/other"))
    assert one.base_uri == two.base_uri == f"s3://{s3_bucket.name}"


def test_twenty_threads_reserving_at_once_admit_exactly_what_fits(s3_bucket: S3Bucket) -> None:
    store = ledger_store(store_of(s3_bucket))
    admitted: list[int] = []
    refused: list[str] = []
    gate = threading.Barrier(20)

    def task(i: int) -> None:
        led = RunLedger(store, "fan", "manual__s3")
        gate.wait()
        try:
            held = led.reserve(
                f"paint[{i}]", "fp", 0.04, cap_usd=0.2, describe_cap="DAG param 'max_cost_usd'"
            )
        except AIHubMixBudgetExceededError as err:
            refused.append(str(err))
        else:
            admitted.append(held.seq)

    threads = [threading.Thread(target=task, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(admitted) == 5 and len(refused) == 15
    assert all("caps the run at 0.2000 USD" in message for message in refused)
    entries = RunLedger(store, "fan", "manual__s3").entries()
    assert [e.seq for e in entries] == list(range(5)) and entries[-1].total_micro_usd == 200_000


@pytest.mark.parametrize("usd", [0.05])
def test_release_on_s3_lets_the_next_task_in(s3_bucket: S3Bucket, usd: float) -> None:
    led = RunLedger(ledger_store(store_of(s3_bucket)), "fan", "manual__rel")
    held = [led.reserve(f"t{i}", "fp", usd, cap_usd=0.15, describe_cap="cap") for i in range(3)]
    with pytest.raises(AIHubMixBudgetExceededError):
        led.reserve("t3", "fp", usd, cap_usd=0.15, describe_cap="cap")
    assert led.release(held[0])
    led.reserve("t3", "fp", usd, cap_usd=0.15, describe_cap="cap")


def test_one_slot_on_s3_decides_the_requests_pending_beside_it(s3_bucket: S3Bucket) -> None:
    led = RunLedger(ledger_store(store_of(s3_bucket)), "fan", "manual__comb")
    early = int(time.time() * 1000) - 10_000
    for i in range(3):  # three tasks posted their requests and have not combined yet
        req = Request(0, f"n{i}", "reserve", -1, 50_000, 150_000, early + i, f"paint[{i}]")
        led.store.write_json(f"{led.prefix}/pending/{req.name()}", {"task": f"paint[{i}]"})
    with pytest.raises(AIHubMixBudgetExceededError, match=r"0\.1500 USD is already committed"):
        led.reserve("late", "fp", 0.05, cap_usd=0.15, describe_cap="cap")
    assert led.chain.listed() == 1  # one conditional create decided all four
    fresh = RunLedger(ledger_store(store_of(s3_bucket)), "fan", "manual__comb")
    assert [(e.seq, e.task, e.total_micro_usd) for e in fresh.entries()] == [
        (0, "paint[0]", 50_000),
        (1, "paint[1]", 100_000),
        (2, "paint[2]", 150_000),
    ]
