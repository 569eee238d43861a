"""Run the example marketing DAG end to end on the local sandbox, images on local disk.

What a new user runs first (``bash scripts/demo.sh``): no API key, no network. It starts
the sandbox, points the ``aihubmix_default`` connection at it, runs
``aihubmix_marketing_assets`` with ``dag.test()`` and prints where everything landed.
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--output", default=str(REPO / "demo-output"), help="folder for images and Airflow home"
    )
    parser.add_argument("--dag", default="aihubmix_marketing_assets", help="example DAG id to run")
    args = parser.parse_args()

    out = Path(args.output).resolve()
    images_dir = out / "images"
    home = out / "airflow-home"
    images_dir.mkdir(parents=True, exist_ok=True)
    home.mkdir(parents=True, exist_ok=True)
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "example_dags")
    os.environ["AIHUBMIX_OUTPUT_URI"] = images_dir.as_uri()
    os.environ.setdefault("AIHUBMIX_POLL_INTERVAL", "1")

    from airflow_provider_aihubmix.sandbox import SandboxServer

    with SandboxServer(task_delay_s=2.0) as sandbox:
        os.environ["AIRFLOW_CONN_AIHUBMIX_DEFAULT"] = json.dumps(
            {
                "conn_type": "aihubmix",
                "host": sandbox.base_url,
                "password": "sk-sandbox-demo",
                "extra": {"tasks_base_url": sandbox.base_url},
            }
        )
        print(f"Sandbox: {sandbox.base_url} (image storage {sandbox.storage_url})", flush=True)
        subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)

        dag = load_example_dag(args.dag)
        run = dag.test()
        requests = len(sandbox.client.requests(host="api"))

    state = str(getattr(run, "state", "unknown"))
    print(f"\nDAG {args.dag}: run {run.run_id} finished with state {state}")
    print(f"The sandbox received {requests} API request(s).")
    marker = f"run_id={run.run_id}"
    files = sorted(p for p in images_dir.rglob("*") if p.is_file() and marker in str(p))
    for path in files:
        kind = (
            "contact sheet"
            if path.stem == "contact-sheet"
            else ("manifest" if path.name == "manifest.json" else "image")
        )
        if path.name == "cost-summary.json":
            total = json.loads(path.read_text())["total"]
            print(f"{'cost summary':>13}: {path}")
            print(f"{'run cost':>13}: {total['actual']} USD actual, {total['estimated']} USD estimated")
            continue
        print(f"{kind:>13}: {path}")
    return 0 if state.endswith("success") else 1


if __name__ == "__main__":
    sys.exit(main())
