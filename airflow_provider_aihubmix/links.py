"""The "View image" extra link: the task instance's entry in the gallery.

The link is built in the worker when the task finishes (Airflow 3 stores extra links as
XCom), from the task instance's own ids and ``[api] base_url``; without a base URL it is a
path on the api-server, which the UI opens on the same origin. A task that never reached
storage (refused before any request) has no gallery entry and shows no link.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import BaseOperatorLink
from airflow.sdk.execution_time.xcom import XCom

from airflow_provider_aihubmix.gallery.location import OUTPUT_LOCATION_XCOM_KEY
from airflow_provider_aihubmix.gallery.urls import gallery_url
from airflow_provider_aihubmix.version_compat import conf

if TYPE_CHECKING:
    from airflow.sdk.bases.operator import BaseOperator
    from airflow.sdk.types import TaskInstanceKey


class AIHubMixImageLink(BaseOperatorLink):
    """Opens the gallery on this task instance's images (with model, prompt, seed, cost)."""

    name = "View image"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        if XCom.get_value(ti_key=ti_key, key=OUTPUT_LOCATION_XCOM_KEY) is None:
            return ""
        base_url = conf.get("api", "base_url", fallback="") or ""
        return gallery_url(base_url, ti_key.dag_id, ti_key.run_id, ti_key.task_id, ti_key.map_index)


__all__ = ["AIHubMixImageLink"]
