"""Benchmark 9: 200 tasks reserving in one run's DAG-budget ledger at once (issue 22).

Each of ``--tasks`` threads opens its own :class:`RunLedger` on one store and, released together
by a barrier, reserves its estimate (``RunLedger.reserve``: post the request as a pending object,
then create the chain's next slot deciding every pending request seen, or read the slot another
task created and find the decision there). The baseline is the ledger before combining
(:func:`serial_reserve`, same requests as that code: one entry per slot, each task racing alone
for the next slot, re-reading and retrying on every lost race), run in the same process on the
same store. Two caps: one that fits
every task (the worst case: every reservation is admitted, so every one contends for the chain's
head) and one that fits 10 (the other 190 are refused after reading the head). Stores: ``file://``
(a temporary directory) and ``s3://`` on a moto server in its own process (one boto3 client,
``max_pool_connections`` = tasks). Figures: wall time from the barrier to the last answer, per-task
p50/p99, and a check that the chain's total never passes the cap.

    uv run --no-sync python benchmarks/bench_reservations.py [--tasks 200 --reps 3]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
import threading
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchlib as common
from bench_s3 import ACCESS_KEY, REGION, SECRET_KEY, _moto

from airflow_provider_aihubmix.exceptions import AIHubMixBudgetExceededError
from airflow_provider_aihubmix.pricing.reservations import RunLedger
from airflow_provider_aihubmix.storage import LocalObjectStore
from airflow_provider_aihubmix.storage.base import ObjectStore
from airflow_provider_aihubmix.storage.s3 import S3ObjectStore

EST = 0.005


def serial_reserve(store: ObjectStore, prefix: str, task: str, amount: int, cap: int) -> int | None:
    """The ledger before combining (the baseline): returns the admitted entry's seq, or None."""
    key = f"{prefix}/tasks/{task}.json"
    store.read_json(key)  # open_reservation
    store.read_json(key)  # _drop_unsent

    def slot(seq: int) -> str:
        return f"{prefix}/chain/{seq:09d}.json"

    def after(doc: dict[str, Any]) -> dict[str, Any]:
        while (nxt := store.read_json(slot(doc["seq"] + 1))) is not None:
            doc = nxt
        return doc

    def head() -> dict[str, Any] | None:
        seqs = sorted(int(k.rsplit("/", 1)[-1][:9]) for k in store.list_keys(f"{prefix}/chain"))
        for seq in reversed(seqs):
            doc = store.read_json(slot(seq))
            if doc is not None:
                return after(doc)
        return None

    top = head()
    while True:
        total = 0 if top is None else top["total"]
        if total + amount > cap:
            store.write_json(key, {"state": "refused"})
            return None
        seq = 0 if top is None else top["seq"] + 1
        if store.create_json(slot(seq), {"seq": seq, "task": task, "total": total + amount}):
            store.write_json(key, {"state": "reserved", "seq": seq})
            return seq
        taken = store.read_json(slot(seq))
        top = after(taken) if taken is not None else head()


def fan_out(
    store: ObjectStore, run_id: str, tasks: int, fits: int, *, baseline: bool = False
) -> dict[str, Any]:
    counts = count_requests(store)
    cap = fits * EST + EST / 2
    gate = threading.Barrier(tasks + 1)
    took: list[float] = []
    admitted: list[int] = []
    lock = threading.Lock()

    def task(i: int) -> None:
        led = RunLedger(store, "bench", run_id)
        gate.wait()
        began = time.perf_counter()
        seq: int | None
        if baseline:
            seq = serial_reserve(store, f"baseline/{run_id}", f"paint{i}", round(EST * 1e6), round(cap * 1e6))
        else:
            try:
                seq = led.reserve(f"'paint[{i}]'", "fp", EST, cap_usd=cap, describe_cap="bench cap").seq
            except AIHubMixBudgetExceededError:
                seq = None
        with lock:
            took.append(time.perf_counter() - began)
            if seq is not None:
                admitted.append(seq)

    threads = [threading.Thread(target=task, args=(i,)) for i in range(tasks)]
    for thread in threads:
        thread.start()
    gate.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    requests = sum(counts.values())
    if baseline:
        totals = [
            (store.read_json(f"baseline/{run_id}/chain/{seq:09d}.json") or {})["total"] for seq in admitted
        ]
    else:
        entries = RunLedger(store, "bench", run_id).entries()
        assert len(entries) == len(admitted), (len(admitted), len(entries))
        totals = [e.total_micro_usd for e in entries]
    assert len(admitted) == min(fits, tasks), len(admitted)
    assert max(totals) <= round(cap * 1_000_000)
    return {
        "wall_s": wall,
        "p50_s": common.percentile(took, 50),
        "p99_s": common.percentile(took, 99),
        "admitted": len(admitted),
        "requests_per_task": requests / tasks,
    }


def count_requests(store: ObjectStore) -> collections.Counter[str]:
    """Count the store calls made through ``store`` from now on (each one request on S3)."""
    for name in ("read_json", "write_json", "create_json", "list_keys", "delete", "exists"):
        store.__dict__.pop(name, None)  # a previous run's counter
    counts: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()
    for name in ("read_json", "write_json", "create_json", "list_keys", "delete", "exists"):
        call = getattr(store, name)

        def counted(*args: Any, _call: Any = call, _name: str = name, **kwargs: Any) -> Any:
            with lock:
                counts[_name] += 1
            return _call(*args, **kwargs)

        setattr(store, name, counted)
    return counts


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
    parser.add_argument("--no-baseline", action="store_true", help="skip the ledger before combining")
    parser.add_argument("--json", help="write the results here")
    opts = parser.parse_args()
    common.print_machine()
    moto, endpoint = _moto()
    results: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    kinds = ("combining",) if opts.no_baseline else ("baseline", "combining")
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
                        for kind in kinds:
                            run_id = f"rep{rep}-fits{fits}-{kind}"
                            run = fan_out(store, run_id, opts.tasks, fits, baseline=kind == "baseline")
                            results.setdefault((name, kind, fits), []).append(run)
                            print(
                                f"  rep {rep + 1} {name} {kind} fits {fits}: wall {run['wall_s']:.2f}s "
                                f"p50 {run['p50_s']:.3f}s p99 {run['p99_s']:.3f}s, "
                                f"{run['requests_per_task']:.1f} store calls per task",
                                flush=True,
                            )
    finally:
        if moto.stdin:
            moto.stdin.close()
        moto.wait(timeout=20)
    print(f"\nresults: {opts.tasks} tasks reserving at once (medians of {opts.reps})")
    table = []
    for (name, kind, fits), runs in results.items():
        wall = common.median([r["wall_s"] for r in runs])
        p99 = common.median([r["p99_s"] for r in runs])
        calls = common.median([r["requests_per_task"] for r in runs])
        base = results.get((name, "baseline", fits))
        ratio = (
            f", {common.median([r['wall_s'] for r in base]) / wall:.1f}x faster"
            if base and kind != "baseline"
            else ""
        )
        print(
            f"  {name:10} {kind:9} cap fits {fits:4}: wall {wall:.2f}s, p99 per task {p99:.2f}s, "
            f"{calls:.1f} calls/task{ratio}"
        )
        table.append(
            {"store": name, "kind": kind, "fits": fits, "wall_s": wall, "p99_s": p99, "calls_per_task": calls}
        )
    print(f"  load after: {os.getloadavg()}; 0 overspend in every run")
    if opts.json:
        with open(opts.json, "w") as out:
            json.dump(table, out, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
