"""The hook called from a TaskFlow task: its result goes to XCom (JSON-safe), as the README shows."""

from __future__ import annotations

import base64
from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG, task

from airflow_provider_aihubmix.sandbox import SandboxServer
from tests.fixtures.airflow_db import DagTest, task_states, xcom_values
from tests.integration.operator_checks import api_posts

pytestmark = pytest.mark.timeout(240)

START = pendulum.datetime(2026, 1, 1, tz="UTC")
PNG = b"\x89PNG\r\n\x1a\n"


def test_a_base64_answer_returned_from_a_task_reaches_the_next_task(
    dag_test: DagTest, sandbox: SandboxServer, sandbox_conn: str
) -> None:
    with DAG("aihubmix_hook_taskflow", schedule=None, start_date=START) as dag:

        @task
        def generate() -> Any:
            from airflow_provider_aihubmix.hooks.aihubmix import AIHubMixHook

            # gpt-image answers with the image inline (base64): bytes that are not UTF-8.
            result = AIHubMixHook().predict("gpt-image-1-mini", {"prompt": "a kite for XCom"})
            return result.as_xcom()

        @task
        def raw() -> Any:
            from airflow_provider_aihubmix.hooks.aihubmix import AIHubMixHook

            return AIHubMixHook().predict("gpt-image-1-mini", {"prompt": "a kite, returned as is"})

        @task
        def check(result: dict[str, Any]) -> int:
            (image,) = result["images"]
            data = base64.b64decode(image["data"])
            assert data.startswith(PNG) or data[:3] == b"\xff\xd8\xff"
            return len(data)

        check(generate())
        raw()

    run = dag_test(dag)

    assert set(task_states(run).values()) == {"success"}, task_states(run)
    size = xcom_values(dag.dag_id, run.run_id)["check"][-1]
    assert size > 100
    assert len(api_posts(sandbox, "gpt-image-1-mini")) == 2  # one paid request per task, no retry
