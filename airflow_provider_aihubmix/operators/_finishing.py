"""What the image operators and the sensor do alike, in one copy.

Both open the task instance's store and tell the gallery where it is (the "View image" link
reads that XCom), log a trigger's event the same way, and end with one finishing tail:
lineage state, the totals line, the records returned to XCom. Import-light: DAG parsing
imports the operators, so storage and the engine are imported only when a task runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_aihubmix.gallery.location import record_output_location
from airflow_provider_aihubmix.lineage import AIHubMixLineageMixin

if TYPE_CHECKING:
    import logging

    from airflow.sdk import Context

    from airflow_provider_aihubmix.engine.collection import ImageCollector
    from airflow_provider_aihubmix.engine.events import TaskEvent
    from airflow_provider_aihubmix.storage import ObjectStore


class AIHubMixImageTaskMixin(AIHubMixLineageMixin):
    """Shared by :class:`AIHubMixGenerateImageOperator` and :class:`AIHubMixTaskSensor`."""

    output_conn_id: str | None = None

    def record_store_location(self, context: Context, store: ObjectStore) -> ObjectStore:
        """Record where ``store`` is for the gallery, before anything is bought or stored, so it
        shows failed and moderated tasks too; returns ``store``."""
        record_output_location(
            context["ti"], store.base_uri, self.output_conn_id, show_prompt=self.lineage_include_prompt
        )
        return store

    def log_task_event(self, event: TaskEvent) -> None:
        """How an async task ended in the triggerer, as the task log says it."""
        task_log: logging.Logger = self.log  # type: ignore[attr-defined]  # BaseOperator's logger
        task_log.info(
            "AIHubMix task %s finished in the triggerer: %s after %d poll(s)",
            event.remote_task_id,
            event.task_status or event.status.value,
            event.polls,
        )

    def finish_task(self, run: ImageCollector, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The finishing tail: record what lineage reports, log the totals, return the records."""
        self._lineage_run = run
        self._lineage_records = records
        self.log_generation_totals()
        return records


__all__ = ["AIHubMixImageTaskMixin"]
