"""AIHubMixTaskTrigger without a server: its stored schema, its validation and the wait's decisions.

The trigger against real HTTP is in ``tests/integration/test_trigger_sandbox.py``.
"""

from __future__ import annotations

import itertools
import json
import random
import time
from typing import Any

import httpx
import pytest
from airflow.sdk.module_loading import import_string

from airflow_provider_aihubmix.engine.events import EventStatus, TaskEvent, validate_event
from airflow_provider_aihubmix.engine.polling import PollSchedule, TaskWait, progress_text
from airflow_provider_aihubmix.exceptions import (
    AIHubMixAuthenticationError,
    AIHubMixError,
    AIHubMixRateLimitError,
    AIHubMixResponseError,
    AIHubMixUpstreamError,
)
from airflow_provider_aihubmix.responses.shapes import TaskState, TaskStatus
from airflow_provider_aihubmix.triggers.aihubmix import AIHubMixTaskTrigger

CLASSPATH = "airflow_provider_aihubmix.triggers.aihubmix.AIHubMixTaskTrigger"
# The stored schema: rows written by one release must load in the next. Change it knowingly.
SCHEMA_KEYS = {
    "submitted_at",
    "not_found_grace",
    "remote_task_id",
    "end_time",
    "aihubmix_conn_id",
    "poll_interval",
    "model",
    "max_transient_failures",
}


def make_trigger(**overrides: Any) -> AIHubMixTaskTrigger:
    kwargs: dict[str, Any] = {
        "remote_task_id": "task-123",
        "end_time": 1_900_000_000.25,
        "aihubmix_conn_id": "aihubmix_prod",
        "poll_interval": 2.5,
        "model": "bfl/flux-2-pro",
        "max_transient_failures": 3,
    }
    kwargs.update(overrides)
    return AIHubMixTaskTrigger(**kwargs)


# -- serialize -------------------------------------------------------------------------------


def test_serialize_has_the_stable_schema():
    classpath, kwargs = make_trigger().serialize()
    assert classpath == CLASSPATH
    assert set(kwargs) == SCHEMA_KEYS
    assert kwargs == {
        "remote_task_id": "task-123",
        "end_time": 1_900_000_000.25,
        "aihubmix_conn_id": "aihubmix_prod",
        "poll_interval": 2.5,
        "model": "bfl/flux-2-pro",
        "max_transient_failures": 3,
        "submitted_at": None,
        "not_found_grace": 60.0,
    }
    # The triggerer stores the kwargs as JSON: every value must survive that untouched.
    assert json.loads(json.dumps(kwargs)) == kwargs


def test_a_trigger_stored_before_the_grace_keys_still_loads():
    # A triggerer upgraded mid-wait re-creates triggers from kwargs an older version stored.
    _, kwargs = make_trigger().serialize()
    old = {k: v for k, v in kwargs.items() if k not in ("submitted_at", "not_found_grace")}
    trigger = AIHubMixTaskTrigger(**old)
    assert trigger.submitted_at is None and trigger.not_found_grace == 60.0


def test_serialize_round_trips_through_the_classpath():
    original = make_trigger()
    classpath, kwargs = original.serialize()
    rebuilt = import_string(classpath)(**json.loads(json.dumps(kwargs)))
    assert isinstance(rebuilt, AIHubMixTaskTrigger)
    assert rebuilt.serialize() == original.serialize()
    # The deadline is the wall-clock instant itself, not a duration restarted on re-creation.
    assert rebuilt.end_time == original.end_time


def test_serialize_round_trips_through_airflow_serde():
    # dag.test() and the triggerer decode stored kwargs with Airflow's serde.
    from airflow_provider_aihubmix.version_compat import deserialize, serialize

    classpath, kwargs = make_trigger(model=None).serialize()
    assert import_string(classpath)(**deserialize(serialize(kwargs))).serialize() == (classpath, kwargs)


def test_defaults_serialize_too():
    trigger = AIHubMixTaskTrigger("t-1", end_time=10)
    _, kwargs = trigger.serialize()
    assert set(kwargs) == SCHEMA_KEYS
    assert kwargs["aihubmix_conn_id"] == "aihubmix_default"
    assert kwargs["end_time"] == 10.0 and isinstance(kwargs["end_time"], float)
    assert kwargs["poll_interval"] > 0 and kwargs["max_transient_failures"] >= 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"remote_task_id": ""}, "remote_task_id"),
        ({"poll_interval": 0}, "poll_interval"),
        ({"poll_interval": -1}, "poll_interval"),
        ({"max_transient_failures": -1}, "max_transient_failures"),
    ],
)
def test_bad_arguments_are_refused_when_deferring(overrides: dict[str, Any], message: str):
    with pytest.raises(ValueError, match=message):
        make_trigger(**overrides)


async def test_on_kill_logs_that_nothing_is_cancelled(capsys: pytest.CaptureFixture[str]):
    await make_trigger().on_kill()
    out = capsys.readouterr().out
    assert "task-123" in out and "not cancelled" in out


# -- the poll schedule -----------------------------------------------------------------------


def test_schedule_backs_off_gently_to_a_ceiling():
    schedule = PollSchedule(2.0, jitter=0.0)
    intervals = [schedule.interval(n) for n in range(8)]
    assert intervals[0] == 2.0
    assert all(b >= a for a, b in itertools.pairwise(intervals))
    assert all(b / a <= 1.5 + 1e-9 for a, b in itertools.pairwise(intervals))  # gentle
    assert intervals[-1] == schedule.ceiling == 8.0


def test_schedule_ceiling_is_capped_at_a_minute():
    assert PollSchedule(30.0).ceiling == 60.0
    assert PollSchedule(90.0).ceiling == 90.0  # never below the first interval
    assert PollSchedule(1.0, max_interval=3.0).ceiling == 3.0


def test_schedule_jitter_spreads_polls_within_ten_percent():
    schedule = PollSchedule(10.0)
    rng = random.Random(7)
    values = [schedule.interval(0, rng) for _ in range(200)]
    assert all(9.0 <= v <= 11.0 for v in values)
    assert len({round(v, 6) for v in values}) > 100  # spread, not lock-step


def test_progress_text_reads_fractions_and_percentages():
    assert progress_text(None) == ""
    assert progress_text(0.42) == ", progress 42%"
    assert progress_text(42.0) == ", progress 42%"


# -- the decisions of one wait ---------------------------------------------------------------


def state(status: TaskStatus, raw: str, **kwargs: Any) -> TaskState:
    return TaskState(task_id="task-123", status=status, raw_status=raw, **kwargs)


def new_wait(**kwargs: Any) -> TaskWait:
    defaults: dict[str, Any] = {"end_time": time.time() + 600, "schedule": PollSchedule(1.0, jitter=0.0)}
    return TaskWait("task-123", model="bfl/flux-2-pro", **{**defaults, **kwargs})


def test_running_states_keep_waiting_and_ready_succeeds():
    wait = new_wait()
    assert wait.on_state(state(TaskStatus.PENDING, "Pending", progress=0.1)) is None
    assert wait.on_state(state(TaskStatus.RUNNING, "Generating", progress=0.6)) is None
    event = wait.on_state(state(TaskStatus.READY, "Ready", result_urls=["https://x/y.png"]))
    assert event is not None
    assert event.status is EventStatus.SUCCESS
    assert event.result_urls == ["https://x/y.png"]
    assert event.polls == 3 and event.model == "bfl/flux-2-pro"


@pytest.mark.parametrize(
    ("status", "raw"),
    [
        (TaskStatus.ERROR, "Error"),
        (TaskStatus.FAILED, "Failed"),
        (TaskStatus.REQUEST_MODERATED, "Request Moderated"),
        (TaskStatus.CONTENT_MODERATED, "Content Moderated"),
    ],
)
def test_every_failure_status_ends_with_failed_and_its_status(status: TaskStatus, raw: str):
    event = new_wait().on_state(state(status, raw, message="why"))
    assert event is not None
    assert event.status is EventStatus.FAILED
    assert event.task_status == raw
    assert event.message == "why"


def test_not_found_is_pending_within_the_grace_from_the_recorded_submit():
    submitted = 1_800_000_000.0
    wait = new_wait(submitted_at=submitted, not_found_grace=30)
    unknown = state(TaskStatus.NOT_FOUND, "Task not found")
    assert wait.on_state(unknown, now=submitted + 5) is None
    assert wait.on_state(unknown, now=submitted + 29.9) is None
    event = wait.on_state(unknown, now=submitted + 31)
    assert event is not None and event.status is EventStatus.FAILED
    assert event.task_status == "Task not found"
    assert "task-123" in (event.message or "") and "31 s after it was submitted" in (event.message or "")


def test_not_found_grace_must_not_be_negative():
    with pytest.raises(ValueError, match="not_found_grace"):
        new_wait(not_found_grace=-1)


def test_transient_failures_are_tolerated_up_to_the_bound_in_a_row():
    wait = new_wait(max_transient_failures=2)
    transient = [
        AIHubMixUpstreamError("502"),
        AIHubMixRateLimitError("429"),
        AIHubMixResponseError("garbled"),
        httpx.ReadTimeout("slow"),
    ]
    # A success in between resets the count: only consecutive failures add up.
    assert wait.on_error(transient[0]) is None
    assert wait.on_error(transient[1]) is None
    assert wait.on_state(state(TaskStatus.PENDING, "Pending")) is None
    assert wait.on_error(transient[2]) is None
    assert wait.on_error(transient[3]) is None
    event = wait.on_error(AIHubMixUpstreamError("503 again"))
    assert event is not None and event.status is EventStatus.ERROR
    assert "3 consecutive polls" in (event.message or "") and "503 again" in (event.message or "")
    assert event.task_status == "Pending"  # the last status seen travels with it


def test_a_refusal_ends_the_wait_at_once():
    event = new_wait().on_error(AIHubMixAuthenticationError("bad key", status_code=401))
    assert event is not None and event.status is EventStatus.ERROR and event.polls == 0


def test_an_unexpected_error_is_not_swallowed():
    with pytest.raises(KeyError):
        new_wait().on_error(KeyError("bug"))


def test_deadline_is_wall_clock():
    end = 1_000_000.0
    wait = new_wait(end_time=end)
    assert wait.check_deadline(now=end - 0.001) is None
    event = wait.check_deadline(now=end)
    assert event is not None and event.status is EventStatus.TIMEOUT
    assert "1970-01-12T13:46:40+00:00" in (event.message or "")


def test_next_delay_backs_off_and_never_passes_the_deadline():
    now = 1000.0
    wait = new_wait(end_time=now + 100, schedule=PollSchedule(1.0, jitter=0.0))
    wait.on_state(state(TaskStatus.PENDING, "Pending"))
    first = wait.next_delay(now)
    wait.on_state(state(TaskStatus.PENDING, "Pending"))
    wait.on_error(AIHubMixUpstreamError("x"))
    later = wait.next_delay(now)
    assert first == 1.0 and later > first  # failures back off too
    assert new_wait(end_time=now + 0.3).next_delay(now) == pytest.approx(0.3)
    assert new_wait(end_time=now - 5).next_delay(now) == 0.0


# -- the event ---------------------------------------------------------------------------------


def test_event_round_trips_and_a_malformed_one_fails_loudly():
    event = TaskEvent(status=EventStatus.SUCCESS, remote_task_id="t", result_urls=["https://a/b"], polls=2)
    assert validate_event(json.loads(json.dumps(event.model_dump(mode="json")))) == event
    with pytest.raises(AIHubMixError, match="Malformed"):
        validate_event({"status": "maybe", "remote_task_id": "t"})
    with pytest.raises(AIHubMixError, match="Malformed"):
        validate_event(None)
