"""Gallery URLs, built the same way by the extra link, the demo and the UI plugin."""

from __future__ import annotations

from urllib.parse import quote, urlencode

#: Where the api-server mounts the plugin's app.
APP_PREFIX = "/aihubmix"


def gallery_path(dag_id: str, run_id: str, task_id: str | None = None, map_index: int | None = None) -> str:
    """Path of the gallery page of a run (or of one task, one map index), from the api-server root.

    Ids are percent-encoded as single path segments (run ids hold ``:`` and ``+``).
    """
    path = f"{APP_PREFIX}/gallery/{quote(dag_id, safe='')}/{quote(run_id, safe='')}"
    query: dict[str, str] = {}
    if task_id is not None:
        query["task_id"] = task_id
        if map_index is not None and map_index >= 0:
            query["map_index"] = str(map_index)
    return f"{path}?{urlencode(query)}" if query else path


def gallery_url(
    base_url: str, dag_id: str, run_id: str, task_id: str | None = None, map_index: int | None = None
) -> str:
    """Absolute gallery URL under the api-server's ``[api] base_url`` (a relative path when unset)."""
    return base_url.rstrip("/") + gallery_path(dag_id, run_id, task_id, map_index)


__all__ = ["APP_PREFIX", "gallery_path", "gallery_url"]
