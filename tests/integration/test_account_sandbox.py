"""The account's view against the sandbox: the model-list command, the connection test, the balance
and its guard (off by default; on, it refuses before any request)."""

from __future__ import annotations

import json
from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG

from airflow_provider_aihubmix.catalog.models import CATALOG
from airflow_provider_aihubmix.cli.models import main
from airflow_provider_aihubmix.hooks.aihubmix import AIHubMixHook
from airflow_provider_aihubmix.operators.images import AIHubMixImagenOperator
from airflow_provider_aihubmix.pricing.summary import summarize_run, total_line
from airflow_provider_aihubmix.sandbox import SandboxServer
from airflow_provider_aihubmix.sandbox.config import EXTRA_MODELS
from tests.fixtures.airflow_db import DagTest, task_states
from tests.integration.operator_checks import api_posts

pytestmark = pytest.mark.timeout(240)
START = pendulum.datetime(2026, 1, 1, tz="UTC")


def test_the_model_list_command_shows_what_the_sandbox_serves_that_the_catalog_lacks(
    sandbox: SandboxServer, sandbox_conn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--json", "--balance"]) == 0
    found = json.loads(capsys.readouterr().out)
    lacking = set(found["drift"]["lacking"])
    assert lacking == {name.split("/", 1)[-1] for name in EXTRA_MODELS}
    assert not lacking & {spec.model_id for spec in CATALOG.values()}
    assert found["drift"]["typed_by"] == "the public catalog's types"  # gpt-4o-mini is not counted
    assert found["balance"]["remaining_usd"] == 1000.0
    assert sandbox_conn not in json.dumps(found)

    assert main(["--fail-on-drift"]) == 1
    text = capsys.readouterr().out
    assert "Image models the catalog lacks (8):" in text and "  wan2.7-image-pro" in text
    sandbox.client.configure(extra_models=[])
    assert main(["--fail-on-drift"]) == 0
    assert "The catalog lists every image model this key can use." in capsys.readouterr().out


def test_the_command_with_base_url_reads_the_key_from_the_environment(
    sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AIHUBMIX_API_KEY", "sk-env-key")
    assert main(["--base-url", sandbox.base_url]) == 0
    assert "bailian" not in capsys.readouterr().out  # bare ids, as /v1/models lists them
    sandbox.client.configure(api_key="sk-other")
    assert main(["--base-url", sandbox.base_url]) == 2
    assert "sk-env-key" not in capsys.readouterr().err


def test_connection_test_reports_the_drift(sandbox: SandboxServer, sandbox_conn: str) -> None:
    ok, message = AIHubMixHook().test_connection()
    assert ok and "8 image model(s) the catalog lacks: " in message and "wan2.7-image-pro" in message


def _balance_conn(sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch, key: str, guard: Any) -> None:
    connection = {
        "conn_type": "aihubmix",
        "host": sandbox.base_url,
        "password": key,
        "extra": {"tasks_base_url": sandbox.base_url, "balance_guard": guard},
    }
    monkeypatch.setenv("AIRFLOW_CONN_AIHUBMIX_DEFAULT", json.dumps(connection))


@pytest.mark.parametrize("guard", [True, "true"])
def test_the_balance_guard_refuses_before_any_request(
    dag_test: DagTest,
    sandbox: SandboxServer,
    sandbox_conn: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
    guard: Any,
) -> None:
    _balance_conn(sandbox, monkeypatch, sandbox_conn, guard)
    sandbox.client.configure(balance_usd=0.05)  # Imagen 4 makes 4 images at 0.04 USD when n is unset
    with DAG("aihubmix_balance_guard", schedule=None, start_date=START) as dag:
        AIHubMixImagenOperator(task_id="poster", prompt="a kite", output_uri=tmp_path.as_uri(), retries=0)
    run = dag_test(dag)
    assert list(task_states(run).values()) == ["failed"]
    assert api_posts(sandbox) == []  # refused before the billable request
    assert sandbox.client.requests(host="api", path="/dashboard/billing/remain")


def test_the_balance_guard_is_off_by_default_and_the_summary_reports_the_balance(
    dag_test: DagTest, sandbox: SandboxServer, sandbox_conn: str, tmp_path: Any
) -> None:
    sandbox.client.configure(balance_usd=0.05)
    output_uri = tmp_path.as_uri()
    summaries: list[dict[str, Any]] = []
    with DAG("aihubmix_balance_default", schedule=None, start_date=START) as dag:
        poster = AIHubMixImagenOperator(task_id="poster", prompt="a kite", n=1, output_uri=output_uri)

        from airflow.sdk import task

        @task
        def summary(**context: Any) -> None:
            summaries.append(summarize_run(context, output_uri, balance=AIHubMixHook().get_balance()))

        poster >> summary()
    run = dag_test(dag)
    assert set(task_states(run).values()) == {"success"}
    assert summaries[0]["balance"]["remaining_usd"] == pytest.approx(0.01)
    assert "balance 0.0100 USD remaining" in total_line(summaries[0])
