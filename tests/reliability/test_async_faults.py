"""Async (Flux) tasks: failed and moderated outcomes, a task that never ends, a triggerer restart
while polling, and a worker killed between the submit and the deferral."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import pytest
from airflow.sdk.module_loading import import_string

from airflow_provider_aihubmix.exceptions import (
    AIHubMixPossiblyBilledError,
    AIHubMixTaskFailedError,
    AIHubMixTaskModeratedError,
    AIHubMixTaskNotFoundError,
    AIHubMixTaskTimeoutError,
)
from airflow_provider_aihubmix.version_compat import TaskDeferred
from tests.reliability.helpers import (
    TASK_PATH,
    TaskRunner,
    WorkerKilled,
    api_requests,
    image_files,
    make_context,
    posts,
    read_manifest,
    run_trigger,
)

AREA = "Async"
FLUX = "flux-2-pro"

OUTCOMES = [
    ("error", "sandbox:error", "Error"),
    ("request_moderated", "sandbox:request-moderated", "Request Moderated"),
    ("content_moderated", "sandbox:content-moderated", "Content Moderated"),
]


@pytest.mark.parametrize(("code", "token", "status"), OUTCOMES, ids=[o[0] for o in OUTCOMES])
def test_failed_and_moderated_tasks(code, token, status, api, sandbox, operator_factory, out_dir, report):
    run = TaskRunner(
        operator_factory(model=FLUX, prompt=f"a red kite {token}", deferrable=True), retries=1
    ).run()

    err = run.errors[0]
    assert isinstance(err, AIHubMixTaskFailedError) and err.code == code
    assert status in str(err)
    moderated = code.endswith("moderated")
    manifest = read_manifest(out_dir, "generate")
    assert manifest["status"] == "failed" and image_files(out_dir) == []
    submissions = len(posts(sandbox.client))
    if moderated:
        # Not retried: the same input gets the same verdict, and each resubmission is billed.
        assert isinstance(err, AIHubMixTaskModeratedError) and run.tries == 1
        assert submissions == 1
    else:
        # An upstream Error delivered nothing: the Airflow retry is a new purchase, and it fails too.
        assert run.tries == 2 and isinstance(run.errors[1], AIHubMixTaskFailedError)
        assert submissions == 2
    api.assert_clean(*run.errors, manifest)
    report.row(
        f"async-{code.replace('_', '-')}",
        area=AREA,
        scenario=f"the async task ends '{status}' (deferrable, retries=1)",
        expected=(
            "AIHubMixTaskModeratedError (no Airflow retry); manifest 'failed'; one submission"
            if moderated
            else "AIHubMixTaskFailedError naming the status; manifest 'failed'; the retry is a new purchase"
        ),
        result=f"{type(err).__name__} code={err.code}; {run.tries} tries, {submissions} POST(s)",
        requests=len(api_requests(sandbox.client)),
        billed=submissions,
        objects=0,
        duplicates=0,
    )


def test_task_not_found(api, sandbox, operator_factory, out_dir, report):
    submitted: list[int] = []

    def forget(_: Any) -> None:
        # The vendor forgets the task between the submit and the first poll.
        submitted.append(len(posts(sandbox.client)))
        sandbox.client.reset()
        sandbox.client.configure(api_key=api.key)

    run = TaskRunner(
        operator_factory(model=FLUX, prompt="a forgotten task", deferrable=True, not_found_grace=0.5),
        on_defer=forget,
    ).run()
    err = run.error
    assert isinstance(err, AIHubMixTaskNotFoundError) and err.code == "not_found"
    assert isinstance(err, AIHubMixTaskFailedError) and "Task not found" in str(err)
    assert submitted == [1] and posts(sandbox.client) == []  # no second submission after the reset
    # Unknown is not failed: the task stays recorded so a retry re-attaches instead of buying again.
    assert read_manifest(out_dir, "generate")["status"] == "submitted"
    api.assert_clean(err)
    report.row(
        "async-not-found",
        area=AREA,
        scenario="the task is unknown when polled ('Task not found')",
        expected="AIHubMixTaskNotFoundError code=not_found after the grace; manifest kept 'submitted'",
        result=f"{type(err).__name__} code={err.code}",
        requests=submitted[0] + len(api_requests(sandbox.client)),
        billed=1,
        objects=0,
        duplicates=0,
    )


@pytest.mark.parametrize("deferrable", [True, False], ids=["deferrable", "blocking"])
def test_a_task_that_never_finishes_ends_at_the_deadline(
    deferrable, api, sandbox, operator_factory, out_dir, report
):
    timeout = 2.0
    started = time.monotonic()
    run = TaskRunner(
        operator_factory(
            model=FLUX, prompt="sandbox:never", deferrable=deferrable, timeout=timeout, poll_interval=0.3
        ),
        retries=1,
    ).run()
    elapsed = time.monotonic() - started

    assert all(isinstance(e, AIHubMixTaskTimeoutError) for e in run.errors) and len(run.errors) == 2
    assert "deadline" in str(run.errors[0])
    # Each try waits out its own deadline, then gives up; generous upper bound, not a benchmark.
    assert 2 * timeout <= elapsed < 2 * timeout + 20
    # The task stays recorded as submitted: the retry re-attached instead of paying again.
    assert len(posts(sandbox.client)) == 1
    manifest = read_manifest(out_dir, "generate")
    assert manifest["status"] == "submitted" and len(manifest["remote_tasks"]) == 1
    polls = len(api_requests(sandbox.client, TASK_PATH))
    mode = "deferrable" if deferrable else "blocking"
    report.row(
        f"async-never-{mode}",
        area=AREA,
        scenario=f"a task that never finishes ({mode}, timeout {timeout:.0f} s, 1 Airflow retry)",
        expected="AIHubMixTaskTimeoutError at the wall-clock deadline; the retry re-attaches, no resubmit",
        result=f"2 timeouts in {elapsed:.1f} s total; {polls} polls; manifest still 'submitted'",
        requests=polls + 1,
        billed=1,
        objects=0,
        duplicates=0,
    )


def test_triggerer_restart_while_polling(api, sandbox, operator_factory, out_dir, report):
    build = operator_factory(model=FLUX, prompt="a slow lighthouse sandbox:delay=2", deferrable=True)
    runner = TaskRunner(build)
    context = make_context(runner.ti(1))
    with pytest.raises(TaskDeferred) as deferred:
        build().execute(context)
    trigger = deferred.value.trigger

    async def run_then_kill() -> list[Any]:
        events: list[Any] = []
        generator = trigger.run()
        pending = asyncio.ensure_future(generator.__anext__())
        deadline = time.monotonic() + 10
        while not api_requests(sandbox.client, TASK_PATH) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        pending.cancel()  # what the triggerer's shutdown does to every running trigger
        with contextlib.suppress(asyncio.CancelledError):
            events.append(await pending)
        await generator.aclose()
        return events

    before = asyncio.run(run_then_kill())
    polls_before = len(api_requests(sandbox.client, TASK_PATH))
    assert before == [] and polls_before >= 1

    # A new triggerer re-creates the trigger from its serialized form, deadline included.
    classpath, kwargs = trigger.serialize()
    revived = import_string(classpath)(**kwargs)
    assert revived.end_time == trigger.end_time
    events = asyncio.run(run_trigger(revived))
    assert len(events) == 1 and events[0]["status"] == "success"

    records = build().execute_complete(context, event=events[0])
    assert len(records) == 1 and len(image_files(out_dir)) == 1
    assert len(posts(sandbox.client)) == 1 and len(sandbox.client.tasks()) == 1
    report.row(
        "async-triggerer-restart",
        area=AREA,
        scenario="triggerer stops mid-poll; the trigger is re-created from serialize() (trigger level; the "
        "real-Airflow SIGKILL is tests/e2e/test_harness.py::"
        "test_deferred_task_resumes_after_triggerer_is_killed)",
        expected="one event in all, same deadline, one submission, image stored once",
        result=f"0 events before the stop, 1 after; {len(api_requests(sandbox.client, TASK_PATH))} polls",
        requests=len(api_requests(sandbox.client)),
        billed=1,
        objects=1,
        duplicates=0,
    )


def test_worker_killed_after_submit_before_deferral(api, sandbox, operator_factory, out_dir, report):
    build = operator_factory(model=FLUX, prompt="a kite killed mid-task", deferrable=True)

    def killed_before_defer() -> Any:
        operator = build()

        def die(**_: Any) -> None:
            raise WorkerKilled

        operator.defer = die
        return operator

    with pytest.raises(WorkerKilled):
        TaskRunner(killed_before_defer).run()
    manifest = read_manifest(out_dir, "generate")
    assert manifest["status"] == "submitted" and len(manifest["remote_tasks"]) == 1

    run = TaskRunner(build).run(first_try=2)
    assert run.ok, run.error
    assert run.deferrals == 1 and len(run.records) == 1
    assert run.records[0]["remote_task_id"] == manifest["remote_tasks"][0]["task_id"]
    assert len(posts(sandbox.client)) == 1 and len(sandbox.client.tasks()) == 1
    assert len(image_files(out_dir)) == 1
    report.row(
        "async-worker-killed",
        area=AREA,
        scenario="worker killed after the submit (manifest 'submitted') and before defer()",
        expected="the retry re-attaches to the recorded task: exactly one submission",
        result="try 2 deferred on the recorded task id and stored its image",
        requests=len(api_requests(sandbox.client)),
        billed=1,
        objects=1,
        duplicates=0,
    )


def test_worker_killed_while_the_post_is_in_flight(api, sandbox, operator_factory, out_dir, report):
    build = operator_factory(model=FLUX, prompt="a kite killed mid-request", deferrable=True)

    def killed_in_flight() -> Any:
        operator = build()
        predict = operator.hook.send

        def predict_then_die(*args: Any, **kwargs: Any) -> Any:
            predict(*args, **kwargs)  # the gateway accepted (and billed) it; the answer dies with us
            raise WorkerKilled

        operator.hook.send = predict_then_die
        return operator

    with pytest.raises(WorkerKilled):
        TaskRunner(killed_in_flight).run()
    assert read_manifest(out_dir, "generate")["status"] == "submitting"

    run = TaskRunner(build, retries=1).run(first_try=2)
    assert all(isinstance(e, AIHubMixPossiblyBilledError) for e in run.errors) and not run.ok
    assert "regenerate=True" in str(run.errors[0])
    assert len(posts(sandbox.client)) == 1
    report.row(
        "async-worker-killed-in-flight",
        area=AREA,
        scenario="worker killed while the billable POST was in flight (manifest 'submitting')",
        expected="retries refuse to submit again (AIHubMixPossiblyBilledError, regenerate=True to override)",
        result=f"{len(run.errors)} retries refused; 1 POST",
        requests=1,
        billed=1,
        objects=0,
        duplicates=0,
    )


def test_worker_killed_after_the_answer_before_storing(api, sandbox, operator_factory, out_dir, report):
    from airflow_provider_aihubmix.engine.run import ImageCollector

    build = operator_factory(model="qwen-image", prompt="a harbour killed before storing")
    original = ImageCollector.store_image

    def die(*args: Any, **kwargs: Any) -> Any:
        raise WorkerKilled

    ImageCollector.store_image = die  # type: ignore[method-assign]
    try:
        with pytest.raises(WorkerKilled):
            TaskRunner(build).run()
    finally:
        ImageCollector.store_image = original  # type: ignore[method-assign]
    status = read_manifest(out_dir, "generate")["status"]

    run = TaskRunner(build).run(first_try=2)
    assert run.ok, run.error
    assert len(posts(sandbox.client)) == 1 and len(image_files(out_dir)) == 1
    report.row(
        "async-worker-killed-before-store",
        area=AREA,
        scenario="worker killed after a sync answer arrived, before its image was stored",
        expected="the retry stores the image from the recorded answer without buying it again",
        result=f"manifest '{status}' after the kill; try 2 stored the image, no new POST",
        requests=len(api_requests(sandbox.client)),
        billed=1,
        objects=1,
        duplicates=0,
    )
