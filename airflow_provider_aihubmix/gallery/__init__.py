"""The image gallery: a UI plugin that shows a run's images inside Airflow.

Served by the api-server as the plugin's FastAPI app (``/aihubmix``), linked from the DAG-run
and task-instance pages and from the operators' "View image" link. It reads the manifests
(the source of truth) from the storage each task wrote to, enforces the viewer's DAG
permissions, and streams only images a manifest records under its own task prefix.

Modules:

* :mod:`.location`  -- the small XCom a task writes so the gallery can find its manifest;
* :mod:`.urls`      -- gallery URLs (used by the extra link, the demo and the plugin);
* :mod:`.manifests` -- manifest reading and safe image-name resolution (no Airflow imports);
* :mod:`.runs`      -- metadata-DB lookups: the task instances of a run and their locations;
* :mod:`.app`       -- the FastAPI app and its access checks;
* :mod:`.plugin`    -- the ``AirflowPlugin`` registered under the ``airflow.plugins`` entry point.
"""

from __future__ import annotations

from airflow_provider_aihubmix.gallery.location import OUTPUT_LOCATION_XCOM_KEY, record_output_location
from airflow_provider_aihubmix.gallery.urls import APP_PREFIX, gallery_path

__all__ = ["APP_PREFIX", "OUTPUT_LOCATION_XCOM_KEY", "gallery_path", "record_output_location"]
