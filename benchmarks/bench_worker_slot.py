"""Benchmark 4: worker-slot seconds of a 60 s generation in a real Airflow, deferrable vs blocking.

A real deployment (``tests/e2e/harness.py``: scheduler, dag-processor, triggerer, api-server,
LocalExecutor, SQLite) runs one DAG with four tasks side by side in the same run, against the
sandbox (its own process): two ``AIHubMixFluxOperator`` tasks (async: the sandbox's Flux tasks
take 60 s) and two ``AIHubMixOpenAIImageOperator`` gpt-image tasks (sync: the sandbox holds
the answer of each request 60 s), each ``deferrable=True`` and ``deferrable=False``. A
deferrable gpt-image task's request is sent by the triggerer (``AIHubMixPredictionTrigger``).
A task holds a worker slot while it is in state ``running``; the execution API writes one
audit-log row per state change (``running``, ``deferred``, ``running``, ``success``), so the
slot time is the sum of the spells from each ``running`` row to the next row. (The few
seconds a worker spends starting the task process before it reports ``running`` are not in
either figure.) Repetitions are further DAG runs on the same deployment.

    uv run --no-sync python benchmarks/bench_worker_slot.py [--reps 2] [--generation 60]

Slow by nature: about 1 minute to start Airflow, then ``--generation`` seconds and a little
more per repetition.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import textwrap
from datetime import datetime
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import itertools

import benchlib as common

DAG_ID = "bench_worker_slot"
CASES = {"async": ("deferrable", "blocking"), "sync": ("sync_deferrable", "sync_blocking")}
GPT_PATH = r"^/v1/models/openai/gpt-image-1-mini/predictions$"
TARGET = 0.05
DAG_FILE = textwrap.dedent(
    '''
    """Flux and gpt-image generations, deferrable and blocking (benchmarks/bench_worker_slot.py)."""

    from __future__ import annotations

    import os

    from airflow.sdk import DAG

    from airflow_provider_aihubmix.operators.images import AIHubMixFluxOperator, AIHubMixOpenAIImageOperator

    with DAG(dag_id="bench_worker_slot", schedule=None, catchup=False, tags=["benchmark"]):
        for mode in ("deferrable", "blocking"):
            AIHubMixFluxOperator(
                task_id=mode,
                model="flux-2-pro",
                prompt="A lighthouse in a storm, {{ run_id }}",
                deferrable=mode == "deferrable",
                poll_interval=5,
                timeout=900,
                output_uri=os.environ["BENCH_OUTPUT_URI"],
            )
            AIHubMixOpenAIImageOperator(
                task_id=f"sync_{mode}",
                model="gpt-image-1-mini",
                prompt="A lighthouse in a storm, {{ run_id }}",
                quality="high",
                deferrable=mode == "deferrable",
                timeout=900,
                output_uri=os.environ["BENCH_OUTPUT_URI"],
            )
    '''
)


def _when(entry: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(entry["when"]).replace("Z", "+00:00"))


def slot_seconds(events: list[dict[str, Any]]) -> tuple[float, list[str]]:
    """Seconds spent in ``running``: from each ``running`` row to the row after it."""
    total = 0.0
    for current, following in itertools.pairwise(events):
        if current["event"] == "running":
            total += (_when(following) - _when(current)).total_seconds()
    return total, [e["event"] for e in events]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--generation", type=float, default=60.0, help="seconds a sandbox Flux task takes")
    opts = parser.parse_args()
    sys.path.insert(0, common.ROOT)
    from tests.e2e.harness import AirflowCluster

    common.print_machine()
    tasks = [task for case in CASES.values() for task in case]
    slots: dict[str, list[float]] = {task: [] for task in tasks}
    with (
        tempfile.TemporaryDirectory(prefix="bench-slot-dags-") as dags,
        tempfile.TemporaryDirectory(prefix="bench-slot-out-") as out,
        common.sandbox_process("--task-delay", str(opts.generation)) as sandbox,
    ):
        with open(os.path.join(dags, "bench_worker_slot.py"), "w") as handle:
            handle.write(DAG_FILE)
        # The sync model answers after the same time an async task takes to finish.
        sandbox.client().inject(kind="slow", delay_s=opts.generation, path=GPT_PATH)
        env = {
            "AIRFLOW_CONN_AIHUBMIX_DEFAULT": common.aihubmix_conn_json(sandbox.base_url),
            "BENCH_OUTPUT_URI": f"file://{out}",
            "AIHUBMIX_OUTPUT_URI": f"file://{out}",
        }
        print(
            f"starting Airflow (harness); sandbox Flux tasks and gpt-image answers take {opts.generation:g} s"
        )
        with AirflowCluster(dags, extra_env=env) as cluster:
            for rep in range(opts.reps):
                run_id = cluster.trigger_dag(DAG_ID, timeout=180)
                state = cluster.observe(DAG_ID, run_id).wait_for_finish(timeout=opts.generation * 4 + 240)
                if state != "success":
                    raise SystemExit(
                        f"run {run_id} ended {state}:\n{cluster.log_tails(['scheduler', 'triggerer'])}"
                    )
                line = []
                for task in tasks:
                    entries = cluster.api(
                        "GET",
                        "/eventLogs",
                        params={
                            "dag_id": DAG_ID,
                            "run_id": run_id,
                            "task_id": task,
                            "order_by": "id",
                            "limit": 100,
                        },
                    )["event_logs"]
                    seconds, sequence = slot_seconds(entries)
                    slots[task].append(seconds)
                    line.append(f"{task} {seconds:6.1f} s in slot ({', '.join(sequence)})")
                print(f"  rep {rep + 1}: " + "; ".join(line), flush=True)
            print(f"  harness timings: {json.dumps({k: round(v, 1) for k, v in cluster.timings.items()})}")

    print("\nresults (medians)")
    met = True
    for case, (deferrable_task, blocking_task) in CASES.items():
        deferrable, blocking = common.median(slots[deferrable_task]), common.median(slots[blocking_task])
        share = common.ratio(deferrable, blocking)
        met = met and share <= TARGET
        print(
            f"  {case}: worker-slot seconds: deferrable {deferrable:.1f} s, blocking {blocking:.1f} s: "
            f"{share:.3f}x ({share * 100:.1f}%); target <= {TARGET * 100:.0f}%: "
            f"{common.verdict(share <= TARGET)}"
        )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
