"""Benchmark 5: what importing the operators adds on top of ``airflow.sdk``, and DAG parse time.

Every DAG file that uses the provider imports ``airflow_provider_aihubmix.operators.images``
after ``airflow.sdk`` (which a DAG file imports anyway), and the DAG processor pays it on
every parse in a fresh process. Measured in fresh interpreters, median of several:

* ``python -X importtime``: the import is preceded by ``airflow.sdk`` and the names every
  operator needs (``DAG``, ``BaseOperator``, ``conf``), then a marker; the cumulative time of
  the top-level imports after the marker is what our module adds. Side by side: the http
  provider's ``HttpOperator`` on the same baseline;
* wall clock of the same import (``time.perf_counter``), for a second opinion;
* what got imported: no ``boto3``/``botocore``, no ``PIL``, no ``aiohttp``, no server stack, and
  no socket connected nor name resolved while importing (``socket`` is patched to record it);
* parse time of each example DAG with Airflow's own ``DagBag`` in a fresh process (the first
  file pays the provider import; the others reuse it).

    uv run --no-sync python benchmarks/bench_imports.py [--reps 7]
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchlib as common

MARK = "---BENCH-MARK---"
TARGET_MS = 50.0
FORBIDDEN = ("boto3", "botocore", "PIL", "aiohttp", "fastapi", "uvicorn", "moto")
MODULES = {
    "ours": "airflow_provider_aihubmix.operators.images",
    "http": "airflow.providers.http.operators.http",
}
BASELINE = "import airflow.sdk\nfrom airflow.sdk import DAG, BaseOperator, conf\n"


def _child_importtime(module: str) -> dict[str, Any]:
    """Run in a child started with ``-X importtime``; the parent parses stderr."""
    exec(BASELINE)
    network: list[str] = []
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> Any:
        network.append(f"connect {address!r}")
        return real_connect(self, address)

    def getaddrinfo(*args: Any, **kwargs: Any) -> Any:
        network.append(f"getaddrinfo {args[:2]!r}")
        return real_getaddrinfo(*args, **kwargs)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]
    before = set(sys.modules)
    sys.stderr.write(MARK + "\n")
    sys.stderr.flush()
    started = time.perf_counter()
    __import__(module)
    wall = time.perf_counter() - started
    sys.stderr.write(MARK + "\n")
    sys.stderr.flush()
    added = sorted(set(sys.modules) - before)
    forbidden = sorted(m for m in sys.modules if m.split(".")[0] in FORBIDDEN)
    return {"wall_ms": 1000 * wall, "modules_added": len(added), "forbidden": forbidden, "network": network}


def _importtime_ms(stderr: str) -> tuple[float, list[tuple[float, str]]]:
    """Cumulative ms of the top-level imports between the two markers, and the biggest of them."""
    lines = stderr.split(MARK + "\n")[1].splitlines()
    top: list[tuple[float, str]] = []
    for line in lines:
        if not line.startswith("import time:"):
            continue
        _self_us, cumulative_us, name = line.split("|")
        depth = len(name) - len(name.lstrip(" "))
        if depth == 1:  # a top-level import: its cumulative time includes what it pulled in
            top.append((int(cumulative_us) / 1000, name.strip()))
    return sum(ms for ms, _ in top), sorted(top, reverse=True)


def _run_importtime(module: str) -> dict[str, Any]:
    import json
    import subprocess
    import tempfile

    with tempfile.NamedTemporaryFile("r", suffix=".json") as result:
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", __file__, "--child-import", module],
            capture_output=True,
            text=True,
            env={**os.environ, common.RESULT_ENV: result.name},
            cwd=common.ROOT,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-3000:])
        data: dict[str, Any] = json.loads(result.read())
    data["importtime_ms"], data["top"] = _importtime_ms(proc.stderr)
    return data


def _child_parse() -> dict[str, Any]:
    from airflow.dag_processing.dagbag import DagBag

    folder = os.path.join(common.ROOT, "example_dags")
    sys.path.insert(0, folder)  # as the DAG processor does for a bundle: the examples import _common
    started = time.perf_counter()
    bag = DagBag(dag_folder=folder, bundle_path=Path(folder))
    total = time.perf_counter() - started
    if bag.import_errors:
        raise RuntimeError(f"example DAGs failed to import: {bag.import_errors}")
    files = {
        os.path.basename(stat.file.lstrip("/")): stat.duration.total_seconds() * 1000
        for stat in bag.dagbag_stats
    }
    return {
        "total_ms": total * 1000,
        "files": files,
        "dags": len(bag.dags),
        "tasks": sum(len(dag.tasks) for dag in bag.dags.values()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--child-import")
    parser.add_argument("--child-parse", action="store_true")
    opts = parser.parse_args()
    if opts.child_import:
        common.emit(_child_importtime(opts.child_import))
        return 0
    if opts.child_parse:
        common.emit(_child_parse())
        return 0

    common.print_machine()
    print(
        f"import on top of airflow.sdk (+ DAG, BaseOperator, conf), {opts.reps} fresh processes each, "
        "interleaved"
    )
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in MODULES}
    for rep in range(opts.reps):
        for name, module in MODULES.items():
            run = _run_importtime(module)
            runs[name].append(run)
            print(
                f"  rep {rep + 1} {module:45s} importtime {run['importtime_ms']:6.1f} ms, "
                f"wall {run['wall_ms']:6.1f} ms, {run['modules_added']} modules",
                flush=True,
            )
    ours = runs["ours"]
    imp = common.median([r["importtime_ms"] for r in ours])
    wall = common.median([r["wall_ms"] for r in ours])
    http_imp = common.median([r["importtime_ms"] for r in runs["http"]])
    print(
        "  biggest top-level imports (ours, last run): "
        + ", ".join(f"{n} {ms:.1f} ms" for ms, n in ours[-1]["top"][:6])
    )
    forbidden = sorted({m for r in ours for m in r["forbidden"]})
    network = sorted({c for r in ours for c in r["network"]})
    parses = [
        common.run_child("bench_imports.py", ["--child-parse"], env={"AIRFLOW__CORE__LOAD_EXAMPLES": "False"})
        for _ in range(opts.reps)
    ]
    files = sorted(parses[0]["files"])

    print("\nresults (medians)")
    print(
        f"  {MODULES['ours']}: {imp:.1f} ms (-X importtime), {wall:.1f} ms wall; "
        f"HttpOperator {http_imp:.1f} ms; ratio {common.ratio(imp, http_imp):.2f}x"
    )
    ok_time = imp <= TARGET_MS
    print(f"  target <= {TARGET_MS:.0f} ms added: {common.verdict(ok_time)}")
    print(
        f"  heavy modules after import: {forbidden or 'none'}; network at import: {network or 'none'}: "
        f"{common.verdict(not forbidden and not network)}"
    )
    print(
        f"  DagBag parse of example_dags ({parses[0]['dags']} DAGs, {parses[0]['tasks']} tasks): "
        f"{common.median([p['total_ms'] for p in parses]):.0f} ms total"
    )
    for name in files:
        print(f"    {name:34s} {common.median([p['files'][name] for p in parses]):7.1f} ms")
    return 0 if ok_time and not forbidden and not network else 1


if __name__ == "__main__":
    sys.exit(main())
