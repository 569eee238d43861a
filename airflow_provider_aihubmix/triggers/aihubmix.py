"""The triggers: waiting for an async AIHubMix task (Flux), and sending a sync model's request.

:class:`AIHubMixTaskTrigger` polls a task the worker submitted; :class:`AIHubMixPredictionTrigger`
sends the request itself, so a synchronous generation (30-120 s) holds no worker slot.
"""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
import weakref
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_aihubmix import metrics
from airflow_provider_aihubmix.engine.deferred import GRACEFUL_STOP, USER_ACTION, PurchaseLedger, Resume
from airflow_provider_aihubmix.engine.events import EventStatus, PredictionEvent, TaskEvent
from airflow_provider_aihubmix.engine.outcomes import may_be_billed
from airflow_provider_aihubmix.engine.polling import (
    DEFAULT_MAX_TRANSIENT_FAILURES,
    DEFAULT_NOT_FOUND_GRACE,
    DEFAULT_POLL_INTERVAL,
    PollSchedule,
    TaskWait,
    utc_text,
)
from airflow_provider_aihubmix.exceptions import (
    AIHubMixError,
    AIHubMixPossiblyBilledError,
    AIHubMixUnreadableAnswerError,
)
from airflow_provider_aihubmix.hooks.aihubmix import AIHubMixHook
from airflow_provider_aihubmix.triggers.shutdown import paid_slot, run_held, shutdown_hold_seconds
from airflow_provider_aihubmix.version_compat import AirflowNotFoundException, trigger_runner_task


class AIHubMixTaskTrigger(BaseTrigger):
    """Poll ``GET /v1/tasks/<id>`` until the task ends, then yield exactly one event.

    Everything in :meth:`run` is async: the connection comes from the async connection API
    (``AIHubMixHook.aget_settings``), and requests go through the pooled ``AsyncClient`` that
    every trigger of the triggerer process shares per connection. The hook's own retries are
    off (``max_retries=0``): this trigger counts consecutive failed polls itself and spaces
    them with its backoff schedule, so one bound governs how long a sick API is tolerated.

    The deadline ``end_time`` is a wall-clock epoch timestamp rather than a duration so that
    a triggerer restart, which re-creates the trigger from :meth:`serialize`, keeps the
    original deadline. At least one poll happens even past it: a task that finished while
    no triggerer was running is still collected.

    Polls go only to the connection's task-status base URL, never to the ``polling_url`` of
    the submit response: that is the upstream vendor and must not receive the key.

    :param remote_task_id: the AIHubMix task id (``taskId`` of the submit response).
    :param end_time: wall-clock deadline, seconds since the epoch.
    :param aihubmix_conn_id: the AIHubMix connection.
    :param poll_interval: the first poll interval in seconds; it backs off gently with jitter.
    :param model: the model path, echoed in the event for the worker.
    :param max_transient_failures: consecutive failed polls (429, 5xx, network, garbled body)
        tolerated; one more ends the wait with a ``failed`` event.
    :param submitted_at: wall-clock epoch seconds the task was submitted (from the manifest).
    :param not_found_grace: seconds after ``submitted_at`` during which "Task not found" means
        "not known yet" (BFL's store may lag its submit endpoint); then the wait fails.
    """

    def __init__(
        self,
        remote_task_id: str,
        *,
        end_time: float,
        aihubmix_conn_id: str = AIHubMixHook.default_conn_name,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        model: str | None = None,
        max_transient_failures: int = DEFAULT_MAX_TRANSIENT_FAILURES,
        submitted_at: float | None = None,
        not_found_grace: float = DEFAULT_NOT_FOUND_GRACE,
    ) -> None:
        super().__init__()
        if not remote_task_id:
            raise ValueError("Parameter 'remote_task_id' must be a non-empty AIHubMix task id")
        if max_transient_failures < 0:
            raise ValueError(f"Parameter 'max_transient_failures' must be >= 0, got {max_transient_failures}")
        self.remote_task_id = remote_task_id
        self.end_time = float(end_time)
        self.aihubmix_conn_id = aihubmix_conn_id
        self.poll_interval = float(poll_interval)
        self.model = model
        self.max_transient_failures = int(max_transient_failures)
        self.schedule = PollSchedule(self.poll_interval)  # validates poll_interval > 0
        # Wall-clock, recorded at submit: a re-created trigger keeps the same grace window.
        self.submitted_at = float(submitted_at) if submitted_at is not None else None
        self.not_found_grace = float(not_found_grace)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        # The stored schema: a triggerer of this version re-creates the trigger from exactly these keys.
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "remote_task_id": self.remote_task_id,
                "end_time": self.end_time,
                "aihubmix_conn_id": self.aihubmix_conn_id,
                "poll_interval": self.poll_interval,
                "model": self.model,
                "max_transient_failures": self.max_transient_failures,
                "submitted_at": self.submitted_at,
                "not_found_grace": self.not_found_grace,
            },
        )

    def hook(self) -> AIHubMixHook:
        """A hook that reads its connection lazily with the async API, on the shared client pool."""
        # No settings, no api_key: constructing it performs no lookup and no (sync) secret masking.
        return AIHubMixHook(aihubmix_conn_id=self.aihubmix_conn_id, max_retries=0)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        with metrics.running_trigger("task"):
            async for event in self._wait():
                yield event

    async def _wait(self) -> AsyncIterator[TriggerEvent]:
        wait = TaskWait(
            self.remote_task_id,
            end_time=self.end_time,
            schedule=self.schedule,
            model=self.model,
            max_transient_failures=self.max_transient_failures,
            log=self.log,
            submitted_at=self.submitted_at,
            not_found_grace=self.not_found_grace,
        )
        self.log.info(
            "Waiting for AIHubMix task %s (model %s) until %s; first poll interval %.1f s",
            self.remote_task_id,
            self.model or "unknown",
            utc_text(self.end_time),
            self.poll_interval,
        )
        while True:
            event = await self._poll(wait) or wait.check_deadline()
            if event is not None:
                yield TriggerEvent(event.model_dump(mode="json"))
                return
            await asyncio.sleep(wait.next_delay())

    async def _poll(self, wait: TaskWait) -> TaskEvent | None:
        """One poll, with a hook of its own.

        Between polls a waiting trigger holds neither a hook nor the last answer (thousands of them
        wait in one triggerer), and each poll takes the loop's shared settings of the connection
        (``http.clients.shared_settings``): one object for all triggers, and an edited connection
        is used within ``SETTINGS_TTL`` seconds.
        """
        hook = self.hook()
        try:
            state = await hook.aget_task(self.remote_task_id)
        except AirflowNotFoundException as err:
            return wait.event(EventStatus.ERROR, str(err))
        except Exception as err:
            return wait.on_error(err)  # re-raises what is neither transient nor an API refusal
        return wait.on_state(state)

    async def on_kill(self) -> None:
        """AIHubMix has no cancel endpoint: the remote task runs on and a retry re-attaches to it."""
        self.log.info(
            "Trigger for AIHubMix task %s killed; the remote task is not cancelled (AIHubMix has no API "
            "for it) and stays recorded in the manifest, so a retry re-attaches to it",
            self.remote_task_id,
        )


# Decoding and storing an answer is CPU work in a thread (JSON and base64 of ~1-3 MB, hashing):
# when a fan-out's answers arrive together, a thread per answer would take the GIL from the
# event loop every triggers shares. A few at a time keep the loop responsive; the others wait
# in their spool files (benchmarks/bench_prediction_triggers.py).
ANSWER_WORKERS = 2
#: Seconds between reads of the manifest while a stopping triggerer still holds the request.
STOPPING_POLL_S = 1.0
_ANSWER_GATES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _answer_gate() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    gate = _ANSWER_GATES.get(loop)
    if gate is None:
        gate = _ANSWER_GATES[loop] = asyncio.Semaphore(ANSWER_WORKERS)
    return gate


class AIHubMixPredictionTrigger(BaseTrigger):
    """Send a synchronous model's stored request from the triggerer, store the answer, yield once.

    The worker stored the request bodies beside the manifest and deferred; this trigger
    reads them (storage calls run in threads: nothing blocks the triggerer's loop), writes
    the send marker, POSTs through the pooled ``AsyncClient`` of the connection (read with
    the async connection API), streams the answer to a spool, then parses it and stores the
    images in a thread, and records them (``received``). The worker's ``execute_complete``
    verifies and completes. See :mod:`airflow_provider_aihubmix.engine.deferred` for the states.

    Paid once across triggerer restarts: ``run()`` starts again from the top on another
    triggerer, finds the send marker of the run that died, and does not send again -- it
    finishes from what was recorded, or fails with :class:`AIHubMixPossiblyBilledError`.
    A graceful stop of the triggerer (SIGTERM) does not abandon the request in flight: it runs
    on until its answer is stored and recorded, for as long as the process lives, and the next
    triggerer waits for that and finishes with no request (:mod:`.shutdown`); a user action
    (clear, mark) stops it at once. At most ``[aihubmix] triggerer_max_requests_in_flight``
    requests are out per triggerer; the others wait here, unsent.
    429 and 5xx answers are retried here with the connection's retry policy, never past
    ``end_time`` (wall-clock epoch seconds, kept across restarts).

    The serialized kwargs are small: no request body, no image bytes.

    :param model: the model path (``openai/gpt-image-1.5``).
    :param output_uri: the store's base URI (``s3://bucket/prefix`` or ``file:///dir``).
    :param prefix: the task instance's key prefix under ``output_uri``.
    :param fingerprint: the request fingerprint the manifest must still record.
    :param end_time: wall-clock deadline, seconds since the epoch; no request is sent after it.
    :param aihubmix_conn_id: the AIHubMix connection.
    :param output_conn_id: the AWS connection for ``s3://`` output.
    :param max_image_bytes: refuse a downloaded image larger than this.
    """

    def __init__(
        self,
        *,
        model: str,
        output_uri: str,
        prefix: str,
        fingerprint: str,
        end_time: float,
        aihubmix_conn_id: str = AIHubMixHook.default_conn_name,
        output_conn_id: str | None = None,
        max_image_bytes: int | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("model", model), ("output_uri", output_uri), ("prefix", prefix)):
            if not value:
                raise ValueError(f"Parameter {name!r} must be a non-empty string")
        self.model = model
        self.output_uri = output_uri
        self.prefix = prefix
        self.fingerprint = fingerprint
        self.end_time = float(end_time)
        self.aihubmix_conn_id = aihubmix_conn_id
        self.output_conn_id = output_conn_id
        self.max_image_bytes = max_image_bytes

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "airflow_provider_aihubmix.triggers.aihubmix.AIHubMixPredictionTrigger",
            {
                "model": self.model,
                "output_uri": self.output_uri,
                "prefix": self.prefix,
                "fingerprint": self.fingerprint,
                "end_time": self.end_time,
                "aihubmix_conn_id": self.aihubmix_conn_id,
                "output_conn_id": self.output_conn_id,
                "max_image_bytes": self.max_image_bytes,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        with metrics.running_trigger("prediction"):
            try:
                event = await self._purchase()
            except AIHubMixError as err:
                event = self._event(EventStatus.ERROR, error=err)
            except AirflowNotFoundException as err:
                event = self._event(EventStatus.ERROR, message=str(err))
        yield TriggerEvent(event.model_dump(mode="json"))

    def _event(
        self,
        status: EventStatus,
        *,
        error: AIHubMixError | None = None,
        message: str | None = None,
        **kw: Any,
    ) -> PredictionEvent:
        if error is not None:
            kw.update(
                message=error.message,
                error_type=type(error).__name__,
                status_code=error.status_code,
                code=error.code,
                request_id=error.request_id,
            )
        elif message is not None:
            kw["message"] = message
        return PredictionEvent(status=status, model=self.model, **kw)

    async def _send(
        self, hook: AIHubMixHook, ledger: PurchaseLedger, index: int, total: int, path: str, content: bytes
    ) -> int | PredictionEvent:
        """Send request ``index`` and record its answer: the number of images, or the failure event."""
        await asyncio.to_thread(ledger.mark_sending, index)
        self.log.info(
            "Sending request %d of %d for model %s (%d bytes)", index + 1, total, self.model, len(content)
        )
        try:
            answer = await hook.asend_prediction(path, content, deadline=self.end_time)
            del content
            async with _answer_gate():
                return await asyncio.to_thread(ledger.record_answer, index, answer)
        except AIHubMixError as err:
            billed = may_be_billed(err)
            secrets = ((await hook.aget_settings()).api_key,)  # already loaded for the send
            err = await asyncio.to_thread(
                functools.partial(ledger.record_failure, index, err, secrets=secrets)
            )
            # The worker rebuilds the error from its type name: say "may have been billed".
            if billed and not isinstance(err, (AIHubMixPossiblyBilledError, AIHubMixUnreadableAnswerError)):
                err = AIHubMixPossiblyBilledError(
                    f"{err.message}; the request may have been billed, so it is not sent again",
                    request_id=err.request_id,
                )
            return self._event(EventStatus.FAILED, error=err)

    async def _on_shutdown(self, ledger: PurchaseLedger, index: int, total: int) -> None:
        hold = shutdown_hold_seconds()
        interruption = await asyncio.to_thread(ledger.record_interruption, GRACEFUL_STOP, hold)
        if interruption is not None:
            self.log.warning(
                "The triggerer is stopping while request %d of %d for model %s has been in flight %.1f s: "
                "keeping it until its answer is stored (the next triggerer waits until %s for it)",
                index + 1,
                total,
                self.model,
                interruption.in_flight_s,
                interruption.hold_until,
            )

    async def _on_user_action(self, ledger: PurchaseLedger) -> None:
        """The trigger was cancelled by a user action: the request is abandoned, say so in the manifest."""
        try:
            await asyncio.shield(
                asyncio.ensure_future(asyncio.to_thread(ledger.record_interruption, USER_ACTION))
            )
        except (Exception, asyncio.CancelledError):
            self.log.warning("Could not record the user action's interruption", exc_info=True)

    async def _wait_for_stopping_triggerer(self, ledger: PurchaseLedger, resume: Resume) -> Resume:
        """While a triggerer in its graceful stop still holds the request, read the manifest again."""
        announced = False
        while resume.wait_until is not None and resume.waiting_for is not None:
            if not announced:
                held = resume.waiting_for
                self.log.info(
                    "Request %d for model %s was in flight when its triggerer (trigger run %s) began a "
                    "graceful stop at %s; waiting until %s for the answer it records",
                    held.request + 1,
                    self.model,
                    held.trigger_run,
                    held.at,
                    held.hold_until,
                )
                announced = True
            left = (resume.wait_until - datetime.now(timezone.utc)).total_seconds()
            await asyncio.sleep(min(STOPPING_POLL_S, max(0.0, left)))
            resume = await asyncio.to_thread(ledger.resume)
        return resume

    async def _purchase(self) -> PredictionEvent:
        hook = AIHubMixHook(aihubmix_conn_id=self.aihubmix_conn_id)
        ledger = PurchaseLedger(
            settings=await hook.aget_settings(),
            output_uri=self.output_uri,
            output_conn_id=self.output_conn_id,
            prefix=self.prefix,
            model=self.model,
            fingerprint=self.fingerprint,
            trigger_run=uuid.uuid4().hex[:12],
            max_image_bytes=self.max_image_bytes,
        )
        resume = await self._wait_for_stopping_triggerer(ledger, await asyncio.to_thread(ledger.resume))
        if resume.error is not None:
            self.log.error("Not sending for model %s: %s", self.model, resume.error.message)
            return self._event(EventStatus.FAILED, error=resume.error, images=resume.images)
        if resume.done:
            self.log.info("The answer for model %s is already stored; nothing to send", self.model)
            return self._event(EventStatus.SUCCESS, images=resume.images)
        runner = trigger_runner_task()
        images, sent = resume.images, 0
        for index in range(resume.next_request, resume.total):
            async with paid_slot():
                if time.time() >= self.end_time:
                    return self._event(
                        EventStatus.TIMEOUT,
                        message=f"Request {index + 1} of {resume.total} for model {self.model} was not sent "
                        f"before the deadline {utc_text(self.end_time)}; nothing was billed for it",
                        images=images,
                        sent=sent,
                    )
                path, content = await asyncio.to_thread(ledger.load_request, index)
                sent += 1
                try:
                    outcome = await run_held(
                        self._send(hook, ledger, index, resume.total, path, content),
                        on_shutdown=functools.partial(self._on_shutdown, ledger, index, resume.total),
                        runner=runner,
                    )
                except asyncio.CancelledError:
                    if runner is not None:  # a user action; outside a triggerer the next run sees a crash
                        await self._on_user_action(ledger)
                    raise
            if isinstance(outcome, PredictionEvent):
                return outcome.model_copy(update={"images": images, "sent": sent})
            images += outcome
        self.log.info("Stored %d image(s) for model %s after %d request(s)", images, self.model, sent)
        return self._event(EventStatus.SUCCESS, images=images, sent=sent)


__all__ = ["AIHubMixPredictionTrigger", "AIHubMixTaskTrigger"]
