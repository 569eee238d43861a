"""The trigger that waits for an async AIHubMix task (the Flux predictions) in the triggerer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.exceptions import AirflowNotFoundException
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_aihubmix.events import EventStatus, TaskEvent
from airflow_provider_aihubmix.hooks.aihubmix import AIHubMixHook
from airflow_provider_aihubmix.polling import (
    DEFAULT_MAX_TRANSIENT_FAILURES,
    DEFAULT_POLL_INTERVAL,
    PollSchedule,
    TaskWait,
    utc_text,
)


class AIHubMixTaskTrigger(BaseTrigger):
    """Poll ``GET /v1/tasks/<id>`` until the task ends, then yield exactly one event.

    Everything in :meth:`run` is async: the connection comes from the async connection API
    (``AIHubMixHook.aget_settings``), and requests go through the pooled ``AsyncClient`` that
    every trigger of the triggerer process shares per connection. The hook's own retries are
    off (``max_retries=0``): this trigger counts consecutive failed polls itself and spaces
    them with its backoff schedule, so one bound governs how long a sick API is tolerated.

    The deadline ``end_time`` is a wall-clock epoch timestamp rather than a duration so that
    a triggerer restart, which re-creates the trigger from :meth:`serialize`, keeps the
    original deadline. At least one poll happens even past it: a task that finished while
    no triggerer was running is still collected.

    Polls go only to the connection's task-status base URL, never to the ``polling_url`` of
    the submit response: that is the upstream vendor and must not receive the key.

    :param remote_task_id: the AIHubMix task id (``taskId`` of the submit response).
    :param end_time: wall-clock deadline, seconds since the epoch.
    :param aihubmix_conn_id: the AIHubMix connection.
    :param poll_interval: the first poll interval in seconds; it backs off gently with jitter.
    :param model: the model path, echoed in the event for the worker.
    :param max_transient_failures: consecutive failed polls (429, 5xx, network, garbled body)
        tolerated; one more ends the wait with a ``failed`` event.
    """

    def __init__(
        self,
        remote_task_id: str,
        *,
        end_time: float,
        aihubmix_conn_id: str = AIHubMixHook.default_conn_name,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        model: str | None = None,
        max_transient_failures: int = DEFAULT_MAX_TRANSIENT_FAILURES,
    ) -> None:
        super().__init__()
        if not remote_task_id:
            raise ValueError("Parameter 'remote_task_id' must be a non-empty AIHubMix task id")
        if max_transient_failures < 0:
            raise ValueError(f"Parameter 'max_transient_failures' must be >= 0, got {max_transient_failures}")
        self.remote_task_id = remote_task_id
        self.end_time = float(end_time)
        self.aihubmix_conn_id = aihubmix_conn_id
        self.poll_interval = float(poll_interval)
        self.model = model
        self.max_transient_failures = int(max_transient_failures)
        self.schedule = PollSchedule(self.poll_interval)  # validates poll_interval > 0

    def serialize(self) -> tuple[str, dict[str, Any]]:
        # The stored schema: a triggerer of this version re-creates the trigger from exactly these keys.
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "remote_task_id": self.remote_task_id,
                "end_time": self.end_time,
                "aihubmix_conn_id": self.aihubmix_conn_id,
                "poll_interval": self.poll_interval,
                "model": self.model,
                "max_transient_failures": self.max_transient_failures,
            },
        )

    def hook(self) -> AIHubMixHook:
        """A hook that reads its connection lazily with the async API, on the shared client pool."""
        # No settings, no api_key: constructing it performs no lookup and no (sync) secret masking.
        return AIHubMixHook(aihubmix_conn_id=self.aihubmix_conn_id, max_retries=0)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = self.hook()
        wait = TaskWait(
            self.remote_task_id,
            end_time=self.end_time,
            schedule=self.schedule,
            model=self.model,
            max_transient_failures=self.max_transient_failures,
            log=self.log,
        )
        self.log.info(
            "Waiting for AIHubMix task %s (model %s) until %s; first poll interval %.1f s",
            self.remote_task_id,
            self.model or "unknown",
            utc_text(self.end_time),
            self.poll_interval,
        )
        while True:
            event: TaskEvent | None
            try:
                state = await hook.aget_task(self.remote_task_id)
            except AirflowNotFoundException as err:
                event = wait.event(EventStatus.ERROR, str(err))
            except Exception as err:
                event = wait.on_error(err)  # re-raises what is neither transient nor an API refusal
            else:
                event = wait.on_state(state)
            event = event or wait.check_deadline()
            if event is not None:
                yield TriggerEvent(event.model_dump(mode="json"))
                return
            await asyncio.sleep(wait.next_delay())

    async def on_kill(self) -> None:
        """AIHubMix has no cancel endpoint: the remote task runs on and a retry re-attaches to it."""
        self.log.info(
            "Trigger for AIHubMix task %s killed; the remote task is not cancelled (AIHubMix has no API "
            "for it) and stays recorded in the manifest, so a retry re-attaches to it",
            self.remote_task_id,
        )
