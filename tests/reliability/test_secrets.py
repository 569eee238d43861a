"""The canary key: a full DAG run (successes and failures) with key ``sk-canary-<uuid>``, then a scan
of everything the run left behind. The key may appear only in ``Authorization`` headers that
reached the API host, and on the Gemini route only in its ``x-goog-api-key`` header. The child runs
with Airflow's StatsD metrics on (``[metrics] statsd_on``, tags in the name) towards a UDP socket
the test owns: every metric datagram is scanned too, for the key, the prompts and any URL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.statsd import StatsDReceiver

ROOT = Path(__file__).resolve().parents[2]
DAGS = Path(__file__).resolve().parent / "dags"
RUN_TIMEOUT_S = 240
AREA = "Secrets"

EXPECTED_STATES = {
    "ok_url": "success",
    "ok_inline": "success",
    "ok_deferred": "success",
    "submit": "success",
    "collect": "success",
    "fail_moderated": "failed",
    "fail_content_moderated": "failed",
    "fail_upstream": "failed",
    "fail_unreadable": "failed",
    "fail_invalid_template": "failed",
    "ok_gemini": "success",
    "ok_gemini_edit": "success",
    "fail_gemini_blocked": "failed",
}


def _files(*roots: Path) -> list[Path]:
    return [p for root in roots for p in root.rglob("*") if p.is_file()]


def _prompts(body: Any) -> list[str]:
    """Every prompt (``prompt``, Gemini's part ``text``) anywhere in a request body."""
    if isinstance(body, dict):
        found = [v for k, v in body.items() if k in ("prompt", "text") and isinstance(v, str) and v]
        return found + [p for v in body.values() for p in _prompts(v)]
    if isinstance(body, list):
        return [p for v in body for p in _prompts(v)]
    return []


@pytest.mark.timeout(RUN_TIMEOUT_S + 60)
def test_canary_key_never_leaves_the_authorization_header(api, sandbox, tmp_path, report):
    api.connect(max_retries=1)
    sandbox.client.inject(kind="status", status=500, path="imagen")
    sandbox.client.inject(kind="malformed_json", path="seedream")
    home, out_dir = tmp_path / "airflow-home", tmp_path / "images"
    home.mkdir()
    out_dir.mkdir()
    events_file, result_file = tmp_path / "openlineage.jsonl", tmp_path / "result.json"
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(events_file), "append": True}
        ),
        "AIHUBMIX_OUTPUT_URI": out_dir.as_uri(),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    statsd = StatsDReceiver.open()
    env.update(
        {
            f"AIRFLOW__METRICS__{key}": value
            for key, value in {
                "STATSD_ON": "True",
                "STATSD_HOST": "127.0.0.1",
                "STATSD_PORT": str(statsd.sock.getsockname()[1]),
                "STATSD_PREFIX": "airflow",
                "STATSD_INFLUXDB_ENABLED": "True",
            }.items()
        }
    )
    env.pop("OPENLINEAGE_DISABLED", None)
    env.pop("AIRFLOW__OPENLINEAGE__DISABLED", None)
    proc = subprocess.run(
        [sys.executable, "-m", "tests.reliability.secrets_run", str(result_file)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    output = proc.stdout + proc.stderr
    (tmp_path / "child.log").write_text(output)
    assert proc.returncode == 0, output[-6000:]
    result = json.loads(result_file.read_text())
    assert result["tasks"] == EXPECTED_STATES, result["tasks"]

    # What the scan covers must really be there, or a clean scan proves nothing.
    events = [json.loads(line) for line in events_file.read_text().splitlines() if line.strip()]
    assert {e["eventType"] for e in events} >= {"START", "COMPLETE", "FAIL"}
    assert "Stored 1 image(s)" in output and "AIHubMixTaskModeratedError" in output
    assert (
        "AIHubMixUpstreamError" in output and "AIHubMixUnreadableAnswerError" in output
    )  # half a JSON body, kept as text
    assert any(r["key"] == "return_value" for r in result["xcom"]) and result["rendered"]
    manifests = [p for p in out_dir.rglob("manifest.json")]
    assert len(manifests) >= 7

    scanned: dict[str, Any] = {
        "task logs and exceptions (process output)": output,
        "XCom": result["xcom"],
        "rendered template fields": result["rendered"],
        "OpenLineage events": events,
    }
    # Everything on disk: the metadata DB (raw bytes), log files, manifests and images.
    files = _files(home, out_dir)
    assert any(p.name == "airflow.db" for p in files)
    for path in files:
        scanned[str(path)] = path.read_bytes().decode("latin-1")
    storage_log = sandbox.client.requests(host="storage")
    api_log = sandbox.client.requests(host="api")
    scanned["sandbox storage host request log"] = storage_log
    assert storage_log and api_log
    bearer = f"Bearer {api.key}"
    gemini_requests = 0
    for record in api_log:
        headers = dict(record["headers"])
        # The key travels, and only as the bearer token of the API host -- or, on Google's
        # native Gemini route, only in x-goog-api-key (never Authorization, never ?key=).
        if record["path"].startswith("/gemini/"):
            assert headers.pop("x-goog-api-key") == api.key and "authorization" not in headers
            assert record["query"] == ""
            gemini_requests += 1
        else:
            assert headers.pop("authorization") == bearer
        scanned[f"api request {record['seq']} without its key header"] = {
            **record,
            "headers": headers,
        }
    assert gemini_requests == 4  # the series of two, the edit, the refusal
    # Metrics: the provider's datagrams arrived, failures among them, and none holds a prompt or a URL.
    datagrams = statsd.drain()
    statsd.sock.close()
    ours = [d for d in datagrams if d.name.startswith("airflow.aihubmix.")]
    outcomes = {d.tags.get("outcome") for d in ours if d.name == "airflow.aihubmix.requests"}
    assert {"success", "moderated", "upstream_error"} <= outcomes, outcomes
    wire = b"\n".join(statsd.raw).decode()  # Airflow's own metrics too (the key is looked for in all)
    scanned["StatsD metric datagrams"] = wire
    wire = "\n".join(line for line in wire.splitlines() if line.startswith("airflow.aihubmix."))
    prompts = {text for r in api_log for text in _prompts(r.get("json"))}
    assert {"a harbour", "a fox mascot"} <= prompts, prompts
    for prompt in prompts:
        assert prompt not in wire and prompt.replace(" ", "_") not in wire, f"a prompt in a metric: {prompt}"
    for needle in ("http:", "https:", "file:", "s3:", "//", "sandbox:"):
        assert needle not in wire, f"{needle} in a metric"
    for where, content in scanned.items():
        text = content if isinstance(content, str) else json.dumps(content, default=str)
        assert api.key not in text, f"the canary key leaked into {where}"
        assert api.key.removeprefix("sk-canary-") not in text, f"part of the canary key leaked into {where}"

    failed = sum(1 for state in result["tasks"].values() if state == "failed")
    report.row(
        "secrets-canary",
        area=AREA,
        scenario=f"full DAG run with key sk-canary-<uuid>: {len(EXPECTED_STATES) - failed} tasks succeed, "
        f"{failed} fail (moderation x2, Gemini blockReason, 5xx, unreadable answer, invalid template)",
        expected="the key appears only in Authorization headers sent to the API host "
        "(x-goog-api-key on the Gemini route)",
        result=f"0 leaks in {len(scanned)} places scanned ({len(files)} files incl. the metadata DB, "
        f"{len(events)} OpenLineage events, {len(ours)} metric datagrams, "
        f"{len(storage_log)} storage requests, "
        f"{len(api_log)} API requests each carrying it as the bearer token, or in x-goog-api-key for "
        f"the {gemini_requests} on the Gemini route)",
        requests=len(api_log) + len(storage_log),
        leaks=0,
        places_scanned=len(scanned),
        metric_datagrams=len(ours),
    )
