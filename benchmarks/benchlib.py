"""Shared plumbing for the benchmarks: the sandbox in its own process, child runs, statistics.

Every benchmark measures the thing under test and its baseline in fresh child processes,
interleaved repetition by repetition, so a noisy neighbour on this shared machine slows
both sides alike; the parent prints medians and the ratio of the medians.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH_DIR)
API_KEY = "sk-bench-key"
_READY = re.compile(r"listening on (http://\S+) \(storage (http://\S+)\)")
RESULT_ENV = "BENCH_RESULT_FILE"


@dataclass(frozen=True)
class Sandbox:
    base_url: str
    storage_url: str
    pid: int

    def client(self) -> Any:
        from airflow_provider_aihubmix.sandbox import SandboxClient

        return SandboxClient(self.base_url)


@contextlib.contextmanager
def sandbox_process(*args: str) -> Iterator[Sandbox]:
    """The real ``aihubmix-sandbox`` CLI in a child process, so its CPU is never counted as ours."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_provider_aihubmix.sandbox",
            "--port",
            "0",
            "--storage-port",
            "0",
            *args,
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        match = _READY.search(proc.stdout.readline())
        if not match:
            raise SystemExit("the sandbox did not start")
        yield Sandbox(match.group(1), match.group(2), proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def aihubmix_conn_json(base_url: str) -> str:
    return json.dumps(
        {
            "conn_type": "aihubmix",
            "host": base_url,
            "password": API_KEY,
            "extra": {"tasks_base_url": base_url},
        }
    )


def run_child(
    script: str,
    args: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    timeout: float = 900,
    keep_output: bool = False,
) -> Any:
    """Run ``python <script> <args>`` in a fresh process and return the JSON it :func:`emit`-ted.

    The child's own output (log lines included: they are formatted and written as in Airflow)
    goes to /dev/null unless ``keep_output``, so a chatty child costs the parent nothing.
    """
    import tempfile

    with (
        tempfile.NamedTemporaryFile("r", suffix=".json", prefix="bench-") as result,
        tempfile.TemporaryFile("w+", prefix="bench-err-") as errors,
    ):
        proc = subprocess.run(
            [sys.executable, os.path.join(BENCH_DIR, script), *args],
            stdout=None if keep_output else subprocess.DEVNULL,
            stderr=None if keep_output else errors,
            text=True,
            env={**os.environ, **(env or {}), RESULT_ENV: result.name},
            cwd=ROOT,
            timeout=timeout,
            check=False,
        )
        text = result.read()
        if proc.returncode != 0 or not text:
            errors.seek(0)
            raise RuntimeError(
                f"child {script} {' '.join(args)} failed (exit {proc.returncode}):\n{errors.read()[-4000:]}"
            )
    return json.loads(text)


def emit(result: Any) -> None:
    """Hand a child's result to its parent (:func:`run_child`), or print it when run by hand."""
    path = os.environ.get(RESULT_ENV)
    if path:
        with open(path, "w") as out:
            json.dump(result, out)
    else:
        print(json.dumps(result, indent=1))


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation: p99 is a value that was really observed)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds of ``pid`` (Linux /proc) or, without one, of this process."""
    if pid is None:
        return time.process_time()
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes() -> int:
    """Current resident set size of this process (Linux /proc)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    versions = {}
    for dist in ("apache-airflow", "apache-airflow-providers-http", "httpx", "aiohttp", "boto3", "moto"):
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            versions[dist] = version(dist)
    mem = "?"
    with contextlib.suppress(OSError), open("/proc/meminfo") as meminfo:
        mem = f"{int(meminfo.readline().split()[1]) // 1024} MiB"
    load = "?"
    with contextlib.suppress(OSError):
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return {
        "cpus": str(os.cpu_count()),
        "memory": mem,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load": load,
        **versions,
    }


def print_machine() -> None:
    info = machine()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()))


def ratio(ours: float, theirs: float) -> float:
    return ours / theirs if theirs else float("nan")


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"
