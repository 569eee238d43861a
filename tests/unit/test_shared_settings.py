"""One settings object per connection in the triggerer: its triggers read the connection once per TTL.

The connection comes from an ``AIRFLOW_CONN_*`` variable through Airflow's own async connection
API; reads are counted where the hook makes them (``aget_connection``), and the TTL's clock is
replaced so the test never sleeps.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from airflow_provider_aihubmix.engine.polling import PollSchedule, TaskWait
from airflow_provider_aihubmix.hooks.aihubmix import AIHubMixHook
from airflow_provider_aihubmix.http import clients
from airflow_provider_aihubmix.http.clients import SETTINGS_TTL, shared_settings
from airflow_provider_aihubmix.http.settings import AIHubMixSettings
from airflow_provider_aihubmix.responses.shapes import TaskState, TaskStatus
from airflow_provider_aihubmix.triggers.aihubmix import AIHubMixTaskTrigger

KEY = "sk-shared-settings-secret-0123456789"
CONN_ID = "aihubmix_shared"
N = 50


def set_connection(monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    conn = {"conn_type": "aihubmix", "password": key, "host": "http://127.0.0.1:1"}
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1_000.0]
    monkeypatch.setattr(clients, "settings_clock", lambda: now[0])
    return now


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The connection reads the hook makes, by connection id."""
    seen: list[str] = []
    original = AIHubMixHook.aget_connection.__func__  # type: ignore[attr-defined]

    async def counted(cls: type[AIHubMixHook], conn_id: str) -> Any:
        seen.append(conn_id)
        await asyncio.sleep(0)  # let every other trigger ask while this read is under way
        return await original(cls, conn_id)

    monkeypatch.setattr(AIHubMixHook, "aget_connection", classmethod(counted))
    return seen


def triggers(count: int = N) -> list[AIHubMixTaskTrigger]:
    return [
        AIHubMixTaskTrigger(f"task-{i}", end_time=time.time() + 3600, aihubmix_conn_id=CONN_ID)
        for i in range(count)
    ]


async def poll_all(waiting: list[AIHubMixTaskTrigger], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """One real poll (``_poll``) of every trigger, the API answered by a stub that reports the key
    each poll was sent with; returns those keys."""
    keys: list[str] = []

    async def aget_task(self: AIHubMixHook, task_id: str) -> TaskState:
        keys.append((await self.aget_settings()).api_key)
        return TaskState(task_id=task_id, status=TaskStatus.RUNNING, raw_status="Running")

    monkeypatch.setattr(AIHubMixHook, "aget_task", aget_task)
    waits = [TaskWait(t.remote_task_id, end_time=t.end_time, schedule=PollSchedule(1.0)) for t in waiting]
    events = await asyncio.gather(*(t._poll(w) for t, w in zip(waiting, waits, strict=True)))
    assert events == [None] * len(waiting)  # still waiting
    return keys


async def test_n_triggers_of_one_connection_read_it_once_within_the_ttl_and_again_after(
    monkeypatch: pytest.MonkeyPatch, clock: list[float], reads: list[str]
) -> None:
    set_connection(monkeypatch, KEY)
    waiting = triggers()
    assert await poll_all(waiting, monkeypatch) == [KEY] * N
    assert reads == [CONN_ID]  # 50 triggers starting together: one read

    set_connection(monkeypatch, KEY + "-rotated")  # the connection is edited
    clock[0] += SETTINGS_TTL - 1
    assert await poll_all(waiting, monkeypatch) == [KEY] * N
    assert reads == [CONN_ID]  # within the TTL: no read, the old key

    clock[0] += 2
    assert await poll_all(waiting + triggers(5), monkeypatch) == [KEY + "-rotated"] * (N + 5)
    assert reads == [CONN_ID, CONN_ID]  # after it: one more read, waiting and new triggers see the edit


async def test_triggers_share_one_settings_object(
    monkeypatch: pytest.MonkeyPatch, clock: list[float], reads: list[str]
) -> None:
    set_connection(monkeypatch, KEY)
    settings = await asyncio.gather(*(t.hook().aget_settings() for t in triggers()))
    assert all(s is settings[0] for s in settings)
    assert settings[0].max_retries == 0  # the trigger hook's override, applied once for all
    plain = await AIHubMixHook(aihubmix_conn_id=CONN_ID).aget_settings()
    assert plain.max_retries != 0 and plain.api_key == settings[0].api_key
    assert reads == [CONN_ID]
    assert KEY not in repr(settings[0])


async def test_a_failed_read_is_not_kept_and_a_cancelled_waiter_does_not_cancel_the_read(
    clock: list[float],
) -> None:
    calls = 0
    release = asyncio.Event()

    async def load() -> AIHubMixSettings:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("metadata database unreachable")
        await release.wait()
        return AIHubMixSettings(api_key=KEY, conn_id="c")

    with pytest.raises(ConnectionError):
        await shared_settings("c", load)
    first = asyncio.create_task(shared_settings("c", load))
    second = asyncio.create_task(shared_settings("c", load))
    await asyncio.sleep(0)
    first.cancel()
    release.set()
    assert (await second).api_key == KEY
    assert calls == 2
    assert await shared_settings("c", load) is await second
    assert calls == 2
