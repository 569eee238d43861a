"""AIHubMixTaskTrigger over real HTTP against the sandbox: every ending, hiccups, the deadline, the pool.

Each test runs the trigger's ``run()`` to its end on the test's event loop, exactly as the
triggerer would (minus the process around it), and checks that it yields exactly one event.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from airflow.sdk.module_loading import import_string

from airflow_provider_aihubmix.engine.events import EventStatus, TaskEvent
from airflow_provider_aihubmix.hooks.aihubmix import AIHubMixHook, aclose_shared_clients, default_ssl_context
from airflow_provider_aihubmix.sandbox import SandboxServer
from airflow_provider_aihubmix.triggers.aihubmix import AIHubMixTaskTrigger

TASKS_PATH = r"^/v1/tasks/"


@pytest.fixture(autouse=True)
async def _close_shared_clients() -> AsyncIterator[None]:
    yield
    await aclose_shared_clients()


def submit(prompt: str, model: str = "flux-2-pro") -> str:
    """Submit an async Flux prediction (sync hook, as the worker does) and return its task id."""
    hook = AIHubMixHook()
    try:
        result = hook.predict(model, {"prompt": prompt})
    finally:
        hook.close()
    assert result.task is not None
    return result.task.task_id


def trigger_for(task_id: str, *, timeout: float = 30.0, **kwargs: Any) -> AIHubMixTaskTrigger:
    kwargs.setdefault("poll_interval", 0.1)
    return AIHubMixTaskTrigger(task_id, end_time=time.time() + timeout, model="bfl/flux-2-pro", **kwargs)


async def run_to_end(trigger: AIHubMixTaskTrigger) -> TaskEvent:
    """Drain ``run()``: it must yield exactly one event and then stop."""
    payloads = [event.payload async for event in trigger.run()]
    assert len(payloads) == 1, payloads
    # What the triggerer stores must be plain JSON.
    return TaskEvent.model_validate(json.loads(json.dumps(payloads[0])))


def task_polls(sandbox: SandboxServer, task_id: str) -> list[dict[str, Any]]:
    return sandbox.client.requests(host="api", path=f"^/v1/tasks/{task_id}$")


# -- every ending ------------------------------------------------------------------------------


async def test_success_yields_result_urls_and_polls_only_the_api(
    sandbox_conn: str, sandbox: SandboxServer, capsys: pytest.CaptureFixture[str]
):
    sandbox.client.configure(task_delay_s=1.0)
    task_id = submit("a paper-craft fox")
    event = await run_to_end(trigger_for(task_id))

    assert event.status is EventStatus.SUCCESS
    assert event.remote_task_id == task_id and event.model == "bfl/flux-2-pro"
    assert event.task_status == "Ready"
    assert len(event.result_urls) == 1 and event.result_urls[0].startswith(sandbox.storage_url)
    polls = task_polls(sandbox, task_id)
    assert len(polls) == event.polls >= 2  # it waited through Pending/Generating
    assert all(r["method"] == "GET" and r["status"] == 200 for r in polls)
    assert all(r["headers"]["authorization"] == f"Bearer {sandbox_conn}" for r in polls)
    # The submit response's polling_url is the upstream vendor's: never asked, never given the key.
    assert sandbox.client.requests(host="storage") == []
    # Progress is logged while waiting, and the key is not.
    out = capsys.readouterr().out
    assert "progress" in out and task_id in out
    assert sandbox_conn not in out


@pytest.mark.parametrize(
    ("token", "raw_status"),
    [
        ("sandbox:error", "Error"),
        ("sandbox:failed", "Failed"),
        ("sandbox:request-moderated", "Request Moderated"),
        ("sandbox:content-moderated", "Content Moderated"),
    ],
)
async def test_failure_outcomes_yield_failed_with_status_and_message(
    sandbox_conn: str, sandbox: SandboxServer, token: str, raw_status: str
):
    task_id = submit(f"a fox {token}")
    event = await run_to_end(trigger_for(task_id))
    assert event.status is EventStatus.FAILED
    assert event.task_status == raw_status
    assert event.message  # the API's detail, or a sentence naming the status
    assert event.result_urls == []


async def test_unknown_task_yields_failed_not_found(sandbox_conn: str, sandbox: SandboxServer):
    # Submitted two minutes ago: the not-found grace window (60 s by default) has passed.
    task_id = f"no-such-{uuid.uuid4().hex}"
    event = await run_to_end(trigger_for(task_id, submitted_at=time.time() - 120))
    assert event.status is EventStatus.FAILED
    assert event.task_status == "Task not found"
    assert event.polls == 1
    assert task_id in (event.message or "")


async def test_a_task_unknown_at_first_is_collected_within_the_grace(
    sandbox_conn: str, sandbox: SandboxServer
):
    # bfl-openapi lists "Task not found"; the store may not know a fresh id for a moment.
    task_id = submit("a lighthouse sandbox:unknown-for=0.8")
    event = await run_to_end(trigger_for(task_id, submitted_at=time.time()))
    assert event.status is EventStatus.SUCCESS and event.result_urls
    assert event.polls >= 2


@pytest.mark.parametrize(("style", "spelled"), [("lower", "succeeded"), ("completed", "completed")])
async def test_other_spellings_of_ready_succeed(
    sandbox_conn: str, sandbox: SandboxServer, style: str, spelled: str
):
    sandbox.client.configure(status_style=style)
    event = await run_to_end(trigger_for(submit("a bakery at dawn")))
    assert event.status is EventStatus.SUCCESS and event.task_status == spelled
    assert event.result_urls


async def test_a_task_set_to_fail_while_waiting_fails(sandbox_conn: str, sandbox: SandboxServer):
    sandbox.client.configure(task_delay_s=30.0)
    task_id = submit("a lighthouse")
    trigger = trigger_for(task_id)
    running = asyncio.create_task(run_to_end(trigger))
    await asyncio.sleep(0.4)
    assert not running.done()
    await asyncio.to_thread(sandbox.client.set_task, task_id, outcome="content_moderated", delay_s=0)
    event = await asyncio.wait_for(running, 10)
    assert event.status is EventStatus.FAILED and event.task_status == "Content Moderated"


# -- hiccups -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "status", "status": 503},
        {"kind": "status", "status": 429, "retry_after": 0},
        {"kind": "drop"},
        {"kind": "malformed_json"},
        {"kind": "error_200", "status": 502},
    ],
)
async def test_transient_failures_are_tolerated(sandbox_conn: str, sandbox: SandboxServer, fault: dict):
    task_id = submit("a fox in the rain")
    sandbox.client.inject(path=TASKS_PATH, count=2, **fault)
    event = await run_to_end(trigger_for(task_id, max_transient_failures=2))
    assert event.status is EventStatus.SUCCESS, event
    polls = task_polls(sandbox, task_id)
    assert sum(1 for r in polls if r["fault"]) == 2
    # The hook does not retry inside a poll: each failure is one request, counted by the trigger.
    assert len(polls) == event.polls + 2


async def test_too_many_consecutive_failures_end_with_error(sandbox_conn: str, sandbox: SandboxServer):
    task_id = submit("a fox in a storm")
    sandbox.client.inject(kind="status", status=502, path=TASKS_PATH)
    event = await run_to_end(trigger_for(task_id, max_transient_failures=2))
    assert event.status is EventStatus.ERROR
    assert "3 consecutive polls" in (event.message or "")
    assert len(task_polls(sandbox, task_id)) == 3
    assert sandbox_conn not in (event.message or "")


async def test_a_rejected_key_ends_the_wait_at_once(sandbox_conn: str, sandbox: SandboxServer):
    task_id = submit("a fox")
    sandbox.client.configure(api_key="sk-another-key")
    event = await run_to_end(trigger_for(task_id, max_transient_failures=5))
    assert event.status is EventStatus.ERROR
    assert len(task_polls(sandbox, task_id)) == 1
    assert sandbox_conn not in (event.message or "")


async def test_missing_connection_fails_with_one_event(
    sandbox_conn: str, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("AIRFLOW_CONN_AIHUBMIX_DEFAULT")
    event = await run_to_end(trigger_for("t-1", aihubmix_conn_id="aihubmix_missing_conn"))
    assert event.status is EventStatus.ERROR and "aihubmix_missing_conn" in (event.message or "")


# -- the deadline ------------------------------------------------------------------------------


async def test_deadline_yields_timeout(sandbox_conn: str, sandbox: SandboxServer):
    task_id = submit("a fox sandbox:never")
    trigger = trigger_for(task_id, timeout=1.0, poll_interval=0.2)
    event = await asyncio.wait_for(run_to_end(trigger), 15)
    assert event.status is EventStatus.TIMEOUT
    assert event.task_status in ("Pending", "Generating")
    assert event.polls == len(task_polls(sandbox, task_id)) >= 2
    assert time.time() >= trigger.end_time


async def test_recreated_trigger_keeps_its_deadline(sandbox_conn: str, sandbox: SandboxServer):
    """A triggerer restart re-creates the trigger from its stored kwargs: the deadline must not move."""
    task_id = submit("a fox sandbox:never")
    first = trigger_for(task_id, timeout=0.8, poll_interval=0.2)
    classpath, kwargs = first.serialize()
    stored = json.loads(json.dumps(kwargs))
    await asyncio.sleep(1.0)  # the triggerer was down past the deadline

    rebuilt = import_string(classpath)(**stored)
    assert rebuilt.end_time == first.end_time < time.time()
    event = await asyncio.wait_for(run_to_end(rebuilt), 10)
    # One last look, then the original deadline applies: no fresh timeout window.
    assert event.status is EventStatus.TIMEOUT
    assert event.polls == 1 == len(task_polls(sandbox, task_id))


async def test_recreated_trigger_past_its_deadline_still_collects_a_finished_task(
    sandbox_conn: str, sandbox: SandboxServer
):
    task_id = submit("a finished fox")
    sandbox.client.set_task(task_id, delay_s=0)
    classpath, kwargs = trigger_for(task_id, timeout=-5).serialize()
    event = await run_to_end(import_string(classpath)(**kwargs))
    assert event.status is EventStatus.SUCCESS and event.polls == 1


# -- the event loop and the pool ---------------------------------------------------------------


@pytest.fixture
def forbid_sync_io(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Record every blocking call made from the test's thread (the sandbox runs in another one)."""
    import airflow.sdk.log
    from airflow.sdk import BaseHook
    from airflow.sdk.definitions.connection import Connection

    from tests.compat import AIRFLOW_BLOCKING_FRAMES_ON_THE_LOOP

    calls: list[str] = []
    me = threading.get_ident()

    def made_by_airflow() -> bool:
        frame = sys._getframe(2)
        while frame is not None:
            if frame.f_code.co_name in AIRFLOW_BLOCKING_FRAMES_ON_THE_LOOP:
                return True
            frame = frame.f_back  # type: ignore[assignment]
        return False

    def spy(name: str, original: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() == me and not made_by_airflow():
                calls.append(name)
            return original(*args, **kwargs)

        return wrapper

    for owner, name in ((BaseHook, "get_connection"), (Connection, "get")):
        original = owner.__dict__[name].__func__
        monkeypatch.setattr(owner, name, classmethod(spy(f"{owner.__name__}.{name}", original)))
    monkeypatch.setattr(airflow.sdk.log, "mask_secret", spy("mask_secret", airflow.sdk.log.mask_secret))
    monkeypatch.setattr(httpx.Client, "send", spy("httpx.Client.send", httpx.Client.send))
    monkeypatch.setattr(time, "sleep", spy("time.sleep", time.sleep))
    # Building a TLS context reads the CA bundle from disk: start without one so the trigger
    # has to build it, and check that it does so off the loop.
    monkeypatch.setattr(
        ssl.SSLContext,
        "load_verify_locations",
        spy("SSLContext.load_verify_locations", ssl.SSLContext.load_verify_locations),
    )
    default_ssl_context.cache_clear()
    yield calls


async def test_run_makes_no_blocking_call(
    sandbox_conn: str, sandbox: SandboxServer, forbid_sync_io: list[str]
):
    task_id = await asyncio.to_thread(submit, "a fox")  # the worker's sync submit, off this thread
    forbid_sync_io.clear()
    event = await run_to_end(trigger_for(task_id))
    assert event.status is EventStatus.SUCCESS
    # No sync connection lookup, no sync secret masking (a call into the supervisor), no sync
    # HTTP, no CA bundle read, no sleeping thread: everything the trigger did on the loop was awaited.
    assert forbid_sync_io == []
    assert default_ssl_context.cache_info().currsize == 1  # it was built, in a worker thread


async def test_triggers_share_one_pooled_client_per_connection(
    sandbox_conn: str, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
):
    created: list[httpx.AsyncClient] = []
    original_init = httpx.AsyncClient.__init__

    def counting_init(self: httpx.AsyncClient, *args: Any, **kwargs: Any) -> None:
        created.append(self)
        original_init(self, *args, **kwargs)

    monkeypatch.setattr(httpx.AsyncClient, "__init__", counting_init)
    began = time.monotonic()
    task_ids = [submit(f"fox number {i}") for i in range(4)]
    # Each task ends 1 s after the triggers start, however long the submits took on a busy
    # machine (a task's delay counts from its creation), so every trigger polls several times.
    for task_id in task_ids:
        sandbox.client.set_task(task_id, delay_s=time.monotonic() - began + 1.0)
    events = await asyncio.gather(*(run_to_end(trigger_for(t)) for t in task_ids))
    assert [e.status for e in events] == [EventStatus.SUCCESS] * 4
    assert all(e.polls >= 2 for e in events), [e.polls for e in events]
    # Four triggers, many polls, one AsyncClient: the triggerer keeps one pool per connection.
    assert len(created) == 1
    assert str(created[0].base_url).rstrip("/") == sandbox.base_url
