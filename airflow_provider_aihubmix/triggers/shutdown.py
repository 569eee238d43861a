"""A paid request in flight outlives the triggerer's graceful stop; a user action still stops it.

When the triggerer is stopped (SIGTERM from Kubernetes, systemd, ``docker stop``) its trigger
runner leaves its main loop and ``asyncio.run`` cancels every task still running, then waits
for them; Airflow's supervisor kills the runner with SIGKILL 20 s later (SIGINT, 10 s,
SIGTERM, 10 s). A request sent from a trigger is paid whatever happens to the connection, so
:func:`run_held` keeps it running until its answer is stored -- for as long as the process
lives -- instead of throwing the paid answer away:

* the request runs in its own task, a :class:`HeldTask`, which refuses the shutdown's
  cancellation (``cancel()`` without a message while the triggerer is stopping) and accepts
  every other (a cancel scope's timeout, the trigger's own cancel on a user action);
* the trigger awaits it through :func:`asyncio.shield`; when the trigger is cancelled it asks
  :func:`~airflow_provider_aihubmix.version_compat.cancelled_by_shutdown` why: a user action
  cancels the request at once, a shutdown records the interruption and waits on.

Nothing here blocks the event loop. Requests waiting for a slot under the in-flight cap
(:func:`paid_slot`) are not sent yet: a shutdown stops them at once, and the next triggerer
sends them.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from airflow_provider_aihubmix.engine.deferred import DEFAULT_SHUTDOWN_HOLD_S
from airflow_provider_aihubmix.version_compat import (
    cancelled_by_shutdown,
    conf,
    trigger_runner_task,
    triggerer_stopping,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

#: ``cancel()`` message the trigger passes on to its request when a user action stopped it.
USER_ACTION_STOP = "user action: the task was cleared, marked or deleted"

#: Paid requests one triggerer keeps in flight at most (``[aihubmix] triggerer_max_requests_in_flight``).
DEFAULT_MAX_REQUESTS_IN_FLIGHT = 100


class HeldTask(asyncio.Task):  # type: ignore[type-arg]
    """A task that refuses the cancellation ``asyncio.run`` sends every task when the triggerer stops.

    Any cancellation with a message (an anyio cancel scope's timeout, :data:`USER_ACTION_STOP`)
    and any while the triggerer is not stopping goes through as usual.
    """

    def __init__(
        self, coro: Coroutine[Any, Any, Any], *, runner: asyncio.Task[Any] | None, name: str | None = None
    ) -> None:
        super().__init__(coro, loop=asyncio.get_running_loop(), name=name)
        self._runner = runner

    def cancel(self, msg: Any | None = None) -> bool:
        if msg is None and triggerer_stopping(self._runner):
            return False
        return super().cancel(msg)


async def run_held(
    coro: Coroutine[Any, Any, T],
    *,
    on_shutdown: Callable[[], Awaitable[None]],
    runner: asyncio.Task[Any] | None = None,
    name: str | None = None,
) -> T:
    """Await ``coro`` to its end through a triggerer shutdown; stop it at once on a user action.

    ``on_shutdown`` runs once, when the shutdown's cancellation reaches the caller (record the
    interruption there); its errors are logged, never raised. ``runner``: the triggerer's main
    task (:func:`~airflow_provider_aihubmix.version_compat.trigger_runner_task`, looked up when
    omitted; ``None`` outside a triggerer, where every cancellation stops the request).
    Raises :class:`asyncio.CancelledError` on a user action.
    """
    if runner is None:
        runner = trigger_runner_task()
    task: asyncio.Task[T] = HeldTask(coro, runner=runner, name=name)
    held = False
    while True:
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError as err:
            if task.done() and not task.cancelled():
                return task.result()
            if not cancelled_by_shutdown(err, runner):
                task.cancel(USER_ACTION_STOP)
                raise
            current = asyncio.current_task()
            if current is not None and hasattr(current, "uncancel"):  # Python 3.11+
                current.uncancel()
            if not held:
                held = True
                try:
                    await asyncio.shield(asyncio.ensure_future(on_shutdown()))
                except Exception:
                    log.exception("Could not record the triggerer's shutdown; the request goes on")


def shutdown_hold_seconds() -> float:
    """``[aihubmix] triggerer_shutdown_hold_seconds``: how long the next triggerer waits for the
    answer a stopping one still holds (default :data:`~..engine.deferred.DEFAULT_SHUTDOWN_HOLD_S`)."""
    value = conf.getfloat("aihubmix", "triggerer_shutdown_hold_seconds", fallback=DEFAULT_SHUTDOWN_HOLD_S)
    return max(0.0, float(value))


def max_requests_in_flight() -> int:
    """``[aihubmix] triggerer_max_requests_in_flight`` (default 100; at least 1)."""
    value = conf.getint(
        "aihubmix", "triggerer_max_requests_in_flight", fallback=DEFAULT_MAX_REQUESTS_IN_FLIGHT
    )
    return max(1, int(value))


_SLOTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


@asynccontextmanager
async def paid_slot() -> AsyncIterator[None]:
    """One of the triggerer's slots for a paid request: a request over the cap waits here, unsent."""
    loop = asyncio.get_running_loop()
    slots = _SLOTS.get(loop)
    if slots is None:
        slots = _SLOTS[loop] = asyncio.Semaphore(max_requests_in_flight())
    async with slots:
        yield


__all__ = [
    "DEFAULT_MAX_REQUESTS_IN_FLIGHT",
    "USER_ACTION_STOP",
    "HeldTask",
    "max_requests_in_flight",
    "paid_slot",
    "run_held",
    "shutdown_hold_seconds",
]
