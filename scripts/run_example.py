"""Run the example marketing DAG end to end on the local sandbox, images on local disk.

What a new user runs first (``bash scripts/demo.sh``): no API key, no network. It starts
the sandbox, points the ``aihubmix_default`` connection at it, runs
``aihubmix_marketing_assets`` with ``dag.test()`` and prints where everything landed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", default=str(REPO / "demo-output"), help="folder for images and Airflow home")
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

        sys.path.insert(0, str(REPO / "example_dags"))
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(dag_folder=str(REPO / "example_dags"), include_examples=False)
        if bag.import_errors:
            print(f"DAG import errors: {bag.import_errors}", file=sys.stderr)
            return 1
        dag = bag.get_dag(args.dag)
        if dag is None:
            print(f"No DAG {args.dag!r} in example_dags", file=sys.stderr)
            return 1
        run = dag.test()
        requests = len(sandbox.client.requests(host="api"))

    state = str(getattr(run, "state", "unknown"))
    print(f"\nDAG {args.dag}: run {run.run_id} finished with state {state}; sandbox saw {requests} API request(s)")
    run_files = sorted(p for p in images_dir.rglob("*") if p.is_file() and run.run_id.replace(":", "") in str(p).replace(":", "").replace("%3A", ""))
    files = run_files or sorted(p for p in images_dir.rglob("*") if p.is_file())
    for path in files:
        kind = "contact sheet" if path.stem == "contact-sheet" else ("manifest" if path.name == "manifest.json" else "image")
        print(f"{kind:>13}: {path}")
    return 0 if state.endswith("success") else 1


if __name__ == "__main__":
    sys.exit(main())
