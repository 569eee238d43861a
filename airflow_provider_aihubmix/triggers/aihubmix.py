"""The trigger that waits for an async AIHubMix task (the Flux predictions) in the triggerer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_aihubmix.events import EventStatus, TaskEvent
from airflow_provider_aihubmix.exceptions import (
    AIHubMixError,
    AIHubMixRateLimitError,
    AIHubMixResponseError,
    AIHubMixUpstreamError,
)
from airflow_provider_aihubmix.polling import DEFAULT_MAX_TRANSIENT_FAILURES, PollSchedule

# Failures worth another poll: the task itself is unaffected by a hiccup on the way to it.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    AIHubMixRateLimitError,
    AIHubMixUpstreamError,
    AIHubMixResponseError,
    httpx.TransportError,
)


class AIHubMixTaskTrigger(BaseTrigger):
    """Poll ``GET /v1/tasks/<id>`` until the task ends, then yield exactly one event.

    The deadline ``end_time`` is a wall-clock epoch timestamp rather than a duration so
    that a triggerer restart, which re-creates the trigger from :meth:`serialize`, keeps
    the original deadline instead of starting a fresh one.

    Polls go only to the connection's task-status base URL, never to the ``polling_url``
    of the submit response: that is the upstream vendor and must not receive the key.

    :param remote_task_id: the AIHubMix task id (``taskId`` of the submit response).
    :param aihubmix_conn_id: the AIHubMix connection, read with the async connection API.
    :param poll_interval: the first poll interval in seconds; it backs off gently with jitter.
    :param end_time: wall-clock deadline (seconds since the epoch).
    :param model: the model path, echoed in the event for the worker.
    :param max_transient_failures: consecutive failed polls (429, 5xx, network) tolerated.
    """

    def __init__(
        self,
        remote_task_id: str,
        *,
        end_time: float,
        aihubmix_conn_id: str = "aihubmix_default",
        poll_interval: float = 5.0,
        model: str | None = None,
        max_transient_failures: int = DEFAULT_MAX_TRANSIENT_FAILURES,
    ) -> None:
        super().__init__()
        self.remote_task_id = remote_task_id
        self.end_time = float(end_time)
        self.aihubmix_conn_id = aihubmix_conn_id
        self.poll_interval = float(poll_interval)
        self.model = model
        self.max_transient_failures = int(max_transient_failures)
        self.schedule = PollSchedule(self.poll_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
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

    def _hook(self) -> Any:
        from airflow_provider_aihubmix.hooks.aihubmix import AIHubMixHook

        return AIHubMixHook(aihubmix_conn_id=self.aihubmix_conn_id)

    def _event(
        self, status: EventStatus, message: str, *, task_status: str | None, polls: int
    ) -> TriggerEvent:
        event = TaskEvent(
            status=status,
            remote_task_id=self.remote_task_id,
            task_status=task_status,
            message=message,
            model=self.model,
            polls=polls,
        )
        return TriggerEvent(event.model_dump(mode="json"))

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = self._hook()
        polls = 0
        failures = 0
        last_status: str | None = None
        while True:
            if time.time() >= self.end_time:
                self.log.warning("AIHubMix task %s reached its deadline", self.remote_task_id)
                yield self._event(
                    EventStatus.TIMEOUT,
                    f"AIHubMix task {self.remote_task_id} was not finished at its deadline",
                    task_status=last_status,
                    polls=polls,
                )
                return
            try:
                state = await hook.aget_task(self.remote_task_id)
            except TRANSIENT_ERRORS as err:
                failures += 1
                if failures > self.max_transient_failures:
                    yield self._event(
                        EventStatus.FAILED,
                        f"{failures} consecutive polls of AIHubMix task {self.remote_task_id} failed; "
                        f"last error: {err}",
                        task_status=last_status,
                        polls=polls,
                    )
                    return
                self.log.warning(
                    "Polling AIHubMix task %s failed (%d/%d tolerated): %s",
                    self.remote_task_id,
                    failures,
                    self.max_transient_failures,
                    err,
                )
            except AIHubMixError as err:
                # Authentication or quota: no number of polls will fix it.
                yield self._event(EventStatus.FAILED, str(err), task_status=last_status, polls=polls)
                return
            else:
                failures = 0
                polls += 1
                last_status = state.raw_status
                if state.status.is_terminal:
                    self.log.info("AIHubMix task %s ended: %s", self.remote_task_id, state.raw_status)
                    event = TaskEvent.from_state(state, model=self.model, polls=polls)
                    yield TriggerEvent(event.model_dump(mode="json"))
                    return
                self.log.info(
                    "AIHubMix task %s: %s%s",
                    self.remote_task_id,
                    state.raw_status,
                    f", progress {state.progress}" if state.progress is not None else "",
                )
            delay = self.schedule.interval(polls + failures)
            await asyncio.sleep(max(0.0, min(delay, self.end_time - time.time())))

    async def on_kill(self) -> None:
        """AIHubMix has no cancel endpoint: the remote task runs on and a retry re-attaches to it."""
        self.log.info(
            "Trigger for AIHubMix task %s killed; the remote task is not cancelled (no API for it) and "
            "stays recorded in the manifest",
            self.remote_task_id,
        )
