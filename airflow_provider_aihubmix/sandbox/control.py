"""The control API under ``/_sandbox/`` on the API port: never authenticated, faulted or logged."""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import Response

from airflow_provider_aihubmix.sandbox.config import TASK_OUTCOMES
from airflow_provider_aihubmix.sandbox.errors import ApiError, json_response
from airflow_provider_aihubmix.sandbox.faults import FaultRule
from airflow_provider_aihubmix.sandbox.state import SandboxState


async def _object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        payload = json.loads(raw) if raw else {}
    except ValueError:
        raise ApiError(400, "body is not JSON", code="invalid_json") from None
    if not isinstance(payload, dict):
        raise ApiError(400, "body must be a JSON object", code="invalid_request")
    return payload


# Long because it is the route table: each nested function is one control endpoint.
def control_router(state: SandboxState) -> APIRouter:
    router = APIRouter(prefix="/_sandbox")

    @router.get("/health")
    async def health() -> Response:
        return json_response({"ok": True, "storage_url": state.storage_url})

    @router.get("/requests")
    async def requests(host: str | None = None, path: str | None = None) -> Response:
        try:
            return json_response(state.requests(host, path))
        except re.error as exc:
            raise ApiError(400, f"path is not a regular expression: {exc}") from None

    @router.delete("/requests")
    async def clear_requests() -> Response:
        state.log.clear()
        return json_response({"ok": True})

    @router.get("/faults")
    async def faults() -> Response:
        return json_response(state.faults.rules())

    @router.post("/faults")
    async def add_fault(request: Request) -> Response:
        try:
            rule = FaultRule.model_validate(await _object(request))
        except ValidationError as exc:
            raise ApiError(
                400, f"bad fault rule: {exc.errors(include_url=False)}", code="bad_fault"
            ) from None
        return json_response(state.faults.add(rule), status=201)

    @router.delete("/faults")
    async def clear_faults() -> Response:
        state.faults.clear()
        return json_response({"ok": True})

    @router.delete("/faults/{rule_id}")
    async def remove_fault(rule_id: int) -> Response:
        if not state.faults.remove(rule_id):
            raise ApiError(404, f"no fault rule {rule_id}")
        return json_response({"ok": True})

    @router.get("/config")
    async def config() -> Response:
        return json_response(state.config.as_dict())

    @router.post("/config")
    async def configure(request: Request) -> Response:
        try:
            state.config.update(await _object(request))
        except ValueError as exc:
            raise ApiError(400, str(exc), code="bad_config") from None
        return json_response(state.config.as_dict())

    @router.post("/reset")
    async def reset() -> Response:
        state.reset()
        return json_response({"ok": True})

    @router.get("/tasks")
    async def tasks() -> Response:
        return json_response([task.describe() for task in state.tasks.values()])

    @router.post("/tasks/{task_id}")
    async def set_task(task_id: str, request: Request) -> Response:
        """Change a live task: ``{"outcome": ..., "delay_s": ...}`` (delay counts from its creation)."""
        task = state.tasks.get(task_id)
        if task is None:
            raise ApiError(404, f"no task {task_id}")
        payload = await _object(request)
        if "outcome" in payload:
            outcome = str(payload["outcome"]).replace("-", "_").lower()
            if outcome not in TASK_OUTCOMES:
                raise ApiError(400, f"outcome must be one of {TASK_OUTCOMES}", code="bad_outcome")
            task.outcome = outcome
        if "delay_s" in payload:
            delay = payload["delay_s"]
            if isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay < 0:
                raise ApiError(400, "delay_s must be a non-negative number", code="bad_delay")
            task.delay_s = float(delay)
        return json_response(task.describe())

    @router.get("/stats")
    async def stats() -> Response:
        return json_response(
            {
                "usage_usd": state.usage_usd,
                "tasks": len(state.tasks),
                "images_cached": len(state.images),
                "logged_requests": len(state.log),
                "storage_url": state.storage_url,
            }
        )

    return router
