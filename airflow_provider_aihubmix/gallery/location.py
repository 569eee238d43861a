"""Where a task instance's manifest lives, recorded as a tiny XCom for the gallery to find.

A task's objects sit under ``<output_uri>/<task_prefix(dag_id, run_id, task_id, map_index)>``,
but ``output_uri`` is rendered at run time (or comes from the connection's extra) and the
AWS connection is an operator argument: the api-server cannot know either. So the worker
records them once, before anything is bought -- a failed or moderated task is found too.

Only locations go to XCom (never bytes, never secrets). The gallery trusts the value no
further than its checks allow: the prefix is rebuilt from the task instance's own ids, the
manifest must name that task instance, and only the images it records are served.
"""

from __future__ import annotations

from typing import Any, Protocol

#: XCom key of the location record: ``{"output_uri", "conn_id", "show_prompt"}``.
OUTPUT_LOCATION_XCOM_KEY = "aihubmix_output_location"


class _PushesXCom(Protocol):
    def xcom_push(self, key: str, value: Any) -> None: ...


def location_record(output_uri: str, conn_id: str | None, *, show_prompt: bool) -> dict[str, Any]:
    """The XCom value: the store's canonical ``output_uri``, its AWS connection id, prompt policy.

    ``show_prompt`` is the task's ``lineage_include_prompt``: a task that keeps its prompt out
    of lineage gets only the prompt's sha256 in the gallery as well.
    """
    return {"output_uri": output_uri, "conn_id": conn_id, "show_prompt": bool(show_prompt)}


def record_output_location(
    ti: _PushesXCom, output_uri: str, conn_id: str | None, *, show_prompt: bool
) -> None:
    """Push the location record for the running task instance (call before the billable request)."""
    ti.xcom_push(
        key=OUTPUT_LOCATION_XCOM_KEY, value=location_record(output_uri, conn_id, show_prompt=show_prompt)
    )


__all__ = ["OUTPUT_LOCATION_XCOM_KEY", "location_record", "record_output_location"]
