"""A triggerer event-loop lag probe for the cluster benchmark (``benchmarks/bench_cluster.py``).

``LoopLagProbe`` defers to ``LoopLagTrigger``, which sleeps until a wall-clock moment and
then reports how late the triggerer's event loop woke it: with hundreds of AIHubMix waits
polling in the same loop, that lateness is the loop lag every trigger suffers. It lives on
the cluster's ``PYTHONPATH`` (not the DAG folder) because triggerers import triggers by
module path.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.sdk import BaseOperator, Context
from airflow.triggers.base import BaseTrigger, TriggerEvent


class LoopLagTrigger(BaseTrigger):
    """Fire at ``moment`` (epoch seconds) with ``{"lag_s": how late the loop got to it}``."""

    def __init__(self, moment: float) -> None:
        super().__init__()
        self.moment = float(moment)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{type(self).__module__}.{type(self).__qualname__}", {"moment": self.moment}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while (remaining := self.moment - time.time()) > 0:
            await asyncio.sleep(min(remaining, 1.0))
        yield TriggerEvent({"lag_s": time.time() - self.moment})


class LoopLagProbe(BaseOperator):
    """Defer ``delay_s`` seconds to the triggerer; return the loop lag it measured, in seconds."""

    def __init__(self, *, delay_s: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.delay_s = delay_s

    def execute(self, context: Context) -> None:
        self.defer(trigger=LoopLagTrigger(time.time() + float(self.delay_s)), method_name="done")

    def done(self, context: Context, event: dict[str, Any]) -> float:
        return float(event["lag_s"])
