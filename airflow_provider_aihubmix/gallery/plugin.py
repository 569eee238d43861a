"""The Airflow UI plugin: the gallery app under the api-server and "Images" tabs in the UI.

Registered through the ``airflow.plugins`` entry point. Airflow >= 3.1 mounts
``fastapi_apps`` in the api-server and shows ``external_views`` as tabs: the
``dag_run`` and ``task_instance`` tabs embed the gallery page in an iframe (same origin,
so the UI's session cookie authenticates it). The app is built on first use, so
processes that load plugins but serve no HTTP (scheduler, workers) never import FastAPI.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from airflow.plugins_manager import AirflowPlugin

from airflow_provider_aihubmix.gallery.urls import APP_PREFIX

# No leading slash: the UI resolves these against its own base URL. It fills the {...} tokens.
_RUN_HREF = APP_PREFIX.lstrip("/") + "/gallery/{DAG_ID}/{RUN_ID}"
_TASK_HREF = _RUN_HREF + "?task_id={TASK_ID}&map_index={MAP_INDEX}"


class AIHubMixGalleryPlugin(AirflowPlugin):
    """The AIHubMix image gallery (FastAPI app at ``/aihubmix`` plus "Images" tabs)."""

    name = "aihubmix_gallery"

    external_views = [
        {
            "name": "Images",
            "href": _RUN_HREF,
            "destination": "dag_run",
            "url_route": "aihubmix_images_run",
        },
        {
            "name": "Images",
            "href": _TASK_HREF,
            "destination": "task_instance",
            "url_route": "aihubmix_images_task",
        },
    ]

    @cached_property
    def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]
        # Start-up cost: every Airflow component loads plugins; the FastAPI app (and its DB
        # lookups) is built only where the api-server mounts it.
        from airflow_provider_aihubmix.gallery.app import create_app

        return [{"app": create_app(), "url_prefix": APP_PREFIX, "name": "AIHubMix image gallery"}]


__all__ = ["AIHubMixGalleryPlugin"]
