"""Benchmark 9: 200 tasks reserving in one run's DAG-budget ledger at once (issue 22).

Each of ``--tasks`` threads opens its own :class:`RunLedger` on one store and, released together
by a barrier, reserves its estimate (``RunLedger.reserve``: list the chain, read the head, create
the next entry only if absent, re-read and try the next on a conflict). Two caps: one that fits
every task (the worst case: every reservation is admitted, so every one contends for the chain's
head) and one that fits 10 (the other 190 are refused after reading the head). Stores: ``file://``
(a temporary directory) and ``s3://`` on a moto server in its own process (one boto3 client,
``max_pool_connections`` = tasks). Figures: wall time from the barrier to the last answer, per-task
p50/p99, and a check that the chain's total never passes the cap.

    uv run --no-sync python benchmarks/bench_reservations.py [--tasks 200 --reps 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchlib as common
from bench_s3 import ACCESS_KEY, REGION, SECRET_KEY, _moto

from airflow_provider_aihubmix.engine.reservations import RunLedger
from airflow_provider_aihubmix.exceptions import AIHubMixBudgetExceededError
from airflow_provider_aihubmix.storage import LocalObjectStore
from airflow_provider_aihubmix.storage.base import ObjectStore
from airflow_provider_aihubmix.storage.s3 import S3ObjectStore

EST = 0.005


def fan_out(store: ObjectStore, run_id: str, tasks: int, fits: int) -> dict[str, Any]:
    cap = fits * EST + EST / 2
    gate = threading.Barrier(tasks + 1)
    took: list[float] = []
    admitted: list[int] = []
    lock = threading.Lock()

    def task(i: int) -> None:
        led = RunLedger(store, "bench", run_id)
        gate.wait()
        began = time.perf_counter()
        try:
            held = led.reserve(f"'paint[{i}]'", "fp", EST, cap_usd=cap, describe_cap="bench cap")
        except AIHubMixBudgetExceededError:
            held = None
        with lock:
            took.append(time.perf_counter() - began)
            if held is not None:
                admitted.append(held.seq)

    threads = [threading.Thread(target=task, args=(i,)) for i in range(tasks)]
    for thread in threads:
        thread.start()
    gate.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    entries = RunLedger(store, "bench", run_id).entries()
    assert len(admitted) == min(fits, tasks) == len(entries), (len(admitted), len(entries))
    assert max(e.total_micro_usd for e in entries) <= round(cap * 1_000_000)
    return {
        "wall_s": wall,
        "p50_s": common.percentile(took, 50),
        "p99_s": common.percentile(took, 99),
        "admitted": len(admitted),
    }


def s3_store(endpoint: str, tasks: int) -> S3ObjectStore:
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(max_pool_connections=tasks),
    )
    client.create_bucket(Bucket="ledger")
    return S3ObjectStore("s3://ledger", client=client)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--only", choices=("file", "s3"))
    opts = parser.parse_args()
    common.print_machine()
    moto, endpoint = _moto()
    results: dict[tuple[str, int], list[dict[str, Any]]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            stores: dict[str, ObjectStore] = {}
            if opts.only != "s3":
                stores["file://"] = LocalObjectStore(f"file://{tmp}")
            if opts.only != "file":
                stores["s3 (moto)"] = s3_store(endpoint, opts.tasks)
            for rep in range(opts.reps):
                for name, store in stores.items():
                    for fits in (opts.tasks, 10):
                        run = fan_out(store, f"rep{rep}-fits{fits}", opts.tasks, fits)
                        results.setdefault((name, fits), []).append(run)
                        print(
                            f"  rep {rep + 1} {name:10} fits {fits:4}: wall {run['wall_s']:.2f}s "
                            f"p50 {run['p50_s']:.3f}s p99 {run['p99_s']:.3f}s",
                            flush=True,
                        )
    finally:
        if moto.stdin:
            moto.stdin.close()
        moto.wait(timeout=20)
    print(f"\nresults: {opts.tasks} tasks reserving at once (medians of {opts.reps})")
    for (name, fits), runs in results.items():
        wall = common.median([r["wall_s"] for r in runs])
        p99 = common.median([r["p99_s"] for r in runs])
        print(f"  {name:10} cap fits {fits:4}: wall {wall:.2f}s, p99 per task {p99:.2f}s, 0 overspend")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
