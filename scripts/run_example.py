"""Run the example marketing DAG end to end on the local sandbox, images on local disk.

What a new user runs first (``bash scripts/demo.sh``): no API key, no network. It starts
the sandbox, points the ``aihubmix_default`` connection at it, runs
``aihubmix_marketing_assets`` with ``dag.test()`` and shows one line per task as it ends,
then a summary, where everything landed and how to open the gallery. Airflow's own log
goes to a file. ``--serve`` then starts an api-server with the gallery plugin on this run;
``--serve-only`` serves the last demo run without running it again.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import runpy
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import quote

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

# Airflow (imported by demo_view) reads AIRFLOW_HOME once: set it first (``prepare``).
from demo_serve import serve_gallery  # noqa: E402

if TYPE_CHECKING:
    from demo_view import Progress


def load_example_dag(dag_id: str) -> Any:
    """Import every example file (as the dag-processor would) and return the DAG ``dag_id``."""
    from airflow.sdk import DAG

    folder = REPO / "example_dags"
    sys.path.insert(0, str(folder))
    for path in sorted(folder.glob("*.py")):
        for value in runpy.run_path(str(path), run_name=f"example_{path.stem}").values():
            if isinstance(value, DAG) and value.dag_id == dag_id:
                return value
    raise SystemExit(f"No DAG {dag_id!r} in {folder}")


@contextlib.contextmanager
def output_to(log_path: Path) -> Iterator[TextIO]:
    """Send everything written to stdout/stderr (Airflow's log, task prints, warnings) to
    ``log_path``; yield a stream to the terminal the demo started in."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved_out, saved_err = os.dup(1), os.dup(2)
    terminal = os.fdopen(os.dup(saved_out), "w", buffering=1, encoding="utf-8")
    with open(log_path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield terminal
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved_out, 1)
            os.dup2(saved_err, 2)
            os.close(saved_out)
            os.close(saved_err)
            terminal.close()


def prepare(out: Path) -> tuple[Path, Path]:
    images_dir, home = out / "images", out / "airflow-home"
    images_dir.mkdir(parents=True, exist_ok=True)
    home.mkdir(parents=True, exist_ok=True)
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "example_dags")
    os.environ["AIHUBMIX_OUTPUT_URI"] = images_dir.as_uri()
    os.environ.setdefault("AIHUBMIX_POLL_INTERVAL", "1")
    return images_dir, home


def run_demo(dag_id: str, images_dir: Path, log_path: Path) -> tuple[Any, Progress, int, float]:
    """Run the DAG on the sandbox; return the run, the progress lines, API requests, seconds."""
    from demo_view import Progress

    from airflow_provider_aihubmix.sandbox import SandboxServer

    began = time.monotonic()
    with output_to(log_path) as terminal, SandboxServer(task_delay_s=2.0) as sandbox:
        os.environ["AIRFLOW_CONN_AIHUBMIX_DEFAULT"] = json.dumps(
            {
                "conn_type": "aihubmix",
                "host": sandbox.base_url,
                "password": "sk-sandbox-demo",
                "extra": {"tasks_base_url": sandbox.base_url},
            }
        )
        print(f"Sandbox: {sandbox.base_url} (image storage {sandbox.storage_url})", file=terminal)
        subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
        dag = load_example_dag(dag_id)
        progress = Progress(out=terminal, images_dir=images_dir)
        progress.register()
        try:
            run = dag.test()
        finally:
            progress.unregister()
        requests = len(sandbox.client.requests(host="api"))
    return run, progress, requests, time.monotonic() - began


def report(
    dag_id: str, run: Any, progress: Progress, requests: int, seconds: float, images_dir: Path
) -> bool:
    from demo_view import summary

    state = str(getattr(run, "state", "unknown")).rsplit(".", 1)[-1]
    print(f"\nRun {run.run_id} of {dag_id}: {state} in {seconds:.0f} s")
    print(f"  {summary(progress.lines)}")
    print(f"  The sandbox answered {requests} API request(s); nothing left this machine.")
    marker = f"run_id={run.run_id}"
    sheets = [p for p in images_dir.rglob("contact-sheet.*") if marker in str(p)]
    for sheet in sheets:
        print(f"  Contact sheet: {sheet}")
    for path in (p for p in images_dir.rglob("cost-summary.json") if marker in str(p)):
        total = json.loads(path.read_text())["total"]
        print(f"  Run cost: {total['actual']} USD actual, {total['estimated']} USD estimated ({path})")
    run_dirs = sorted({p.parent for p in images_dir.rglob("manifest.json") if marker in str(p)})
    if run_dirs:
        print(f"  Images and manifests: {run_dirs[0].parent.parent}/")
    return state == "success"


def gallery_hint(dag_id: str, run_id: str, serving: bool) -> None:
    path = f"/aihubmix/gallery/{quote(dag_id, safe='')}/{quote(run_id, safe='')}"
    if serving:
        return
    print("\nSee the images in Airflow (the gallery plugin on an api-server for this run):")
    print("  bash scripts/demo.sh --serve-only        # then open the printed address")
    print(f"  gallery path: {path}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--output", default=str(REPO / "demo-output"), help="folder for images and Airflow home"
    )
    parser.add_argument("--dag", default="aihubmix_marketing_assets", help="example DAG id to run")
    parser.add_argument("--serve", action="store_true", help="after the run, serve the gallery")
    parser.add_argument("--serve-only", action="store_true", help="serve the last run's gallery")
    parser.add_argument("--port", type=int, default=0, help="api-server port for --serve (default: free)")
    args = parser.parse_args()

    out = Path(args.output).resolve()
    images_dir, home = prepare(out)
    log_path = out / "airflow.log"
    last_run = out / "last-run.json"
    if args.serve_only:
        if not last_run.exists():
            raise SystemExit(f"No demo run in {out} yet: run `bash scripts/demo.sh` first")
        run_id = json.loads(last_run.read_text())["run_id"]
        return serve_gallery(home, args.dag, run_id, out / "api-server.log", port=args.port)

    print(f"AIHubMix demo: {args.dag} on the local sandbox (no API key, no network)")
    print(f"Airflow's own log: {log_path}\n")
    run, progress, requests, seconds = run_demo(args.dag, images_dir, log_path)
    ok = report(args.dag, run, progress, requests, seconds, images_dir)
    last_run.write_text(json.dumps({"dag_id": args.dag, "run_id": run.run_id}))
    gallery_hint(args.dag, run.run_id, args.serve)
    if args.serve:
        serve_gallery(home, args.dag, run.run_id, out / "api-server.log", port=args.port)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
