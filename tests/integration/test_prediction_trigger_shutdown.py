"""A triggerer's graceful stop with a paid request in flight, against the sandbox.

The real :class:`AIHubMixPredictionTrigger` runs under Airflow's own ``TriggerRunner``
(:mod:`tests.triggerer_fake`): its signal handler stops it while the sandbox holds the answer,
``asyncio.run`` cancels the trigger as the triggerer does, and the request runs on to its
stored answer. The next triggerer's run finishes from it with no request.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_aihubmix.hooks.aihubmix import aclose_shared_clients
from airflow_provider_aihubmix.operators.images import AIHubMixOpenAIImageOperator
from airflow_provider_aihubmix.sandbox import SandboxServer
from airflow_provider_aihubmix.triggers.aihubmix import AIHubMixPredictionTrigger
from airflow_provider_aihubmix.version_compat import TaskDeferred
from tests.task_fakes import FakeTaskInstance, context_for, run_trigger
from tests.triggerer_fake import TriggerRunner, shutdown, user_action

pytestmark = pytest.mark.timeout(120)

GPT = r"^/v1/models/openai/gpt-image-1-mini/predictions$"


def gpt(tmp_path: Path) -> AIHubMixOpenAIImageOperator:
    return AIHubMixOpenAIImageOperator(
        task_id="generate",
        model="gpt-image-1-mini",
        prompt="a red kite over a beach",
        quality="low",
        deferrable=True,
        output_uri=(tmp_path / "out").as_uri(),
    )


def manifest_path(tmp_path: Path) -> Path:
    (path,) = (tmp_path / "out").rglob("manifest.json")
    return path


def manifest_of(tmp_path: Path) -> dict[str, Any]:
    return json.loads(manifest_path(tmp_path).read_text())


def posts(sandbox: SandboxServer) -> int:
    return sum(1 for r in sandbox.client.requests(host="api", path=GPT) if r["method"] == "POST")


def deferred_trigger(tmp_path: Path, ti: FakeTaskInstance) -> AIHubMixPredictionTrigger:
    with pytest.raises(TaskDeferred) as info:
        gpt(tmp_path).execute(context_for(ti))
    trigger = info.value.trigger
    assert isinstance(trigger, AIHubMixPredictionTrigger)
    return trigger


def run_in_triggerer(trigger: AIHubMixPredictionTrigger, sandbox: SandboxServer, act: Any) -> list[Any]:
    """Run ``trigger`` in a triggerer; ``act(runner)`` once its request is on the wire."""
    events: list[Any] = []

    async def the_trigger() -> None:
        try:
            async for event in trigger.run():
                events.append(event)
        finally:
            await aclose_shared_clients()

    async def acting(runner: TriggerRunner) -> None:
        while not sandbox.client.requests(host="api", path=GPT):
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        act(runner)

    asyncio.run(TriggerRunner(the_trigger, acting).arun())  # as the triggerer's runner runs
    return events


def test_a_graceful_stop_stores_the_answer_and_the_next_triggerer_sends_nothing(
    sandbox_conn: str, sandbox: SandboxServer, tmp_path: Path
) -> None:
    ti = FakeTaskInstance()
    sandbox.client.inject(kind="slow", delay_s=2, path=GPT, count=1)
    trigger = deferred_trigger(tmp_path, ti)

    run_in_triggerer(trigger, sandbox, shutdown)  # its event is lost with the triggerer

    manifest = manifest_of(tmp_path)
    assert manifest["status"] == "received" and manifest["in_flight"] is None
    (stop,) = manifest["interruptions"]
    assert stop["cause"] == "graceful stop" and stop["request"] == 0 and stop["hold_until"]
    assert 0 < stop["in_flight_s"] < 2
    event = run_trigger(AIHubMixPredictionTrigger(**trigger.serialize()[1]))
    assert event["status"] == "success" and event["sent"] == 0 and event["images"] == 1
    assert len(gpt(tmp_path).execute_complete(context_for(ti), event)) == 1
    assert posts(sandbox) == 1


def test_a_user_action_abandons_the_request_and_says_so(
    sandbox_conn: str, sandbox: SandboxServer, tmp_path: Path
) -> None:
    ti = FakeTaskInstance()
    sandbox.client.inject(kind="slow", delay_s=30, path=GPT, count=1)
    trigger = deferred_trigger(tmp_path, ti)

    assert run_in_triggerer(trigger, sandbox, user_action) == []

    manifest = manifest_of(tmp_path)
    assert manifest["in_flight"] is not None
    (stop,) = manifest["interruptions"]
    assert stop["cause"] == "user action" and stop["hold_until"] is None
    event = run_trigger(AIHubMixPredictionTrigger(**trigger.serialize()[1]))
    assert event["status"] == "failed" and event["error_type"] == "AIHubMixPossiblyBilledError"
    assert "stopped (user action)" in event["message"] and "may have been billed" in event["message"]
    assert posts(sandbox) == 1


def test_the_next_triggerer_waits_out_the_hold_then_names_the_graceful_stop(
    sandbox_conn: str, sandbox: SandboxServer, tmp_path: Path
) -> None:
    """The stopping triggerer was killed before the answer came: the hold ends, nothing is sent."""
    ti = FakeTaskInstance()
    trigger = deferred_trigger(tmp_path, ti)
    path = manifest_path(tmp_path)
    manifest = json.loads(path.read_text())
    now = datetime.now(timezone.utc)
    sent = (now - timedelta(seconds=8)).isoformat()
    manifest["status"] = "submitting"
    manifest["in_flight"] = {"request": 0, "at": sent, "trigger_run": "old"}
    manifest["interruptions"] = [
        {
            "cause": "graceful stop",
            "at": now.isoformat(),
            "request": 0,
            "trigger_run": "old",
            "sent_at": sent,
            "in_flight_s": 8.0,
            "hold_until": (now + timedelta(seconds=1.5)).isoformat(),
        }
    ]
    path.write_text(json.dumps(manifest))

    event = run_trigger(AIHubMixPredictionTrigger(**trigger.serialize()[1]))

    assert datetime.now(timezone.utc) >= now + timedelta(seconds=1.5)  # it waited for the old process
    assert event["status"] == "failed" and event["sent"] == 0
    assert "stopped (graceful stop)" in event["message"] and "8 s after it sent" in event["message"]
    assert "terminationGracePeriodSeconds" in event["message"]
    assert posts(sandbox) == 0


def test_a_crash_is_recorded_as_one(sandbox_conn: str, sandbox: SandboxServer, tmp_path: Path) -> None:
    ti = FakeTaskInstance()
    trigger = deferred_trigger(tmp_path, ti)
    path = manifest_path(tmp_path)
    manifest = json.loads(path.read_text())
    manifest["status"] = "submitting"
    sent = (datetime.now(timezone.utc) - timedelta(seconds=5)).isoformat()
    manifest["in_flight"] = {"request": 0, "at": sent, "trigger_run": "old"}
    path.write_text(json.dumps(manifest))

    event = run_trigger(AIHubMixPredictionTrigger(**trigger.serialize()[1]))

    assert "without a graceful stop" in event["message"] and "may have been billed" in event["message"]
    (crash,) = manifest_of(tmp_path)["interruptions"]
    assert crash["cause"] == "crash" and crash["in_flight_s"] >= 5 and crash["hold_until"] is None
    assert manifest_of(tmp_path)["status"] == "ambiguous"
