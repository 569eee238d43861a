"""A triggerer's shutdown vs a user action, told apart on the installed Airflow (3.1, 3.2 or 3.3).

The runner is Airflow's own ``TriggerRunner`` (:mod:`tests.triggerer_fake`): its real
``cancel_triggers`` and signal handler, under ``asyncio.run`` as the triggerer runs it.
``scripts/compat.sh`` runs this on each supported version.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_aihubmix.triggers.shutdown import USER_ACTION_STOP, paid_slot, run_held
from airflow_provider_aihubmix.version_compat import (
    AIRFLOW_V_3_3_PLUS,
    TRIGGER_USER_ACTION_CANCEL,
    cancelled_by_shutdown,
    trigger_runner_task,
    triggerer_stopping,
)
from tests.triggerer_fake import TriggerRunner, shutdown, user_action


class Flight:
    """A paid request that takes ``seconds``, and what the trigger around it saw."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.answered = False
        self.shutdowns = 0
        self.outcome: str | None = None
        self.cancel_args: tuple[Any, ...] = ()
        self.runner_found = False
        self.started = asyncio.Event()

    async def request(self) -> str:
        self.started.set()
        try:
            await asyncio.sleep(self.seconds)
        except asyncio.CancelledError as err:
            self.cancel_args = err.args
            raise
        self.answered = True
        return "answer"

    async def on_shutdown(self) -> None:
        self.shutdowns += 1

    async def trigger(self) -> None:
        self.runner_found = trigger_runner_task() is not None
        try:
            self.outcome = await run_held(self.request(), on_shutdown=self.on_shutdown)
        except asyncio.CancelledError:
            self.outcome = "cancelled"
            raise


def run_triggerer(flight: Flight, act: Callable[[TriggerRunner], None]) -> TriggerRunner:
    async def acting(runner: TriggerRunner) -> None:
        await flight.started.wait()
        await asyncio.sleep(0.05)
        act(runner)

    runner = TriggerRunner(flight.trigger, acting)
    asyncio.run(runner.arun())  # as TriggerRunner.run does
    return runner


def test_a_shutdown_lets_the_request_in_flight_finish() -> None:
    flight = Flight(seconds=0.5)
    run_triggerer(flight, shutdown)
    assert flight.runner_found
    assert flight.answered and flight.outcome == "answer"
    assert flight.shutdowns == 1
    assert flight.cancel_args == ()


def test_a_user_action_stops_the_request_at_once() -> None:
    flight = Flight(seconds=5)
    run_triggerer(flight, user_action)
    assert flight.runner_found
    assert not flight.answered and flight.outcome == "cancelled"
    assert flight.cancel_args == (USER_ACTION_STOP,)
    assert flight.shutdowns == 0


def test_the_version_s_user_action_message() -> None:
    seen: list[tuple[Any, ...]] = []

    async def trigger() -> None:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError as err:
            seen.append(err.args)
            raise

    async def act(runner: TriggerRunner) -> None:
        await asyncio.sleep(0.05)
        user_action(runner)

    asyncio.run(TriggerRunner(trigger, act).arun())
    # Airflow 3.3 says "user action"; 3.1 and 3.2 cancel with no message, as a shutdown does.
    assert seen == ([(TRIGGER_USER_ACTION_CANCEL,)] if AIRFLOW_V_3_3_PLUS else [()])


def test_cancelled_by_shutdown_reads_the_message_then_the_runner() -> None:
    async def check() -> None:
        runner = TriggerRunner(lambda: asyncio.sleep(0))
        main = asyncio.create_task(runner.arun())
        await asyncio.sleep(0)
        plain, user = asyncio.CancelledError(), asyncio.CancelledError(TRIGGER_USER_ACTION_CANCEL)
        assert not triggerer_stopping(None) and not cancelled_by_shutdown(plain, None)
        runner.stop = False
        assert not cancelled_by_shutdown(plain, main)
        shutdown(runner)
        assert triggerer_stopping(main) and cancelled_by_shutdown(plain, main)
        assert not cancelled_by_shutdown(user, main)  # 3.3's message wins even while stopping
        await main
        assert triggerer_stopping(main)  # the main loop ended: asyncio.run is cancelling the rest

    asyncio.run(check())


def test_outside_a_triggerer_every_cancellation_stops_the_request() -> None:
    async def check() -> None:
        flight = Flight(seconds=5)
        task = asyncio.create_task(flight.trigger())
        await flight.started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not flight.runner_found and flight.outcome == "cancelled" and not flight.answered

    asyncio.run(check())


def test_requests_over_the_cap_wait_unsent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__AIHUBMIX__TRIGGERER_MAX_REQUESTS_IN_FLIGHT", "2")
    out: list[int] = []
    most: list[int] = []

    async def paid() -> None:
        async with paid_slot():
            out.append(1)
            most.append(len(out))
            await asyncio.sleep(0.02)
            out.pop()

    async def check() -> None:
        await asyncio.gather(*(paid() for _ in range(7)))

    asyncio.run(check())
    assert max(most) == 2 and len(most) == 7
