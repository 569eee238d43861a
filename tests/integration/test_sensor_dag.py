"""The sensor in poke, reschedule and deferrable mode, and the async Flux example, under ``dag.test()``.

``dag.test()`` runs the real task runner; a task that defers has its trigger run inline
(Airflow 3 does that for ``dag.test``) and is resumed with the event, and a rescheduled
sensor goes through ``up_for_reschedule``. It runs in a fresh Python process with its own
``AIRFLOW_HOME`` (``python -m tests.integration.test_sensor_dag <result.json>``), like the
lineage scenarios: Airflow's process-wide state (DB, settings, supervisor comms) stays out
of the test process. The sandbox runs in the pytest process and is reached over loopback.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from airflow_provider_aihubmix.sandbox import SandboxServer

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_DAGS = ROOT / "example_dags"
MODES = ("poke", "reschedule", "deferrable")
CHILD_TIMEOUT_S = 300


# -- the child process -------------------------------------------------------------------------


def _sensor_dag(output_uri: str) -> Any:
    import pendulum
    from airflow.sdk import DAG

    from airflow_provider_aihubmix.operators.images import AIHubMixFluxOperator
    from airflow_provider_aihubmix.sensors.aihubmix import AIHubMixTaskSensor

    with DAG(
        dag_id="aihubmix_sensor_modes",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
    ) as dag:
        submits: dict[str, Any] = {}
        sensors: dict[str, Any] = {}
        for mode in MODES:
            # The rescheduled sensor's remote task takes 7 s, so its first pokes find it unfinished.
            delay = 7 if mode == "reschedule" else 2
            submits[mode] = submit = AIHubMixFluxOperator(
                task_id=f"submit_{mode}",
                model="flux-2-flex",
                prompt=f"A lighthouse made of stacked books sandbox:delay={delay}",
                wait_for_completion=False,
                output_uri=output_uri,
            )
            sensors[mode] = AIHubMixTaskSensor(
                task_id=f"wait_{mode}",
                aihubmix_task_id=f"{{{{ ti.xcom_pull(task_ids='submit_{mode}')[0]['remote_task_id'] }}}}",
                model="bfl/flux-2-flex",
                mode="reschedule" if mode == "reschedule" else "poke",
                deferrable=mode == "deferrable",
                poll_interval=1,
                timeout=120,
                output_uri=output_uri,
            )
            submit >> sensors[mode]
        # dag.test() runs one task at a time, in an order that differs between Airflow versions:
        # with the other sensors done first, nothing runs between the 7 s submit and its sensor.
        [sensors["poke"], sensors["deferrable"]] >> submits["reschedule"]
    return dag


def _load_dag(folder: Path, dag_id: str) -> Any:
    from tests.compat import DagBag

    bag = DagBag(str(folder))
    assert not bag.import_errors, bag.import_errors
    return bag.get_dag(dag_id)


def dags_folder(folder: Path) -> Path:
    """dag.test() runs DAGs of the dags folder's bundle: the async example and the one above."""
    folder.mkdir(parents=True)
    for name in ("_common.py", "aihubmix_flux_async.py"):
        shutil.copy(EXAMPLE_DAGS / name, folder / name)
    (folder / "aihubmix_sensor_modes.py").write_text(
        # The words "airflow" and "dag" mark a DAG file for the DagBag's safe-mode scan.
        "# airflow DAG\nimport os\n"
        "from tests.integration.test_sensor_dag import _sensor_dag\n"
        "dag = _sensor_dag(os.environ['AIHUBMIX_OUTPUT_URI'])\n"
    )
    return folder


def _outcome(dag: Any) -> dict[str, Any]:
    from airflow.models.taskreschedule import TaskReschedule
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    dag_run = dag.test()
    with create_session() as session:
        xcoms = session.scalars(
            select(XComModel).where(
                XComModel.dag_id == dag.dag_id,
                XComModel.run_id == dag_run.run_id,
                XComModel.key == "return_value",
            )
        )
        values = {f"{x.task_id}[{x.map_index}]": XComModel.deserialize_value(x) for x in xcoms}
        reschedules = dict(
            session.execute(select(TaskReschedule.ti_id, func.count()).group_by(TaskReschedule.ti_id)).all()
        )
        tis = dag_run.get_task_instances(session=session)
        return {
            "state": str(dag_run.state),
            "tasks": {f"{ti.task_id}[{ti.map_index}]": str(ti.state) for ti in tis},
            "reschedules": {f"{ti.task_id}[{ti.map_index}]": reschedules.get(ti.id, 0) for ti in tis},
            "xcom": values,
        }


def _child_main(result_path: str) -> None:
    from airflow.utils import db

    db.initdb()
    dags = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    result = {
        "sensors": _outcome(_load_dag(dags, "aihubmix_sensor_modes")),
        "example": _outcome(_load_dag(dags, "aihubmix_flux_async")),
    }
    Path(result_path).write_text(json.dumps(result, default=str))


# -- the pytest side ---------------------------------------------------------------------------


@pytest.fixture
def dag_test_result(sandbox_conn: str, sandbox: SandboxServer, tmp_path: Path) -> dict[str, Any]:
    # Long enough for several pokes and a reschedule, short enough to keep the test quick.
    sandbox.client.configure(task_delay_s=2.0)
    home = tmp_path / "airflow-home"
    home.mkdir()
    result_file = tmp_path / "result.json"
    dags = dags_folder(tmp_path / "dags")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__OPENLINEAGE__DISABLED": "True",
        "AIHUBMIX_OUTPUT_URI": (tmp_path / "images").as_uri(),
        "AIHUBMIX_POLL_INTERVAL": "0.5",
        # The example DAGs import their shared settings module from the dags folder.
        "PYTHONPATH": os.pathsep.join(filter(None, [str(dags), str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "tests.integration.test_sensor_dag", str(result_file)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
    )
    log = proc.stdout + proc.stderr
    (tmp_path / "child.log").write_text(log)
    assert proc.returncode == 0, f"dag.test failed; log in {tmp_path / 'child.log'}:\n{log[-6000:]}"
    result = json.loads(result_file.read_text())
    result["log"] = log
    result["predictions"] = [r["path"] for r in sandbox.client.requests(host="api", path=r"/predictions$")]
    return result


def assert_images(records: list[dict[str, Any]], model: str) -> None:
    assert records, "no records"
    for record in records:
        assert record["model"] == model and record["sha256"] and record["remote_task_id"]
        assert Path(urlsplit(record["uri"]).path).stat().st_size == record["bytes"]


def test_sensor_modes_and_the_example_under_dag_test(dag_test_result: dict[str, Any]):
    sensors = dag_test_result["sensors"]
    assert sensors["state"] == "success", sensors["tasks"]
    for mode in MODES:
        (submitted,) = sensors["xcom"][f"submit_{mode}[-1]"]
        assert set(submitted) == {"remote_task_id", "model", "map_index"}
        records = sensors["xcom"][f"wait_{mode}[-1]"]
        assert_images(records, "bfl/flux-2-flex")
        assert {r["remote_task_id"] for r in records} == {submitted["remote_task_id"]}
    # Each mode waited its own way: reschedule gave its slot back, deferrable ran its trigger.
    assert sensors["reschedules"]["wait_reschedule[-1]"] >= 1
    assert sensors["reschedules"]["wait_poke[-1]"] == 0
    assert sensors["reschedules"]["wait_deferrable[-1]"] == 0
    assert "running trigger in line" in dag_test_result["log"]

    example = dag_test_result["example"]
    assert example["state"] == "success", example["tasks"]
    for index in (0, 1):
        assert_images(example["xcom"][f"flux_generate[{index}]"], "bfl/flux-2-pro")
    assert_images(example["xcom"]["flux_wait[-1]"], "bfl/flux-2-flex")

    # One submission per generating task, whatever the waiting: 3 + 1 flex, 2 pro.
    predictions = dag_test_result["predictions"]
    assert predictions.count("/v1/models/bfl/flux-2-flex/predictions") == 4
    assert predictions.count("/v1/models/bfl/flux-2-pro/predictions") == 2


if __name__ == "__main__":
    _child_main(sys.argv[1])
