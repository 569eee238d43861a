"""Run the benchmarks (all, or some with ``--only``), each in its own process, one after another.

    uv run --no-sync python benchmarks/run.py              # every numbered one, ~35-45 min on 2 cores
    uv run --no-sync python benchmarks/run.py --only 1 5   # triggers and imports
    uv run --no-sync python benchmarks/run.py --quick      # smoke run: fewer, shorter repetitions

Each benchmark prints its machine line, every repetition and the medians and ratios; the
exit status is non-zero when a target is not met. See BENCHMARKS.md for the method.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

BENCHMARKS: dict[int, tuple[str, str, list[str]]] = {
    # number: (script, what, arguments for --quick)
    1: ("bench_triggers.py", "triggerer: CPU, memory, event-loop lag vs http provider triggers", ["--quick"]),
    2: (
        "bench_hook.py",
        "images/s through the hook + file:// store vs raw httpx",
        ["--reps", "1", "--images", "50"],
    ),
    3: ("bench_memory.py", "peak RSS storing one 8/64/256 MB image, URL and base64", ["--reps", "1"]),
    4: (
        "bench_worker_slot.py",
        "worker-slot seconds in real Airflow, deferrable vs blocking",
        ["--reps", "1", "--generation", "30"],
    ),
    5: ("bench_imports.py", "import cost on top of airflow.sdk, example DAG parse time", ["--reps", "3"]),
    6: (
        "bench_s3.py",
        "500 x 2 MB images to moto S3 vs boto3 upload_fileobj",
        ["--reps", "1", "--images", "100"],
    ),
    7: (
        "bench_prediction_triggers.py",
        "1,000 sync requests sent at once from one triggerer loop: lag, RSS, stored images",
        ["--n", "100", "--latency", "5"],
    ),
    8: (
        "bench_cluster.py",
        "200 mapped generations on the two-worker Celery cluster: wall time vs ideal, slot seconds, loop lag",
        ["--sync", "16", "--flux", "16", "--probes", "5"],
    ),
    0: (
        "sandbox_throughput.py",
        "the sandbox's own request rate (head-room for the others)",
        ["--seconds", "2"],
    ),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", type=int, nargs="+", choices=sorted(BENCHMARKS), help="benchmark numbers")
    parser.add_argument("--quick", action="store_true", help="fewer, shorter repetitions (smoke test)")
    opts = parser.parse_args()
    chosen = opts.only or [n for n in sorted(BENCHMARKS) if n != 0]
    here = os.path.dirname(os.path.abspath(__file__))
    failed: list[int] = []
    for number in chosen:
        script, what, quick = BENCHMARKS[number]
        print(f"\n=== {number}: {what} ({script}) ===", flush=True)
        started = time.monotonic()
        code = subprocess.call([sys.executable, os.path.join(here, script), *(quick if opts.quick else [])])
        print(f"=== {number}: exit {code} after {time.monotonic() - started:.0f} s ===", flush=True)
        if code:
            failed.append(number)
    if failed:
        print(f"\ntargets not met (or errors) in: {', '.join(map(str, failed))}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
