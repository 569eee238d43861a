"""How to wait for an async task: one schedule and one set of decisions for triggerer and worker.

The interval starts at ``poll_interval`` and grows gently (x1.5 per poll up to
``max_interval``) so a long generation costs few requests, with +/-10 % jitter so a
fan-out of hundreds of tasks submitted together does not poll in lock-step.

:class:`TaskWait` holds what a wait decides between polls -- which status ends it, which
failure is worth another poll, when the deadline has passed -- without doing any I/O, so
the trigger (async, in the triggerer) and the blocking worker loop (:func:`wait_for_task`)
cannot drift apart.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from airflow_provider_aihubmix.engine.events import EventStatus, TaskEvent
from airflow_provider_aihubmix.exceptions import (
    AIHubMixError,
    AIHubMixRateLimitError,
    AIHubMixResponseError,
    AIHubMixUpstreamError,
)
from airflow_provider_aihubmix.responses.shapes import TaskState, TaskStatus
from airflow_provider_aihubmix.responses.task_status import DEFAULT_NOT_FOUND_GRACE

if TYPE_CHECKING:
    from airflow_provider_aihubmix.hooks.aihubmix import AIHubMixHook

DEFAULT_POLL_INTERVAL = 5.0
# Airflow's defer(timeout=) is a backstop: the trigger's own deadline event, which says more,
# must arrive first.
DEFER_TIMEOUT_MARGIN = timedelta(minutes=2)
DEFAULT_MAX_TRANSIENT_FAILURES = 5

# Failures worth another poll: the task itself is unaffected by a hiccup on the way to it.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    AIHubMixRateLimitError,
    AIHubMixUpstreamError,
    AIHubMixResponseError,
    httpx.TransportError,
)


@dataclass(frozen=True)
class PollSchedule:
    poll_interval: float = DEFAULT_POLL_INTERVAL
    max_interval: float | None = None  # default: 4 x poll_interval, at most 60 s
    factor: float = 1.5
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if self.poll_interval <= 0:
            raise ValueError(f"Parameter 'poll_interval' must be > 0 seconds, got {self.poll_interval!r}")

    @property
    def ceiling(self) -> float:
        if self.max_interval is not None:
            return max(self.max_interval, self.poll_interval)
        return max(self.poll_interval, min(4 * self.poll_interval, 60.0))

    def interval(self, poll_number: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before poll ``poll_number`` (0-based), jittered."""
        base = min(self.poll_interval * self.factor ** max(poll_number, 0), self.ceiling)
        spread = (rng or random).uniform(-self.jitter, self.jitter)
        return max(0.05, base * (1 + spread))


class Log(Protocol):
    """What a wait logs through: a stdlib logger, or the structlog one Airflow gives a trigger."""

    def info(self, msg: Any, /, *args: Any) -> Any: ...
    def warning(self, msg: Any, /, *args: Any) -> Any: ...
    def error(self, msg: Any, /, *args: Any) -> Any: ...


def progress_text(progress: float | None) -> str:
    """``progress`` as a percentage for logs: the API gives a 0..1 fraction or a 0..100 number."""
    if progress is None:
        return ""
    percent = progress * 100 if 0 <= progress <= 1 else progress
    return f", progress {percent:.0f}%"


def utc_text(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat(timespec="seconds")


class TaskWait:
    """The bookkeeping of one wait for ``remote_task_id``: feed it each poll's outcome.

    ``on_state`` / ``on_error`` / ``check_deadline`` return the one :class:`TaskEvent` that
    ends the wait, or ``None`` to poll again after :meth:`next_delay` seconds. The deadline
    ``end_time`` is wall-clock (seconds since the epoch) so it survives a process restart.

    "Task not found" within ``not_found_grace`` seconds of ``submitted_at`` (wall-clock, the
    time recorded in the manifest, so a triggerer restart keeps it; the wait's own start when
    unknown) is read as still pending: a task store may not know a fresh id yet.
    """

    def __init__(
        self,
        remote_task_id: str,
        *,
        end_time: float,
        schedule: PollSchedule,
        model: str | None = None,
        max_transient_failures: int = DEFAULT_MAX_TRANSIENT_FAILURES,
        log: Log | None = None,
        submitted_at: float | None = None,
        not_found_grace: float = DEFAULT_NOT_FOUND_GRACE,
    ) -> None:
        if not_found_grace < 0:
            raise ValueError(f"Parameter 'not_found_grace' must be >= 0 seconds, got {not_found_grace!r}")
        self.remote_task_id = remote_task_id
        self.submitted_at = time.time() if submitted_at is None else float(submitted_at)
        self.not_found_grace = float(not_found_grace)
        self.end_time = end_time
        self.schedule = schedule
        self.model = model
        self.max_transient_failures = max_transient_failures
        self.log: Log = log or logging.getLogger(__name__)
        self.polls = 0  # answered polls
        self.failures = 0  # consecutive failed polls
        self.last_status: str | None = None

    def event(self, status: EventStatus, message: str) -> TaskEvent:
        return TaskEvent(
            status=status,
            remote_task_id=self.remote_task_id,
            task_status=self.last_status,
            message=message,
            model=self.model,
            polls=self.polls,
        )

    def on_state(self, state: TaskState, now: float | None = None) -> TaskEvent | None:
        self.failures = 0
        self.polls += 1
        self.last_status = state.raw_status
        if state.status is TaskStatus.NOT_FOUND:
            return self._not_found(time.time() if now is None else now)
        if state.status.is_terminal:
            self.log.info(
                "AIHubMix task %s ended after %d poll(s): %s",
                self.remote_task_id,
                self.polls,
                state.raw_status,
            )
            return TaskEvent.from_state(state, model=self.model, polls=self.polls)
        self.log.info(
            "AIHubMix task %s: %s%s (poll %d)",
            self.remote_task_id,
            state.raw_status,
            progress_text(state.progress),
            self.polls,
        )
        return None

    def _not_found(self, now: float) -> TaskEvent | None:
        age = now - self.submitted_at
        if age < self.not_found_grace:
            self.log.info(
                "AIHubMix task %s is not known to the task store yet (%.0f s after submit; treated as "
                "pending for %.0f s)",
                self.remote_task_id,
                max(age, 0.0),
                self.not_found_grace,
            )
            return None
        self.log.error("AIHubMix task %s is still unknown %.0f s after submit", self.remote_task_id, age)
        return self.event(
            EventStatus.FAILED,
            f"AIHubMix task {self.remote_task_id} was still unknown to the task store (Task not found) "
            f"{age:.0f} s after it was submitted (grace {self.not_found_grace:.0f} s)",
        )

    def on_error(self, err: BaseException) -> TaskEvent | None:
        """A failed poll: tolerated while transient and within budget; anything else is re-raised."""
        if isinstance(err, TRANSIENT_ERRORS):
            self.failures += 1
            if self.failures <= self.max_transient_failures:
                self.log.warning(
                    "Polling AIHubMix task %s failed (%d/%d tolerated in a row): %s",
                    self.remote_task_id,
                    self.failures,
                    self.max_transient_failures,
                    err,
                )
                return None
            self.log.error("Giving up on AIHubMix task %s: %s", self.remote_task_id, err)
            return self.event(
                EventStatus.ERROR,
                f"{self.failures} consecutive polls of AIHubMix task {self.remote_task_id} failed; "
                f"last error: {err}",
            )
        if isinstance(err, AIHubMixError):
            # Authentication or quota: no number of polls will fix it.
            self.log.error("Polling AIHubMix task %s failed for good: %s", self.remote_task_id, err)
            return self.event(EventStatus.ERROR, str(err))
        raise err

    def check_deadline(self, now: float | None = None) -> TaskEvent | None:
        if (time.time() if now is None else now) < self.end_time:
            return None
        deadline = utc_text(self.end_time)
        self.log.warning(
            "AIHubMix task %s was not finished at its deadline %s", self.remote_task_id, deadline
        )
        return self.event(
            EventStatus.TIMEOUT,
            f"AIHubMix task {self.remote_task_id} was not finished at its deadline {deadline} "
            f"(last status {self.last_status!r})",
        )

    def next_delay(self, now: float | None = None) -> float:
        """The jittered, backed-off pause before the next poll, never past the deadline."""
        remaining = self.end_time - (time.time() if now is None else now)
        return max(0.0, min(self.schedule.interval(self.polls + self.failures - 1), remaining))


def wait_for_task(
    hook: AIHubMixHook,
    task_id: str,
    *,
    model: str | None,
    schedule: PollSchedule,
    timeout: float,
    submitted_at: float | None = None,
    not_found_grace: float | None = None,
) -> TaskEvent:
    """Poll in the worker (non-deferrable mode) with the trigger's decisions (:class:`TaskWait`).

    ``submitted_at`` (wall-clock epoch seconds, from the manifest) starts the "Task not found"
    grace window; ``not_found_grace`` is its length in seconds.
    """
    # Wall-clock, like the trigger's end_time.
    wait = TaskWait(
        task_id,
        end_time=time.time() + timeout,
        schedule=schedule,
        model=model,
        log=logging.getLogger("airflow_provider_aihubmix.engine.run"),
        submitted_at=submitted_at,
        not_found_grace=DEFAULT_NOT_FOUND_GRACE if not_found_grace is None else not_found_grace,
    )
    while True:
        try:
            event = wait.on_state(hook.get_task(task_id))
        except AIHubMixError as err:
            event = wait.on_error(err)
        event = event or wait.check_deadline()
        if event is not None:
            return event
        time.sleep(wait.next_delay())
