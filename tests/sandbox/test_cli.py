"""The ``aihubmix-sandbox`` command as a subprocess: ready line, serving, clean stop, quiet stdout."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import httpx

READY = re.compile(r"AIHubMix sandbox listening on (http://\S+) \(storage (http://\S+)\)")


def test_cli_runs_and_stops() -> None:
    secret = "sk-cli-secret-key"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_provider_aihubmix.sandbox",
            "--port",
            "0",
            "--storage-port",
            "0",
            "--api-key",
            secret,
            "--max-side",
            "64",
            "--task-delay",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = READY.search(line)
        assert match, line
        base_url, storage_url = match.groups()
        headers = {"Authorization": f"Bearer {secret}"}
        assert httpx.get(f"{base_url}/v1/models").status_code == 401
        body = httpx.post(
            f"{base_url}/v1/models/qianfan/qwen-image/predictions",
            json={"input": {"prompt": "x", "size": "1024*576"}},
            headers=headers,
        ).json()
        url = body["output"][0]["url"]
        assert url.startswith(storage_url)
        from tests.sandbox.helpers import open_image

        assert open_image(httpx.get(url).content).size == (64, 36)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0
    # Neither the key nor request headers reach the console.
    assert secret not in line + out + err
    assert "authorization" not in (out + err).lower()
