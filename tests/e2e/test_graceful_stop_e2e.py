"""A deploy during a campaign: the triggerer gets SIGTERM with six paid requests in flight.

A real deployment (scheduler, dag-processor, triggerer, api-server; LocalExecutor; SQLite)
runs six mapped deferrable gpt-image tasks against the sandbox, whose answers take 16 s,
storing on the moto S3 server. Once all six requests are on the wire the triggerer's main
process gets SIGTERM -- what Kubernetes, systemd and ``docker stop`` send -- with more than
10 s of generation left, and a new triggerer starts at once. The stopping triggerer keeps the
six requests running, stores and records their answers, then exits; the new one adopts the
six triggers, waits for those records and finishes each with no request: every task
succeeds with exactly one POST.

The same with SIGKILL (a crash: nothing is kept) and two halves of the campaign: under
``on_possibly_billed="fail"`` (default) each task fails "may have been billed" with its one
POST; under ``"resend_once"`` each sends exactly one more POST, succeeds, and records both sends.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from airflow_provider_aihubmix.sandbox import SandboxServer
from tests.e2e.harness import wait_for
from tests.fixtures.airflow import AirflowClusterFactory
from tests.fixtures.s3 import S3Bucket, aws_connection_json

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(360)]

DAG_ID = "aihubmix_graceful_stop_e2e"
PATH = "/v1/models/openai/gpt-image-1-mini/predictions"
TASKS = 6
GENERATION_S = 16
TERM_AFTER_S = 3  # after the last request went out: > 10 s of generation left for every one

DAG_FILE = textwrap.dedent(
    f'''
    """Six mapped deferrable gpt-image generations (written by the end-to-end test)."""
    import os

    import pendulum
    from airflow.sdk import DAG

    from airflow_provider_aihubmix.operators.images import AIHubMixOpenAIImageOperator

    with DAG(
        "{DAG_ID}",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        default_args={{"retries": 0}},
    ):
        AIHubMixOpenAIImageOperator.partial(
            task_id="poster",
            model="gpt-image-1-mini",
            quality="low",
            deferrable=True,
            output_uri=os.environ["AIHUBMIX_OUTPUT_URI"],
        ).expand(prompt=[f"a lighthouse at dusk, variant {{i}}" for i in range({TASKS})])
    '''
)


HALF = TASKS // 2
KILL_DAG_ID = "aihubmix_crash_resend_e2e"
KILL_DAG_FILE = textwrap.dedent(
    f'''
    """Three mapped deferrable generations per policy (written by the end-to-end test)."""
    import os

    import pendulum
    from airflow.sdk import DAG

    from airflow_provider_aihubmix.operators.images import AIHubMixOpenAIImageOperator

    with DAG(
        "{KILL_DAG_ID}",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        default_args={{"retries": 0}},
    ):
        for policy in ("fail", "resend_once"):
            AIHubMixOpenAIImageOperator.partial(
                task_id=policy,
                model="gpt-image-1-mini",
                quality="low",
                deferrable=True,
                on_possibly_billed=policy,
                output_uri=os.environ["AIHUBMIX_OUTPUT_URI"],
            ).expand(prompt=[f"a lighthouse at dusk, {{policy}} {{i}}" for i in range({HALF})])
    '''
)


def in_flight(sandbox: SandboxServer) -> int:
    return sum(1 for r in sandbox.client.requests(host="api", path=f"^{PATH}$") if r["status"] is None)


def posts(sandbox: SandboxServer) -> int:
    return sum(1 for r in sandbox.client.requests(host="api", path=f"^{PATH}$") if r["method"] == "POST")


def test_a_sigterm_hands_every_paid_request_over(
    airflow_cluster: AirflowClusterFactory,
    sandbox_conn: str,
    sandbox: SandboxServer,
    s3_bucket: S3Bucket,
    tmp_path: Path,
) -> None:
    sandbox.client.inject(kind="slow", delay_s=GENERATION_S, path=f"^{PATH}$")
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "graceful_stop.py").write_text(DAG_FILE)
    cluster = airflow_cluster(
        dags,
        extra_env={
            "AIHUBMIX_OUTPUT_URI": s3_bucket.uri,
            "AIRFLOW_CONN_AWS_DEFAULT": aws_connection_json(s3_bucket.endpoint_url),
            "AIRFLOW_DISABLE_GREENBACK_PORTAL": "true",
        },
    )
    run_id = cluster.trigger_dag(DAG_ID, conf={})
    observer = cluster.observe(DAG_ID, run_id, interval=0.5)
    wait_for(lambda: in_flight(sandbox) == TASKS, 180, f"all {TASKS} requests in flight")
    time.sleep(TERM_AFTER_S)

    termed = time.monotonic()
    old = cluster.terminate("triggerer").process  # SIGTERM to the main process, as Kubernetes does
    successor = cluster.start_component("triggerer")
    try:
        old.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("the stopped triggerer did not exit within 60 s")
    exit_s = time.monotonic() - termed
    answered = in_flight(sandbox) == 0
    cluster.wait_until_healthy(["triggerer"], timeout=90, since=successor.started_at)

    assert observer.wait_for_finish(timeout=180) == "success", observer.task_states
    assert answered  # the old triggerer lived until every answer came
    stopping = cluster.component_log("triggerer", 1)
    assert "Exiting gracefully upon receiving signal" in stopping or "Exiting gracefully" in stopping
    logs = [p.read_text(errors="replace") for p in cluster.task_log_files(DAG_ID, run_id, "poster")]
    triggers = [log for log in logs if "Sending request" in log or "nothing to send" in log]
    assert sum("keeping it until its answer is stored" in log for log in triggers) == TASKS, triggers
    assert sum("is already stored; nothing to send" in log for log in triggers) == TASKS
    assert "may have been billed" not in "\n".join(logs)
    assert posts(sandbox) == TASKS and sandbox.client.billed_count(f"^{PATH}$") == TASKS
    images = [k for k in s3_bucket.list_keys() if re.search(r"image-000\.\w+$", k)]
    assert len(images) == TASKS
    print(f"graceful stop e2e: SIGTERM -> exit {exit_s:.1f}s, {TASKS} in flight; timings {cluster.timings}")


def test_a_sigkill_fails_or_sends_once_more_as_the_policy_says(
    airflow_cluster: AirflowClusterFactory,
    sandbox_conn: str,
    sandbox: SandboxServer,
    s3_bucket: S3Bucket,
    tmp_path: Path,
) -> None:
    sandbox.client.inject(kind="slow", delay_s=GENERATION_S, path=f"^{PATH}$")
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "crash_resend.py").write_text(KILL_DAG_FILE)
    cluster = airflow_cluster(
        dags,
        extra_env={
            "AIHUBMIX_OUTPUT_URI": s3_bucket.uri,
            "AIRFLOW_CONN_AWS_DEFAULT": aws_connection_json(s3_bucket.endpoint_url),
            "AIRFLOW_DISABLE_GREENBACK_PORTAL": "true",
        },
    )
    run_id = cluster.trigger_dag(KILL_DAG_ID, conf={})
    observer = cluster.observe(KILL_DAG_ID, run_id, interval=0.5)
    wait_for(lambda: in_flight(sandbox) == TASKS, 180, f"all {TASKS} requests in flight")
    time.sleep(TERM_AFTER_S)

    cluster.restart("triggerer", kill_signal=signal.SIGKILL)  # a crash: nothing is handed over

    assert observer.wait_for_finish(timeout=240) == "failed", observer.task_states
    states = cluster.task_states(KILL_DAG_ID, run_id)
    assert sorted(states.values()) == ["failed"] * HALF + ["success"] * HALF, states
    assert all(state == "success" for key, state in states.items() if key.startswith("resend_once")), states
    failed = "\n".join(
        p.read_text(errors="replace") for p in cluster.task_log_files(KILL_DAG_ID, run_id, "fail")
    )
    assert failed.count("may have been billed") >= HALF
    # One POST per "fail" task (unchanged), two per "resend_once" task: exactly one more each.
    assert posts(sandbox) == TASKS + HALF
    manifests = {
        key: json.loads(s3_bucket.client.get_object(Bucket=s3_bucket.name, Key=key)["Body"].read())
        for key in s3_bucket.list_keys()
        if key.endswith("manifest.json")
    }
    resent = [m for k, m in manifests.items() if "task_id=resend_once/" in k and "/earlier/" not in k]
    assert len(resent) == HALF and all(m["status"] == "complete" for m in resent), resent
    for manifest in resent:  # both sends recorded: the lost one kept under earlier/, with its estimate
        (mark,) = manifest["earlier"]
        assert mark["resend"] is True and mark["estimated_cost_usd"] > 0
        assert manifest["actual_cost_usd"] > 0
    kept = [k for k in manifests if "task_id=resend_once/" in k and "/earlier/" in k]
    assert len(kept) == HALF, sorted(manifests)
    print(f"crash resend e2e: {posts(sandbox)} POSTs for {TASKS} tasks; timings {cluster.timings}")
