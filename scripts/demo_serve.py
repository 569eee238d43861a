"""Serve the demo run's gallery: an Airflow api-server (with the gallery plugin) on the demo's home.

The demo's metadata DB holds the run, its task instances and where each stored its images,
so the api-server needs nothing else. Loopback only; the simple auth manager in all-admins
mode, as ``airflow standalone`` does for a local try-out. Its log goes to a file.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def gallery_server(home: Path, log_path: Path, port: int = 0, timeout: float = 120) -> Iterator[str]:
    """Start ``airflow api-server`` for ``home``; yield its base URL; stop it (its process group)."""
    port = port or free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__AUTH_MANAGER": (
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
        ),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__BASE_URL": base_url,
    }
    command = [sys.executable, "-m", "airflow", "api-server", "--host", "127.0.0.1", "--port", str(port)]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=log, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise SystemExit(f"the api-server exited with {process.returncode}; see {log_path}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base_url}/api/v2/monitor/health", timeout=2, trust_env=False).is_success:
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"the api-server did not answer within {timeout:.0f} s; see {log_path}")
            time.sleep(0.5)
        yield base_url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def serve_gallery(home: Path, dag_id: str, run_id: str, log_path: Path, port: int = 0) -> int:
    """Serve until Ctrl-C, after printing where the gallery of ``run_id`` is."""
    print(f"\nStarting an api-server with the gallery plugin (its log: {log_path})...", flush=True)

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # the api-server is stopped on the way out, as for Ctrl-C

    signal.signal(signal.SIGTERM, stop)
    with gallery_server(home, log_path, port) as base_url:
        run = quote(run_id, safe="")
        print(f"  Gallery of this run:  {base_url}/aihubmix/gallery/{quote(dag_id, safe='')}/{run}")
        print(f'  In the Airflow UI:    {base_url}/dags/{dag_id}/runs/{run}  (tab "Images")')
        print("  Ctrl-C stops it.", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
    return 0
