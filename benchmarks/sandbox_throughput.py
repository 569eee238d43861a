"""How many requests per second the AIHubMix sandbox answers on loopback.

Not a test (no assertions): benchmarks use the sandbox as their upstream, so this shows
how much head-room it leaves. The sandbox runs in its own process (the real CLI) so the
load generators do not share its GIL; each generator process drives an
``httpx.AsyncClient`` with several requests in flight.

    uv run python benchmarks/sandbox_throughput.py [--seconds 5] [--procs 2] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import subprocess
import sys
import threading
import time
from typing import Any

KEY = "sk-bench"
READY = re.compile(r"listening on (http://\S+) \(storage (http://\S+)\)")

SCENARIOS: dict[str, tuple[str, str, dict[str, Any] | None]] = {
    "GET /v1/models": ("GET", "/v1/models", None),
    "POST predictions qwen-image (URL answer)": (
        "POST",
        "/v1/models/qianfan/qwen-image/predictions",
        {"input": {"prompt": "throughput", "seed": 1}},
    ),
    "POST predictions gpt-image-1 (b64 answer, 256 px, cached)": (
        "POST",
        "/v1/models/openai/gpt-image-1/predictions",
        {"input": {"prompt": "throughput", "seed": 1, "size": "256x256", "output_format": "png"}},
    ),
}


def _drive(args: tuple[str, str, str, dict[str, Any] | None, float, int]) -> int:
    """One load-generator process: ``threads`` threads, each with its own keep-alive httpx.Client."""
    import httpx

    base_url, method, path, body, seconds, threads = args
    counts = [0] * threads
    deadline = time.perf_counter() + seconds

    def worker(slot: int) -> None:
        with httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30
        ) as client:
            while time.perf_counter() < deadline:
                client.request(method, path, json=body).raise_for_status()
                counts[slot] += 1

    pool = [threading.Thread(target=worker, args=(slot,)) for slot in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return sum(counts)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` (Linux /proc; 0 elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--procs", type=int, default=2, help="load-generator processes")
    parser.add_argument("--threads", type=int, default=2, help="httpx clients (threads) per process")
    opts = parser.parse_args()

    server = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_aihubmix.sandbox", "--port", "0", "--storage-port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        match = READY.search(server.stdout.readline())
        if not match:
            raise SystemExit("the sandbox did not start")
        base_url = match.group(1)
        print(
            f"sandbox {base_url}; {opts.procs} processes x {opts.threads} clients each, "
            f"{opts.seconds} s per scenario"
        )
        with multiprocessing.get_context("spawn").Pool(opts.procs) as pool:
            # Warm the workers (imports, first connection) outside the timed runs.
            pool.map(_drive, [(base_url, "GET", "/v1/models", None, 0.3, 1)] * opts.procs)
            for name, (method, path, body) in SCENARIOS.items():
                _drive((base_url, method, path, body, 0.5, 1))  # warm the image cache
                cpu_before = _cpu_seconds(server.pid)
                started = time.perf_counter()
                runs = [(base_url, method, path, body, opts.seconds, opts.threads)] * opts.procs
                total = sum(pool.map(_drive, runs))
                elapsed = time.perf_counter() - started
                line = f"{name:58s} {total / elapsed:7.0f} req/s ({total} requests)"
                cpu = _cpu_seconds(server.pid) - cpu_before
                if cpu > 0:
                    # On a shared machine the clients steal CPU; this is what one server core could do.
                    line += (
                        f"; server CPU {1000 * cpu / total:.2f} ms/request = {total / cpu:.0f} req/s per core"
                    )
                print(line)
    finally:
        server.terminate()
        server.wait(timeout=20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
