"""The UI plugin as Airflow loads it: the entry point, the views it adds and the app it mounts.

Runs on every Airflow the package claims (scripts/compat.sh runs tests/unit on Airflow 3.1 with
Python 3.10): the plugin and its app must import and build there too. What the app serves, and
to whom, is tested through a real api-server in tests/e2e/test_gallery_e2e.py.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from airflow.plugins_manager import AirflowPlugin
from fastapi.routing import APIRoute

from airflow_provider_aihubmix.gallery.plugin import AIHubMixGalleryPlugin
from airflow_provider_aihubmix.gallery.urls import gallery_path, gallery_url


def test_the_plugin_is_registered_under_the_airflow_plugins_entry_point() -> None:
    (entry,) = [e for e in entry_points(group="airflow.plugins") if e.name == "aihubmix_gallery"]
    plugin_class = entry.load()
    assert plugin_class is AIHubMixGalleryPlugin and issubclass(plugin_class, AirflowPlugin)


def test_the_plugin_adds_an_images_tab_to_runs_and_task_instances() -> None:
    views = {v["destination"]: v for v in AIHubMixGalleryPlugin.external_views}
    assert set(views) == {"dag_run", "task_instance"}
    assert views["dag_run"]["href"] == "aihubmix/gallery/{DAG_ID}/{RUN_ID}"
    assert views["task_instance"]["href"].endswith("?task_id={TASK_ID}&map_index={MAP_INDEX}")
    assert all(v["url_route"] and v["name"] == "Images" for v in views.values())


def test_the_app_mounts_at_aihubmix_with_the_page_json_and_image_routes() -> None:
    (app,) = AIHubMixGalleryPlugin().fastapi_apps
    assert app["url_prefix"] == "/aihubmix"
    routes = {r.path: r for r in app["app"].routes if isinstance(r, APIRoute)}
    assert set(routes) == {
        "/gallery/{dag_id}/{run_id}",
        "/api/gallery/{dag_id}/{run_id}",
        "/api/images/{dag_id}/{run_id}/{task_id}/{map_index}/{name}",
        "/api/thumbs/{dag_id}/{run_id}/{task_id}/{map_index}/{name}",
    }
    # Every data route depends on Airflow's DAG access check.
    for route in routes.values():
        checks = [d.call for d in route.dependant.dependencies if "requires_access" in repr(d.call)]
        assert checks, route.path


def test_gallery_urls_encode_ids_as_single_segments() -> None:
    run_id = "manual__2026-01-01T00:00:00+00:00"
    assert gallery_path("d", run_id) == "/aihubmix/gallery/d/manual__2026-01-01T00%3A00%3A00%2B00%3A00"
    assert gallery_path("d", "r/../x", "t", 2) == "/aihubmix/gallery/d/r%2F..%2Fx?task_id=t&map_index=2"
    assert gallery_path("d", "r", "t", -1) == "/aihubmix/gallery/d/r?task_id=t"
    assert (
        gallery_url("https://airflow.example.com/", "d", "r")
        == "https://airflow.example.com/aihubmix/gallery/d/r"
    )
