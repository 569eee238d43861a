"""Benchmark 8: a mapped fan-out on the two-worker Celery cluster, against its ideal.

The cluster of the distributed tests (``tests/distributed/cluster.py``: CeleryExecutor,
PostgreSQL, Redis, two workers of ``--concurrency`` slots that share no disk, two triggerers,
images on a moto S3 server) runs one DAG run of ``--sync`` synchronous generations, whose
answers the sandbox holds ``--sync-latency`` seconds, and ``--flux`` deferrable Flux
generations, whose tasks take ``--flux-latency`` seconds. Alongside, a probe DAG defers
``--probes`` light triggers that measure how late the triggerers' event loops wake them.

Figures:

* **wall time vs ideal** -- from the first generation starting to the last ending, against
  ``ceil(sync / slots) * sync_latency`` (sync generations hold a slot for their latency, in
  waves of the cluster's slots) or the Flux latency if longer (deferred waits hold no slot);
* **worker-slot seconds** -- time each task spent in state ``running`` (audit-log rows), per
  sync and per Flux task: a deferred Flux wait should cost seconds, not its latency;
* **triggerer loop lag** -- p50/p99/max lateness of the probes;
* **where a sync task's time goes** (medians per task) -- from Airflow's ``task_instance`` row and
  the task's manifest (its transitions are timestamped): *waiting* (queued until a worker slot
  starts it), *start-up* (slot start to the provider's first manifest write: process start, DAG
  parse, imports, the operator's checks), *request* (the billable call, minus the sandbox's
  latency: the provider's send and answer read), *store* (images, thumbnails and manifest to S3),
  *finish* (the complete manifest to the task's end: XCom, lineage, state update, exit);
* **slot hand-over** -- for every sync task already queued when a spell (a task's end, or a
  deferral) ended on the worker it then ran on, the seconds from the latest such end to its start
  (scheduler loop, Celery dispatch, the task process starting before Airflow records it
  ``running``): time a slot sits idle while work waits, against the packing bound
  ``busy slot-seconds / slots``.

    uv run --no-sync python benchmarks/bench_cluster.py [--sync 100 --flux 100]

About 1-2 minutes to start the cluster, then the run (~5 min for 200 tasks on 2 idle cores).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import shutil
import sys
import tempfile
import textwrap
import time
import uuid
from datetime import datetime
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchlib as common

FLUX = "bfl/flux-2-pro"
SYNC_MODELS = ("qianfan/qwen-image", "openai/gpt-image-1.5")
PROBE_DAG = textwrap.dedent(
    '''
    """Triggerer loop-lag probes (benchmarks/bench_cluster.py)."""

    from __future__ import annotations

    from airflow.sdk import dag, task

    from aihubmix_loop_probe import LoopLagProbe


    @dag(dag_id="bench_loop_probe", schedule=None, catchup=False, max_active_tasks=256)
    def bench_loop_probe() -> None:
        @task
        def delays(**context):
            return list(context["dag_run"].conf["delays"])

        LoopLagProbe.partial(task_id="probe").expand(delay_s=delays())


    bench_loop_probe()
    '''
)


def running_spells(cluster: Any, dag_id: str, run_id: str) -> dict[int, list[tuple[datetime, datetime]]]:
    """Each task's spells in ``running`` (audit-log rows: from ``running`` to the next row), by map index."""
    rows = cluster.query_db(
        "SELECT map_index, event, dttm FROM log WHERE dag_id = %s AND run_id = %s AND task_id = 'generate' "
        "ORDER BY id",
        (dag_id, run_id),
    )
    by_index: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        by_index.setdefault(int(row["map_index"]), []).append(row)
    return {
        index: [(a["dttm"], b["dttm"]) for a, b in itertools.pairwise(events) if a["event"] == "running"]
        for index, events in by_index.items()
    }


def read_manifests(s3: Any, bucket: str) -> dict[int, dict[str, Any]]:
    """Every ``generate`` task's manifest, by map index."""
    found: dict[int, dict[str, Any]] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            if item["Key"].endswith("/manifest.json"):
                body = json.loads(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
                if body.get("task_id") == "generate":
                    found[int(body.get("map_index", -1))] = body
    return found


def hand_over_gaps(
    tis: list[dict[str, Any]], spells: dict[int, list[tuple[datetime, datetime]]], indexes: range
) -> list[float]:
    """For each task of ``indexes`` (one spell each: the sync ones) that was queued when a spell
    ended on the worker it then ran on: seconds from that end to its start (see the docstring).
    A deferral ends a spell too. A task's spells count on the worker ``task_instance`` names."""
    host = {int(ti["map_index"]): ti["hostname"] for ti in tis}
    ends: dict[str, list[datetime]] = {}
    for index, runs in spells.items():
        ends.setdefault(host.get(index) or "", []).extend(end for _, end in runs)
    gaps: list[float] = []
    for ti in tis:
        index = int(ti["map_index"])
        if index not in indexes or len(spells.get(index, [])) != 1 or not ti["queued_dttm"]:
            continue
        start = spells[index][0][0]
        before = [end for end in ends.get(ti["hostname"] or "", []) if ti["queued_dttm"] <= end <= start]
        if before:
            gaps.append((start - max(before)).total_seconds())
    return gaps


def phases(ti: dict[str, Any], manifest: dict[str, Any] | None, latency: float) -> dict[str, float] | None:
    """Seconds of one sync task spent in each phase (see the module docstring), or None."""
    if manifest is None or not ti.get("start_date") or not ti.get("end_date") or not ti.get("queued_dttm"):
        return None
    at: dict[str, datetime] = {}
    for attempt in manifest.get("attempts", []):
        at.setdefault(attempt["status"], datetime.fromisoformat(attempt["at"]))
    if not {"submitting", "received", "complete"} <= at.keys():
        return None
    return {
        "waiting": (ti["start_date"] - ti["queued_dttm"]).total_seconds(),
        "start_up": (at["submitting"] - ti["start_date"]).total_seconds(),
        "request": (at["received"] - at["submitting"]).total_seconds() - latency,
        "store": (at["complete"] - at["received"]).total_seconds(),
        "finish": (ti["end_date"] - at["complete"]).total_seconds(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sync", type=int, default=100)
    parser.add_argument("--flux", type=int, default=100)
    parser.add_argument("--sync-latency", type=float, default=10.0)
    parser.add_argument("--flux-latency", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=4, help="slots per Celery worker")
    parser.add_argument("--probes", type=int, default=20)
    opts = parser.parse_args()
    sys.path.insert(0, common.ROOT)
    from moto.server import ThreadedMotoServer

    from tests.distributed.cluster import WORKERS, CeleryCluster
    from tests.distributed.evidence import request
    from tests.distributed.services import PostgresServer, RedisServer
    from tests.fixtures.s3 import aws_connection_json, make_s3_client

    common.print_machine()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    bucket = f"bench-cluster-{uuid.uuid4().hex[:8]}"
    make_s3_client(endpoint).create_bucket(Bucket=bucket)
    postgres, redis = PostgresServer(), RedisServer()
    dags = tempfile.mkdtemp(prefix="bench-cluster-dags-")
    shutil.copy(os.path.join(common.ROOT, "tests/distributed/dags/distributed_generate.py"), dags)
    with open(os.path.join(dags, "bench_loop_probe.py"), "w") as handle:
        handle.write(PROBE_DAG)
    requests = [request(FLUX, i, deferrable=True) for i in range(opts.flux)]
    requests += [request(SYNC_MODELS[i % 2], opts.flux + i) for i in range(opts.sync)]
    cluster: Any = None
    try:
        postgres.start()
        redis.start()
        with common.sandbox_process("--task-delay", str(opts.flux_latency)) as sandbox:
            client = sandbox.client()
            client.inject(
                kind="slow",
                delay_s=opts.sync_latency,
                method="POST",
                path=r"^/v1/models/(?!bfl/).*/predictions$",
            )
            env = {
                "AIRFLOW_CONN_AIHUBMIX_DEFAULT": common.aihubmix_conn_json(sandbox.base_url),
                "AIRFLOW_CONN_AWS_DEFAULT": aws_connection_json(endpoint),
                "AIHUBMIX_OUTPUT_URI": f"s3://{bucket}/images",
            }
            cluster = CeleryCluster(
                dags, postgres=postgres, redis=redis, extra_env=env, worker_concurrency=opts.concurrency
            )
            print(f"starting the cluster (home {cluster.home})", flush=True)
            with cluster:
                print(f"  started in {cluster.timings['start']:.0f} s", flush=True)
                # Probes first, all deferred before the fan-out starts, waking at moments spread
                # over the expected run: otherwise they queue for worker slots behind it.
                waves = math.ceil(opts.sync / (2 * opts.concurrency))
                spread = 3 * max(opts.flux_latency, opts.sync_latency * waves)
                delays = [20 + spread * k / max(1, opts.probes - 1) for k in range(opts.probes)]
                probe_run = cluster.trigger_dag("bench_loop_probe", conf={"delays": delays}, timeout=180)
                probes = cluster.observe("bench_loop_probe", probe_run, interval=1.0)
                probes.wait_until(
                    lambda o: (
                        sum(o.saw(f"probe[{i}]", "deferred") for i in range(opts.probes)) == opts.probes
                    ),
                    600,
                    "every probe deferred",
                )
                began = time.monotonic()
                run_id = cluster.trigger_dag("distributed_generate", conf={"requests": requests}, timeout=180)
                generation = cluster.observe("distributed_generate", run_id, interval=2.0)
                state = generation.wait_for_finish(timeout=3600)
                elapsed = time.monotonic() - began
                probe_state = probes.wait_for_finish(600 + spread)
                manifests = read_manifests(make_s3_client(endpoint), bucket)
                return report(
                    cluster, opts, run_id, probe_run, state, probe_state, elapsed, WORKERS, manifests
                )
    finally:
        if cluster is not None:
            cluster.cleanup()
        postgres.stop()
        redis.stop()
        moto.stop()
        shutil.rmtree(dags, ignore_errors=True)


def report(
    cluster: Any,
    opts: argparse.Namespace,
    run_id: str,
    probe_run: str,
    state: str,
    probe_state: str,
    elapsed: float,
    workers: tuple[str, ...],
    manifests: dict[int, dict[str, Any]],
) -> int:
    tis = cluster.query_db(
        "SELECT map_index, state, hostname, queued_dttm, start_date, end_date FROM task_instance "
        "WHERE dag_id = 'distributed_generate' AND run_id = %s AND task_id = 'generate'",
        (run_id,),
    )
    starts = [ti["start_date"] for ti in tis if ti["start_date"]]
    ends = [ti["end_date"] for ti in tis if ti["end_date"]]
    wall = (max(ends) - min(starts)).total_seconds()
    slots = 2 * opts.concurrency
    ideal = max(opts.flux_latency, math.ceil(opts.sync / slots) * opts.sync_latency)
    spells = running_spells(cluster, "distributed_generate", run_id)
    seconds = {
        index: sum((end - start).total_seconds() for start, end in runs) for index, runs in spells.items()
    }
    gaps = hand_over_gaps(tis, spells, range(opts.flux, opts.flux + opts.sync))
    flux_s = [seconds.get(i, 0.0) for i in range(opts.flux)]
    sync_s = [seconds.get(i, 0.0) for i in range(opts.flux, opts.flux + opts.sync)]
    lags = [
        float(json.loads(row["value"])) if isinstance(row["value"], (str, bytes)) else float(row["value"])
        for row in cluster.query_db(
            "SELECT value FROM xcom WHERE dag_id = 'bench_loop_probe' AND run_id = %s AND task_id = 'probe'",
            (probe_run,),
        )
    ]
    sync_phases = [
        p
        for ti in tis
        if opts.flux <= int(ti["map_index"]) < opts.flux + opts.sync
        and (p := phases(ti, manifests.get(int(ti["map_index"])), opts.sync_latency)) is not None
    ]
    by_host = {name: sum(1 for ti in tis if ti["hostname"] == name) for name in workers}
    figures = {
        "tasks": len(tis),
        "succeeded": sum(1 for ti in tis if ti["state"] == "success"),
        "run_state": state,
        "probe_state": probe_state,
        "wall_s": round(wall, 1),
        "trigger_to_finish_s": round(elapsed, 1),
        "ideal_s": ideal,
        "wall_over_ideal": round(wall / ideal, 2),
        "slots": slots,
        "by_worker": by_host,
        "sync_slot_s_median": round(common.median(sync_s), 1),
        "flux_slot_s_median": round(common.median(flux_s), 1),
        "worker_slot_s_total": round(sum(seconds.values()), 0),
        "packing_bound_s": round(sum(seconds.values()) / slots, 1),
        "hand_over_s_median": round(common.median(gaps), 2) if gaps else None,
        "hand_over_s_p90": round(common.percentile(gaps, 90), 2) if gaps else None,
        "hand_over_tasks": len(gaps),
        "slot_s_ideal_sync": opts.sync * opts.sync_latency,
        "sync_task_phases_s_median": {
            name: round(common.median([p[name] for p in sync_phases]), 2)
            for name in ("waiting", "start_up", "request", "store", "finish")
        }
        if sync_phases
        else None,
        "sync_tasks_with_phases": len(sync_phases),
        "loop_lag_ms": {
            "p50": round(1000 * common.percentile(lags, 50), 1) if lags else None,
            "p99": round(1000 * common.percentile(lags, 99), 1) if lags else None,
            "max": round(1000 * max(lags), 1) if lags else None,
            "probes": len(lags),
        },
        "started": datetime.now().isoformat(timespec="seconds"),
        "args": vars(opts),
    }
    print(json.dumps(figures, indent=1, default=str))
    common.emit(figures)
    return 0 if state == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
