"""Child process of ``test_secrets.py``: ``dag.test()`` of ``reliability_secrets`` in a fresh Airflow home.

A fresh process, as in ``tests/integration/test_lineage_dag.py``: OpenLineage (file transport)
is set up once per process. It writes the task states, every XCom and every rendered template
field to ``result.json`` for the parent to scan; the logs are this process's output.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

DAGS = Path(__file__).resolve().parent / "dags"


def main(result_path: str) -> None:
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.xcom import XComModel
    from airflow.utils import db
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from tests.compat import DagBag

    db.initdb()
    bag = DagBag(str(DAGS))
    assert not bag.import_errors, bag.import_errors
    dag = bag.get_dag("reliability_secrets")
    run = dag.test()
    result: dict[str, Any] = {
        "state": str(run.state),
        "tasks": {ti.task_id: str(ti.state) for ti in run.get_task_instances()},
        "xcom": [],
        "rendered": [],
    }
    with create_session() as session:
        for row in session.scalars(select(XComModel).where(XComModel.run_id == run.run_id)):
            result["xcom"].append(
                {"task_id": row.task_id, "key": row.key, "value": XComModel.deserialize_value(row)}
            )
        for rendered in session.scalars(
            select(RenderedTaskInstanceFields).where(RenderedTaskInstanceFields.run_id == run.run_id)
        ):
            result["rendered"].append({"task_id": rendered.task_id, "fields": rendered.rendered_fields})
    Path(result_path).write_text(json.dumps(result, default=str))


if __name__ == "__main__":
    main(sys.argv[1])
