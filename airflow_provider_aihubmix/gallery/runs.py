"""Metadata-DB lookups for the gallery: a run's task instances and where each stored its images.

Runs in the api-server only. The queries read the task-instance and XCom tables directly
(as Airflow's own XCom endpoint does) and only the small location records -- never the
``return_value`` XCom, whose records the manifest already holds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_aihubmix.gallery.location import OUTPUT_LOCATION_XCOM_KEY

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

# Task instances shown even before they recorded a location (queued, running, failed early).
_OPERATOR_PREFIX = "AIHubMix"


@dataclass(frozen=True)
class TaskInstanceRow:
    """A task instance of the run and, once it started storing, where its objects live."""

    task_id: str
    map_index: int
    state: str | None
    try_number: int | None
    operator: str | None
    location: dict[str, Any] | None


def _decode(value: Any) -> Any:
    """An XCom column value: JSON text (most versions and backends) or an already-decoded value."""
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _valid_location(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict) or not isinstance(value.get("output_uri"), str):
        return None
    conn_id = value.get("conn_id")
    if conn_id is not None and not isinstance(conn_id, str):
        return None
    return {
        "output_uri": value["output_uri"],
        "conn_id": conn_id,
        "show_prompt": value.get("show_prompt") is True,
    }


def run_exists(session: Session, dag_id: str, run_id: str) -> bool:
    from airflow.models.dagrun import DagRun
    from sqlalchemy import select

    return (
        session.scalar(select(DagRun.id).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)) is not None
    )


def task_instances(
    session: Session,
    dag_id: str,
    run_id: str,
    *,
    task_id: str | None = None,
    map_index: int | None = None,
) -> list[TaskInstanceRow]:
    """The run's AIHubMix task instances (optionally one task, one map index), ordered for display."""
    from airflow.models.taskinstance import TaskInstance as TI
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    xcoms = select(XComModel.task_id, XComModel.map_index, XComModel.value).where(
        XComModel.dag_id == dag_id, XComModel.run_id == run_id, XComModel.key == OUTPUT_LOCATION_XCOM_KEY
    )
    tis = select(TI.task_id, TI.map_index, TI.state, TI.try_number, TI.operator).where(
        TI.dag_id == dag_id, TI.run_id == run_id
    )
    if task_id is not None:
        xcoms = xcoms.where(XComModel.task_id == task_id)
        tis = tis.where(TI.task_id == task_id)
    if map_index is not None:
        xcoms = xcoms.where(XComModel.map_index == map_index)
        tis = tis.where(TI.map_index == map_index)
    locations = {
        (row.task_id, row.map_index): _valid_location(_decode(row.value)) for row in session.execute(xcoms)
    }
    rows: list[TaskInstanceRow] = []
    for ti in session.execute(tis):
        location = locations.get((ti.task_id, ti.map_index))
        if location is None and not str(ti.operator or "").startswith(_OPERATOR_PREFIX):
            continue
        rows.append(
            TaskInstanceRow(
                task_id=ti.task_id,
                map_index=ti.map_index,
                state=str(ti.state.value if hasattr(ti.state, "value") else ti.state) if ti.state else None,
                try_number=ti.try_number,
                operator=ti.operator,
                location=location,
            )
        )
    rows.sort(key=lambda r: (r.task_id, r.map_index))
    return rows


__all__ = ["TaskInstanceRow", "run_exists", "task_instances"]
