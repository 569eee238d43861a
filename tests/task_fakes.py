"""What a task sees of Airflow, for tests that call operators and triggers directly.

Airflow's own provider tests do the same: the operators read a few task-instance fields from
the context and push one XCom; the triggerer's part is running a trigger to its events.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class FakeTaskInstance:
    """What the operators read from ``context["ti"]``; ``xcom_push`` keeps what they push."""

    dag_id: str = "flux_dag"
    task_id: str = "generate"
    run_id: str = "manual__2026-01-01T00:00:00+00:00"
    map_index: int = -1
    try_number: int = 1
    pushed: dict[str, Any] = field(default_factory=dict)

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def context_for(ti: FakeTaskInstance) -> Any:
    return {"ti": ti, "task_instance": ti, "run_id": ti.run_id, "params": {}}


async def trigger_events(trigger: Any) -> list[dict[str, Any]]:
    """Every event the trigger yields before its generator ends, then the shared clients closed."""
    from airflow_provider_aihubmix.hooks.aihubmix import aclose_shared_clients

    try:
        return [event.payload async for event in trigger.run()]
    finally:
        await aclose_shared_clients()


def run_trigger(trigger: Any) -> dict[str, Any]:
    """The triggerer's part: run the trigger to its one event and hand back the JSON payload."""
    (payload,) = asyncio.run(trigger_events(trigger))
    return json.loads(json.dumps(payload))
