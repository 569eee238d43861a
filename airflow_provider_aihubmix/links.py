"""The "View image" extra link: the first stored image of a task instance."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import BaseOperatorLink
from airflow.sdk.execution_time.xcom import XCom

if TYPE_CHECKING:
    from airflow.sdk.bases.operator import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

XCOM_LINK_KEY = "aihubmix_image_link"


class AIHubMixImageLink(BaseOperatorLink):
    """An S3 console link (or the local path) to the first image the task stored."""

    name = "View image"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        link = XCom.get_value(ti_key=ti_key, key=XCOM_LINK_KEY)
        return link if isinstance(link, str) else ""
