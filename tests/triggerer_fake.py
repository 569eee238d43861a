"""Airflow's own ``TriggerRunner`` with its main loop cut down to what decides a cancellation.

Its real ``cancel_triggers`` cancels a trigger the way the installed Airflow does for a user
action (3.3: with the user-action message; 3.1 and 3.2: with none) and its real signal handler
sets ``stop``; run under ``asyncio.run`` as the triggerer runs it, the shutdown's cancellation
is the one ``asyncio.run`` sends every task still running when the main loop returns.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from airflow.jobs.triggerer_job_runner import TriggerRunner as AirflowTriggerRunner

TRIGGER_ID = 7


class TriggerRunner(AirflowTriggerRunner):
    """Airflow's runner; ``arun`` keeps only the cancelling and the stop flag (no comms, no DB).

    The name is Airflow's: the provider finds the triggerer's main loop by it.
    """

    def __init__(
        self,
        trigger: Callable[[], Awaitable[Any]],
        act: Callable[[TriggerRunner], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__()
        self.trigger = trigger
        self.act = act

    async def arun(self) -> None:
        task = asyncio.create_task(self.trigger())
        self.triggers[TRIGGER_ID] = {"task": task, "name": "t", "events": 0, "is_watcher": False}
        acting = asyncio.create_task(self.act(self)) if self.act else None
        while not self.stop and not task.done():
            await self.cancel_triggers()
            await asyncio.sleep(0.01)
        if acting is not None:
            await acting
        # Returning ends asyncio.run's main task: it cancels what still runs (the trigger) and waits.


def user_action(runner: TriggerRunner) -> None:
    runner.to_cancel.append(TRIGGER_ID)  # what the supervisor's TriggerStateSync.to_cancel does


def shutdown(runner: TriggerRunner) -> None:
    runner._handle_signal(signal.SIGTERM, None)  # the runner's own SIGINT/SIGTERM handler
