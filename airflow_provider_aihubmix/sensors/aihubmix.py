"""A sensor that waits for an async AIHubMix task submitted elsewhere and stores its images.

The pattern: an operator submits with ``wait_for_completion=False`` (its records carry
``remote_task_id``), and this sensor waits -- in the triggerer, by poking, or by
rescheduling -- then downloads at once, because the result URLs expire in minutes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_provider_aihubmix.catalog.models import UnknownModelError, resolve_model
from airflow_provider_aihubmix.engine.collection import ImageCollector
from airflow_provider_aihubmix.engine.events import EventStatus, TaskEvent, validate_event
from airflow_provider_aihubmix.engine.manifest import TaskIdentity
from airflow_provider_aihubmix.engine.polling import DEFER_TIMEOUT_MARGIN, TRANSIENT_ERRORS, progress_text
from airflow_provider_aihubmix.exceptions import AIHubMixValidationError
from airflow_provider_aihubmix.hooks.aihubmix import AIHubMixHook
from airflow_provider_aihubmix.lineage import LineageRequest
from airflow_provider_aihubmix.links import AIHubMixImageLink
from airflow_provider_aihubmix.operators._checks import is_literal, output_location
from airflow_provider_aihubmix.operators._finishing import AIHubMixImageTaskMixin
from airflow_provider_aihubmix.pricing import PriceTable
from airflow_provider_aihubmix.storage import open_store, parse_output_uri
from airflow_provider_aihubmix.storage.uris import resolve_output_uri
from airflow_provider_aihubmix.triggers.aihubmix import AIHubMixTaskTrigger
from airflow_provider_aihubmix.version_compat import AirflowSensorTimeout, conf

if TYPE_CHECKING:
    from airflow.sdk import Context


class AIHubMixTaskSensor(AIHubMixImageTaskMixin, BaseSensorOperator):
    """Wait for AIHubMix task ``aihubmix_task_id``; store its images and return their records.

    :param aihubmix_task_id: the remote task id (templated), e.g.
        ``"{{ ti.xcom_pull('submit')[0]['remote_task_id'] }}"``.
    :param model: the model that runs the task, recorded in the records (templated).
    :param output_uri: where to store the images; default as for the operators (the
        connection's ``output_uri`` extra, else a folder under ``AIRFLOW_HOME``).
    :param output_conn_id: AWS connection for ``s3://`` output.
    :param poll_interval: seconds between pokes (the first poll interval when deferred).
    :param deferrable: wait in the triggerer instead of a worker slot; otherwise ``mode``
        (``poke`` or ``reschedule``) decides, as for any sensor.
    :param timeout: seconds to wait (default one hour). Deferred, it becomes the trigger's
        wall-clock deadline; running out raises ``AirflowSensorTimeout`` (a skip with
        ``soft_fail``). A failed, moderated or unknown task fails the sensor.
    """

    template_fields: Sequence[str] = ("aihubmix_task_id", "model", "output_uri")
    operator_extra_links = (AIHubMixImageLink(),)

    def __init__(
        self,
        *,
        aihubmix_task_id: str,
        model: str | None = None,
        output_uri: str | None = None,
        output_conn_id: str | None = "aws_default",
        aihubmix_conn_id: str = AIHubMixHook.default_conn_name,
        poll_interval: float = 5.0,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        lineage_include_prompt: bool = False,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("timeout", 3600)
        super().__init__(poke_interval=poll_interval, **kwargs)
        self.aihubmix_task_id = aihubmix_task_id
        self.model = model
        output_uri, output_conn_id = output_location(output_uri, output_conn_id)
        self.output_uri = output_uri
        self.output_conn_id = output_conn_id
        self.aihubmix_conn_id = aihubmix_conn_id
        self.poll_interval = poll_interval
        self.deferrable = deferrable
        self.lineage_include_prompt = lineage_include_prompt
        if isinstance(output_uri, str) and output_uri and is_literal(output_uri):
            self.check_output_uri()  # a typo'd destination fails when the DAG is parsed

    @cached_property
    def hook(self) -> AIHubMixHook:
        return AIHubMixHook(aihubmix_conn_id=self.aihubmix_conn_id)

    def check_output_uri(self) -> None:
        """Refuse a destination that cannot be written before waiting, not after: the finished
        task's image URLs expire in minutes, so images paid for would be lost."""

        uri = self.output_uri or self.hook.output_uri
        if uri:
            parse_output_uri(uri)

    def execute(self, context: Context) -> Any:
        if not str(self.aihubmix_task_id or "").strip():
            raise AIHubMixValidationError(
                "Parameter 'aihubmix_task_id' rendered empty: pass the remote_task_id of a submitted task"
            )
        self.check_output_uri()
        if not self.deferrable:
            return super().execute(context)

        timeout = float(self.timeout)
        self.log.info(
            "Deferring: AIHubMix task %s is awaited in the triggerer (timeout %.0f s)",
            self.aihubmix_task_id,
            timeout,
        )
        self.defer(
            trigger=AIHubMixTaskTrigger(
                remote_task_id=self.aihubmix_task_id,
                aihubmix_conn_id=self.aihubmix_conn_id,
                poll_interval=self.poll_interval,
                end_time=time.time() + timeout,
                model=self.model,
            ),
            method_name="execute_complete",
            # A backstop only: the trigger's own timeout event arrives first and says more.
            timeout=timedelta(seconds=timeout) + DEFER_TIMEOUT_MARGIN,
        )

    def poke(self, context: Context) -> bool | PokeReturnValue:
        try:
            state = self.hook.get_task(self.aihubmix_task_id)
        except TRANSIENT_ERRORS as err:
            # The sensor's timeout bounds how long a sick API is tolerated.
            self.log.warning("Polling AIHubMix task %s failed; poking again: %s", self.aihubmix_task_id, err)
            return False
        if not state.status.is_terminal:
            self.log.info(
                "AIHubMix task %s: %s%s",
                self.aihubmix_task_id,
                state.raw_status,
                progress_text(state.progress),
            )
            return False
        self.log.info("AIHubMix task %s ended: %s", self.aihubmix_task_id, state.raw_status)
        event = TaskEvent.from_state(state, model=self.model, polls=1)
        return PokeReturnValue(is_done=True, xcom_value=self.collect(context, event))

    def execute_complete(self, context: Context, event: dict[str, Any]) -> list[dict[str, Any]]:
        """Collect what the trigger found: the task id and the model come from the event itself."""
        task_event = validate_event(event)
        self.log_task_event(task_event)
        if task_event.status is EventStatus.TIMEOUT:
            # A sensor that runs out of time fails without retries (or skips with soft_fail).
            raise AirflowSensorTimeout(task_event.message or f"AIHubMix task {task_event.remote_task_id}")
        return self.collect(context, task_event)

    def collector(self, context: Context, model: str | None = None) -> ImageCollector:
        uri, source = resolve_output_uri(self.output_uri, self.hook.output_uri, self.aihubmix_conn_id)
        self.log.info(
            "Storing images of AIHubMix task %s under %s (from %s)", self.aihubmix_task_id, uri, source
        )
        collector = ImageCollector(
            hook=self.hook,
            store=self.record_store_location(context, open_store(uri, aws_conn_id=self.output_conn_id)),
            model=model or self.model or "unknown",
            identity=TaskIdentity.from_context(context),
        )

        # The collected images are priced like the operators': shipped rows + the connection's.
        collector.prices = PriceTable.build(
            (f"connection {self.aihubmix_conn_id!r} extra 'prices'", self.hook.connection_prices)
        )
        return collector

    def collect(self, context: Context, event: TaskEvent) -> list[dict[str, Any]]:
        collector = self.collector(context, event.model)
        return self.finish_task(collector, collector.collect_remote(event))

    def lineage_request(self) -> tuple[LineageRequest, BaseException | None]:
        """The task this sensor waits for, and the model running it."""
        model = str(self.model or "unknown")
        try:
            family: str | None = resolve_model(model, warn=False).family.value
        except UnknownModelError:
            family = "unknown"
        task_id = self.aihubmix_task_id
        remote = [str(task_id)] if task_id else []
        return LineageRequest(model=model, family=family, remote_task_ids=remote), None


__all__ = ["AIHubMixTaskSensor"]
