"""Sync models sent from the triggerer: defer, send once, store, complete -- against the sandbox.

The operator runs against the sandbox over real HTTP and stores into a ``file://`` folder.
Between ``execute`` and ``execute_complete`` the real :class:`AIHubMixPredictionTrigger` runs
on an event loop as the triggerer would; a triggerer dying is its ``run()`` being cancelled
(or simply started again from the top, which is what a restarted triggerer does).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from airflow_provider_aihubmix.engine.deferred import StoredRequest
from airflow_provider_aihubmix.exceptions import (
    AIHubMixModerationError,
    AIHubMixPossiblyBilledError,
    AIHubMixTaskTimeoutError,
)
from airflow_provider_aihubmix.hooks.aihubmix import aclose_shared_clients
from airflow_provider_aihubmix.operators.images import (
    AIHubMixGenerateImageOperator,
    AIHubMixOpenAIImageOperator,
    AIHubMixQwenImageOperator,
)
from airflow_provider_aihubmix.sandbox import SandboxServer
from airflow_provider_aihubmix.triggers.aihubmix import AIHubMixPredictionTrigger
from airflow_provider_aihubmix.version_compat import TaskDeferred
from tests.task_fakes import FakeTaskInstance, context_for, run_trigger

pytestmark = pytest.mark.timeout(120)

GPT = r"^/v1/models/openai/gpt-image-1-mini/predictions$"


def gpt(tmp_path: Path, **kwargs: Any) -> AIHubMixOpenAIImageOperator:
    kwargs.setdefault("prompt", "a red kite over a beach")
    kwargs.setdefault("deferrable", True)
    return AIHubMixOpenAIImageOperator(
        task_id="generate",
        model="gpt-image-1-mini",
        quality="low",
        output_uri=(tmp_path / "out").as_uri(),
        **kwargs,
    )


def manifest_of(tmp_path: Path) -> dict[str, Any]:
    (path,) = (tmp_path / "out").rglob("manifest.json")
    return json.loads(path.read_text())


def request_files(tmp_path: Path) -> list[Path]:
    return list((tmp_path / "out").rglob("request.json"))


def defer(operator: AIHubMixGenerateImageOperator, ti: FakeTaskInstance) -> TaskDeferred:
    with pytest.raises(TaskDeferred) as info:
        operator.execute(context_for(ti))
    return info.value


def posts(sandbox: SandboxServer, path: str = GPT) -> list[dict[str, Any]]:
    return [r for r in sandbox.client.requests(host="api", path=path) if r["method"] == "POST"]


def statuses(tmp_path: Path) -> list[str]:
    return [attempt["status"] for attempt in manifest_of(tmp_path)["attempts"]]


def test_the_worker_stores_the_request_and_defers_with_small_kwargs(
    sandbox_conn: str, sandbox: SandboxServer, tmp_path: Path
):
    deferred = defer(gpt(tmp_path, image="data:image/png;base64," + "iVBORw0KGgo" * 2000), FakeTaskInstance())

    assert isinstance(deferred.trigger, AIHubMixPredictionTrigger)
    classpath, kwargs = deferred.trigger.serialize()
    assert classpath == "airflow_provider_aihubmix.triggers.aihubmix.AIHubMixPredictionTrigger"
    # Where things are, never what: the trigger row stays small however big the request.
    assert len(json.dumps(kwargs)) < 1024, kwargs
    assert kwargs["model"] == "openai/gpt-image-1-mini"
    assert deferred.method_name == "execute_complete"
    # Nothing was sent by the worker; the request waits beside the manifest.
    assert posts(sandbox) == []
    manifest = manifest_of(tmp_path)
    assert manifest["status"] == "deferred" and manifest["requests_total"] == 1
    (stored,) = request_files(tmp_path)
    request = StoredRequest.model_validate_json(stored.read_text())
    assert request.requests[0].path == "/v1/models/openai/gpt-image-1-mini/predictions"
    assert request.requests[0].body["input"]["prompt"] == "a red kite over a beach"
    assert sandbox_conn not in stored.read_text()  # the key is never stored


def test_the_triggerer_sends_once_stores_and_the_worker_completes(
    sandbox_conn: str, sandbox: SandboxServer, tmp_path: Path
):
    ti = FakeTaskInstance()
    event = run_trigger(defer(gpt(tmp_path, n=2), ti).trigger)

    assert event["status"] == "success" and event["images"] == 2 and event["sent"] == 1
    assert len(json.dumps(event)) < 1024  # no image bytes in the event
    manifest = manifest_of(tmp_path)
    assert manifest["status"] == "received" and manifest["in_flight"] is None
    assert [item["index"] for item in manifest["received"]] == [0, 1]
    assert statuses(tmp_path) == ["deferred", "submitting", "received"]

    records = gpt(tmp_path, n=2).execute_complete(context_for(ti), event)

    assert [r["index"] for r in records] == [0, 1]
    for record in records:
        stored = Path(urlsplit(record["uri"]).path)
        assert hashlib.sha256(stored.read_bytes()).hexdigest() == record["sha256"]
        assert record["model"] == "openai/gpt-image-1-mini" and record["content_type"].startswith("image/")
    manifest = manifest_of(tmp_path)
    assert manifest["status"] == "complete" and manifest["records"] == records
    assert manifest["usage"] and manifest["cost"]
    assert request_files(tmp_path) == []  # the request (maybe private references) is gone
    assert len(posts(sandbox)) == 1
    assert sandbox_conn not in json.dumps(records)


def test_a_restarted_trigger_finishes_from_the_stored_answer_without_sending(
    sandbox_conn: str, sandbox: SandboxServer, tmp_path: Path
):
    ti = FakeTaskInstance()
    trigger = defer(gpt(tmp_path), ti).trigger
    run_trigger(trigger)  # its event was lost with the triggerer
    _, kwargs = trigger.serialize()

    event = run_trigger(AIHubMixPredictionTrigger(**kwargs))  # the next triggerer, from the row

    assert event["status"] == "success" and event["sent"] == 0 and event["images"] == 1
    records = gpt(tmp_path).execute_complete(context_for(ti), event)
    assert len(records) == 1 and manifest_of(tmp_path)["status"] == "complete"
    assert len(posts(sandbox)) == 1


def test_a_trigger_killed_after_sending_is_never_sent_again(
    sandbox_conn: str, sandbox: SandboxServer, tmp_path: Path
):
    ti = FakeTaskInstance()
    # The answer takes long: the triggerer dies while the request is in flight.
    sandbox.client.inject(kind="slow", delay_s=30, path=GPT, count=1)
    trigger = defer(gpt(tmp_path), ti).trigger

    async def killed_mid_request() -> None:
        task = asyncio.ensure_future(run_trigger_events(trigger))
        for _ in range(200):
            await asyncio.sleep(0.05)
            if posts(sandbox) or sandbox.client.requests(host="api", path=GPT):
                break
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await aclose_shared_clients()

    asyncio.run(killed_mid_request())
    assert manifest_of(tmp_path)["in_flight"] is not None  # the send marker

    event = run_trigger(AIHubMixPredictionTrigger(**trigger.serialize()[1]))

    assert event["status"] == "failed" and event["sent"] == 0
    assert event["error_type"] == "AIHubMixPossiblyBilledError"
    with pytest.raises(AIHubMixPossiblyBilledError, match="may have been billed"):
        gpt(tmp_path).execute_complete(context_for(ti), event)
    assert manifest_of(tmp_path)["status"] == "ambiguous"
    # A retry of the task does not buy again either.
    with pytest.raises(AIHubMixPossiblyBilledError, match="may have been billed"):
        gpt(tmp_path).execute(context_for(FakeTaskInstance(try_number=2)))
    assert sandbox.client.billed_count(GPT) == 1


async def run_trigger_events(trigger: AIHubMixPredictionTrigger) -> list[Any]:
    return [event async for event in trigger.run()]


def test_rate_limits_and_5xx_are_retried_inside_the_trigger(
    sandbox_conn: str, sandbox: SandboxServer, tmp_path: Path
):
    ti = FakeTaskInstance()
    sandbox.client.inject(kind="status", status=429, retry_after=0.2, path=GPT, count=1)
    sandbox.client.inject(kind="status", status=503, retry_after=0.2, path=GPT, count=1)
    event = run_trigger(defer(gpt(tmp_path), ti).trigger)

    assert event["status"] == "success"
    assert [r["status"] for r in posts(sandbox)] == [429, 503, 200]
    assert sandbox.client.billed_count(GPT) == 1
    assert len(gpt(tmp_path).execute_complete(context_for(ti), event)) == 1


def test_a_refusal_raises_the_blocking_paths_error_and_is_redelivered(
    sandbox_conn: str, sandbox: SandboxServer, tmp_path: Path
):
    ti = FakeTaskInstance()
    sandbox.client.inject(kind="moderation", path=GPT, count=1)
    trigger = defer(gpt(tmp_path), ti).trigger
    event = run_trigger(trigger)

    assert event["status"] == "failed" and event["error_type"] == "AIHubMixModerationError"
    with pytest.raises(AIHubMixModerationError) as info:
        gpt(tmp_path).execute_complete(context_for(ti), event)
    assert info.value.status_code == 400
    assert manifest_of(tmp_path)["status"] == "failed"
    # The event was lost: the next triggerer re-delivers the same failure without sending.
    again = run_trigger(AIHubMixPredictionTrigger(**trigger.serialize()[1]))
    assert again["error_type"] == "AIHubMixModerationError" and again["sent"] == 0
    assert len(posts(sandbox)) == 1


def test_a_lost_answer_fails_as_possibly_billed(sandbox_conn: str, sandbox: SandboxServer, tmp_path: Path):
    ti = FakeTaskInstance()
    sandbox.client.inject(kind="reset_after_send", path=GPT, count=1)
    event = run_trigger(defer(gpt(tmp_path), ti).trigger)

    assert event["error_type"] == "AIHubMixPossiblyBilledError"
    with pytest.raises(AIHubMixPossiblyBilledError, match="may have been billed"):
        gpt(tmp_path).execute_complete(context_for(ti), event)
    assert manifest_of(tmp_path)["status"] == "ambiguous"
    assert len(posts(sandbox)) == 1 and sandbox.client.billed_count(GPT) == 1


def test_past_the_deadline_nothing_is_sent_and_the_retry_sends(
    sandbox_conn: str, sandbox: SandboxServer, tmp_path: Path
):
    ti = FakeTaskInstance()
    trigger = defer(gpt(tmp_path), ti).trigger
    late = AIHubMixPredictionTrigger(**{**trigger.serialize()[1], "end_time": 1.0})
    event = run_trigger(late)

    assert event["status"] == "timeout" and event["sent"] == 0
    with pytest.raises(AIHubMixTaskTimeoutError, match="nothing was billed"):
        gpt(tmp_path).execute_complete(context_for(ti), event)
    assert posts(sandbox) == [] and manifest_of(tmp_path)["status"] == "deferred"

    retry = FakeTaskInstance(try_number=2)
    records = gpt(tmp_path).execute_complete(
        context_for(retry), run_trigger(defer(gpt(tmp_path), retry).trigger)
    )
    assert len(records) == 1 and len(posts(sandbox)) == 1


def test_url_answers_are_downloaded_and_stored_by_the_trigger(
    sandbox_conn: str, sandbox: SandboxServer, tmp_path: Path
):
    ti = FakeTaskInstance()
    operator = AIHubMixQwenImageOperator(
        task_id="generate", prompt="a green kite", deferrable=True, output_uri=(tmp_path / "out").as_uri()
    )
    event = run_trigger(defer(operator, ti).trigger)
    assert event["status"] == "success"
    downloads = len(sandbox.client.requests(host="storage", path=r"^/images/"))
    assert downloads == 1  # in the triggerer
    manifest = manifest_of(tmp_path)
    assert manifest["received"][0]["key"] and manifest["received"][0]["sha256"]

    records = operator.execute_complete(context_for(ti), event)

    assert len(records) == 1 and manifest_of(tmp_path)["status"] == "complete"
    assert (
        len(sandbox.client.requests(host="storage", path=r"^/images/")) == downloads
    )  # verified, not fetched
    assert manifest_of(tmp_path)["received"][0]["url"] is None  # signed URL dropped once complete


GPT_1 = r"^/v1/models/openai/gpt-image-1/predictions$"


def two_requests(tmp_path: Path, ti: FakeTaskInstance) -> AIHubMixPredictionTrigger:
    """A deferred purchase of two requests (as Gemini's n=2 is), the second for another model path."""
    trigger = defer(gpt(tmp_path), ti).trigger
    (stored,) = request_files(tmp_path)
    request = StoredRequest.model_validate_json(stored.read_text())
    second = request.requests[0].model_copy(deep=True)
    second.path = "/v1/models/openai/gpt-image-1/predictions"
    stored.write_text(
        request.model_copy(update={"requests": [request.requests[0], second]}).model_dump_json()
    )
    manifest_path = next((tmp_path / "out").rglob("manifest.json"))
    manifest_path.write_text(json.dumps({**json.loads(manifest_path.read_text()), "requests_total": 2}))
    assert isinstance(trigger, AIHubMixPredictionTrigger)
    return trigger


def test_several_requests_are_sent_in_order_each_recorded_before_the_next(
    sandbox_conn: str, sandbox: SandboxServer, tmp_path: Path
):
    ti = FakeTaskInstance()
    event = run_trigger(two_requests(tmp_path, ti))

    assert event["status"] == "success" and event["sent"] == 2 and event["images"] == 2
    assert statuses(tmp_path) == ["deferred", "submitting", "deferred", "submitting", "received"]
    records = gpt(tmp_path).execute_complete(context_for(ti), event)
    assert [r["index"] for r in records] == [0, 1]
    assert len(posts(sandbox)) == 1 and len(posts(sandbox, GPT_1)) == 1
    assert manifest_of(tmp_path)["usage"]["total_tokens"] > 0


def test_a_lost_second_answer_keeps_the_first_image_and_sends_nothing_again(
    sandbox_conn: str, sandbox: SandboxServer, tmp_path: Path
):
    ti = FakeTaskInstance()
    sandbox.client.inject(kind="reset_after_send", path=GPT_1, count=1)
    trigger = two_requests(tmp_path, ti)
    event = run_trigger(trigger)

    assert event["error_type"] == "AIHubMixPossiblyBilledError" and event["images"] == 1
    manifest = manifest_of(tmp_path)
    assert manifest["requests_answered"] == 1 and manifest["status"] == "ambiguous"
    assert len(manifest["records"]) == 1  # the first image is stored and recorded
    again = run_trigger(AIHubMixPredictionTrigger(**trigger.serialize()[1]))
    assert again["error_type"] == "AIHubMixPossiblyBilledError" and again["sent"] == 0
    assert len(posts(sandbox)) == 1 and len(posts(sandbox, GPT_1)) == 1


def test_an_answer_that_cannot_be_stored_is_never_sent_again(
    sandbox_conn: str, sandbox: SandboxServer, tmp_path: Path
):
    from airflow_provider_aihubmix.storage import AIHubMixStorageError, LocalObjectStore

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise AIHubMixStorageError("disk full")

    ti = FakeTaskInstance()
    trigger = defer(gpt(tmp_path), ti).trigger
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(LocalObjectStore, "put_image_bytes", broken)
        event = run_trigger(trigger)

    # Billed and lost: not a refusal (which a retry would send again).
    assert event["error_type"] == "AIHubMixPossiblyBilledError" and "disk full" in event["message"]
    assert manifest_of(tmp_path)["status"] == "ambiguous"
    with pytest.raises(AIHubMixPossiblyBilledError):
        gpt(tmp_path).execute(context_for(FakeTaskInstance(try_number=2)))
    assert len(posts(sandbox)) == 1
