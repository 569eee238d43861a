"""The generic image operator, :class:`AIHubMixGenerateImageOperator`: any catalog model, or a
``provider/model_id`` passed through.

Validation at parse time, storage, idempotency, deferral and lineage live here and in the engine
(:mod:`airflow_provider_aihubmix.engine.run`); the family classes
(:mod:`airflow_provider_aihubmix.operators.families`) only add typed parameters. Import the
operators from :mod:`airflow_provider_aihubmix.operators.images`, their public face.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator

from airflow_provider_aihubmix.catalog.models import Family, ModelSpec
from airflow_provider_aihubmix.exceptions import AIHubMixPossiblyBilledError, AIHubMixValidationError
from airflow_provider_aihubmix.lineage import LineageRequest, request_of
from airflow_provider_aihubmix.links import AIHubMixImageLink
from airflow_provider_aihubmix.operators._checks import (
    check_task_settings,
    family_spec,
    is_literal,
    output_location,
)
from airflow_provider_aihubmix.operators._finishing import AIHubMixImageTaskMixin
from airflow_provider_aihubmix.possibly_billed import PossiblyBilledPolicy, connection_policy, parse_policy
from airflow_provider_aihubmix.pricing import PriceTable, parse_overrides
from airflow_provider_aihubmix.pricing.cost import estimate_request
from airflow_provider_aihubmix.responses.task_status import DEFAULT_NOT_FOUND_GRACE
from airflow_provider_aihubmix.version_compat import conf

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_aihubmix.engine.run import GenerationRun
    from airflow_provider_aihubmix.hooks.aihubmix import AIHubMixHook
    from airflow_provider_aihubmix.storage import ObjectStore

# The trigger's own deadline should win over Airflow's defer timeout: its event is clean.
DEFAULT_TIMEOUT = 3600.0
# Request parameters every operator takes by their own names.
REQUEST_PARAMS = ("prompt", "size", "n", "quality", "image", "seed")


class _ValidatingPartial:
    """``Operator.partial(...)`` that checks literal arguments at parse time, like ``__init__``.

    A mapped task's operator is only built at run time, so without this a literal
    ``n=99`` in ``.partial()`` would only fail once the run starts.
    """

    def __get__(self, obj: Any, cls: Any = None) -> Any:
        base = BaseOperator.__dict__["partial"].__get__(obj, cls)
        if obj is not None:
            return base  # Airflow's own guard: partial on a task instance raises

        def partial(**kwargs: Any) -> Any:
            cls.check_literals(kwargs)
            return base(**kwargs)

        return partial


class AIHubMixGenerateImageOperator(AIHubMixImageTaskMixin, BaseOperator):
    """Generate images with any AIHubMix model and store them; return one record per image.

    :param model: a catalog model (``gpt-image-1.5``) or any ``provider/model_id`` passed through.
    :param prompt: the prompt (templated).
    :param size: image size in the model's spelling (``1K``, ``2K``, ``1024x1024``, ``1024*1024``...).
    :param n: how many images.
    :param quality: ``low``, ``medium`` or ``high`` where the model supports it.
    :param image: reference image(s): https URL, ``s3://`` URI, local path, ``data:`` URI, an
        upstream XCom record, or a list of these.
    :param seed: random seed where the model takes one.
    :param extra_input: dict merged into the request ``input`` for parameters not modelled yet.
    :param output_uri: ``s3://bucket/prefix`` or ``file:///dir``; default the connection's
        ``output_uri`` extra, else a folder under ``AIRFLOW_HOME``.
    :param output_conn_id: AWS connection for ``s3://`` output and references.
    :param wait_for_completion: for async models, ``False`` returns records carrying only
        ``remote_task_id`` and ``model`` (wait later with :class:`AIHubMixTaskSensor`).
    :param deferrable: free the worker slot while the image is made: a sync model's request is
        sent from the triggerer (:class:`AIHubMixPredictionTrigger`), an async model's task is
        waited for there (:class:`AIHubMixTaskTrigger`).
    :param poll_interval: first poll interval in seconds (it backs off gently).
    :param timeout: seconds to wait for an async task, or within which the triggerer must send
        a sync model's request, measured on the wall clock (at most 366 days).
    :param not_found_grace: seconds after an async task's recorded submit time during which
        "Task not found" means "not known yet" (default 60); after it the task fails, staying
        recorded for re-attachment.
    :param regenerate: ignore a complete manifest and buy a new generation.
    :param max_cost_usd: refuse before submitting when the estimate (USD) exceeds this. A DAG-level
        budget -- DAG param ``max_cost_usd`` or Variable ``aihubmix_budget_<dag_id>`` -- also
        refuses once the run's recorded spend plus this task's estimate would pass it.
    :param allow_unknown_cost: under a cap, submit models that have no known price.
    :param on_possibly_billed: a request whose answer was lost (a killed worker or triggerer) may
        have been billed: ``"fail"`` (default) fails the task, ``"resend_once"`` sends it once more,
        counting both sends (never a third). Unset: the connection extra of the same name, else
        ``"fail"``.
    :param prices: price overrides (USD) merged over the shipped price table and the connection
        extra ``prices``: ``{"model": per_image_usd}`` or ``{"model": {price row}}``
        (see ``docs/PRICES.md``).
    :param lineage_include_prompt: put the prompt text itself in the lineage facet.
    :param max_image_bytes: refuse (and never store) a downloaded image larger than this.
    """

    family: ClassVar[Family | None] = None
    default_model: ClassVar[str | None] = None

    template_fields: Sequence[str] = (
        "model",
        "prompt",
        "size",
        "n",
        "quality",
        "image",
        "seed",
        "extra_input",
        "family_params",
        "output_uri",
    )
    template_fields_renderers = {"extra_input": "json", "family_params": "json"}
    operator_extra_links = (AIHubMixImageLink(),)
    ui_color = "#f4e1ff"
    partial = _ValidatingPartial()

    # Long only because Airflow operators take and keep one argument per line; checks are elsewhere.
    def __init__(
        self,
        *,
        prompt: str,
        model: str | None = None,
        size: str | None = None,
        n: int | None = None,
        quality: str | None = None,
        image: Any = None,
        seed: int | None = None,
        extra_input: dict[str, Any] | None = None,
        family_params: dict[str, Any] | None = None,
        output_uri: str | None = None,
        output_conn_id: str | None = "aws_default",
        aihubmix_conn_id: str = "aihubmix_default",
        wait_for_completion: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 5.0,
        timeout: float = DEFAULT_TIMEOUT,
        not_found_grace: float = DEFAULT_NOT_FOUND_GRACE,
        regenerate: bool = False,
        max_cost_usd: float | None = None,
        allow_unknown_cost: bool = False,
        on_possibly_billed: str | None = None,
        prices: dict[str, Any] | None = None,
        lineage_include_prompt: bool = False,
        max_image_bytes: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        model = model if model is not None else self.default_model
        if model is None:
            raise AIHubMixValidationError(
                "Parameter 'model' is required for AIHubMixGenerateImageOperator: a catalog model "
                "or a 'provider/model_id' path"
            )
        self.model = model
        self.prompt = prompt
        self.size = size
        self.n = n
        self.quality = quality
        self.image = image
        self.seed = seed
        self.extra_input = extra_input
        self.family_params = {k: v for k, v in (family_params or {}).items() if v is not None}
        output_uri, output_conn_id = output_location(output_uri, output_conn_id)
        self.output_uri = output_uri
        self.output_conn_id = output_conn_id
        self.aihubmix_conn_id = aihubmix_conn_id
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.not_found_grace = not_found_grace
        self.timeout = timeout
        self.regenerate = regenerate
        self.max_cost_usd = max_cost_usd
        self.allow_unknown_cost = allow_unknown_cost
        self.on_possibly_billed = parse_policy(on_possibly_billed)  # a typo fails at parse time
        self.prices = prices
        if prices is not None and is_literal(prices):
            parse_overrides(prices, origin="operator parameter 'prices'")  # a typo fails at parse time
        self.lineage_include_prompt = lineage_include_prompt
        self.max_image_bytes = max_image_bytes
        check_task_settings(
            poll_interval=poll_interval,
            timeout=timeout,
            not_found_grace=not_found_grace,
            max_image_bytes=max_image_bytes,
            max_cost_usd=max_cost_usd,
            flags={
                "wait_for_completion": wait_for_completion,
                "deferrable": deferrable,
                "regenerate": regenerate,
                "allow_unknown_cost": allow_unknown_cost,
                "lineage_include_prompt": lineage_include_prompt,
            },
        )
        self.check_literals(
            {
                **self.request_params(),
                "model": model,
                "extra_input": extra_input,
                "output_uri": output_uri,
                "executor": getattr(self, "executor", None),
            }
        )

    # -- validation -------------------------------------------------------------------------
    def request_params(self) -> dict[str, Any]:
        """The user-facing parameters of this request, ``None`` meaning unset."""
        common = {name: getattr(self, name) for name in REQUEST_PARAMS}
        return {k: v for k, v in {**common, **self.family_params}.items() if v is not None}

    def resolve_spec(self) -> ModelSpec:
        return self.spec_for(str(self.model))

    @classmethod
    def spec_for(cls, model: str) -> ModelSpec:
        return family_spec(model, cls.family, cls.__name__)

    @classmethod
    def family_param_names(cls) -> tuple[str, ...]:
        """The typed parameters a family class adds to the generic operator's."""
        generic = inspect.signature(AIHubMixGenerateImageOperator.__init__).parameters
        return tuple(n for n in inspect.signature(cls.__init__).parameters if n not in generic)

    @classmethod
    def check_literals(cls, kwargs: Mapping[str, Any]) -> None:
        """Fail at DAG parse time on values already known; templated ones are checked at run time.

        ``kwargs`` are operator arguments (or ``partial`` ones): request parameters by their
        own names, plus ``model``, ``extra_input`` and ``output_uri``.
        """
        output_uri = kwargs.get("output_uri")
        if output_uri is not None and not isinstance(output_uri, str):
            # Start-up cost: storage is imported at parse time only for an ObjectStoragePath.
            from airflow_provider_aihubmix.storage.uris import output_uri_text

            output_uri, _ = output_uri_text(output_uri)  # an ObjectStoragePath, else refused here
        if output_uri and is_literal(output_uri):
            # Start-up cost: storage is imported at parse time only for a literal output_uri.
            from airflow_provider_aihubmix.storage import parse_output_uri
            from airflow_provider_aihubmix.storage.locality import warn_if_local_output

            parse_output_uri(output_uri)  # a typo'd destination fails when the DAG is parsed
            # Workers that share no disk cannot see each other's file:// images: say so now.
            warn_if_local_output(output_uri, executor=kwargs.get("executor"), stacklevel=4)
        given = kwargs.get("model")
        if isinstance(given, str) and not given.strip():
            # Not "unset": the run would look it up as it is and fail only then.
            default = f", or leave it out for {cls.default_model}" if cls.default_model else ""
            raise AIHubMixValidationError(
                f"Parameter 'model' is empty for {cls.__name__}; allowed: a catalog model or a "
                f"'provider/model_id' path{default}"
            )
        model = given or cls.default_model
        if model is None or not is_literal(model):
            return
        spec = cls.spec_for(str(model))
        # Start-up cost: the schemas load at parse time only for a literal model.
        from airflow_provider_aihubmix.schemas import validate_params

        names = (*REQUEST_PARAMS, *cls.family_param_names())
        params = {k: kwargs[k] for k in names if kwargs.get(k) is not None and is_literal(kwargs[k])}
        params.pop("image", None)
        image = kwargs.get("image")
        if image is not None and is_literal(image):
            # Start-up cost: storage is imported at parse time only for a literal image.
            from airflow_provider_aihubmix.storage.references import reference_strings

            # Checked as the locations they name (count, scheme); read only at run time.
            params["image"] = reference_strings(image) or None
        extra = kwargs.get("extra_input") if is_literal(kwargs.get("extra_input")) else None
        validate_params(spec, params, extra, skip_templated=True)

    # -- collaborators ----------------------------------------------------------------------
    @cached_property
    def hook(self) -> AIHubMixHook:
        # Imported here: httpx and the response models cost DAG parsing ~30 ms it does not need.
        from airflow_provider_aihubmix.hooks.aihubmix import AIHubMixHook

        return AIHubMixHook(aihubmix_conn_id=self.aihubmix_conn_id)

    def resolve_output_uri(self) -> str:
        # Start-up cost: DAG parsing imports this module; storage loads only when a task runs.
        from airflow_provider_aihubmix.storage.locality import local_output_problem
        from airflow_provider_aihubmix.storage.uris import resolve_output_uri

        uri, source = resolve_output_uri(self.output_uri, self.hook.output_uri, self.aihubmix_conn_id)
        self.log.info("Storing images under %s (from %s)", uri, source)
        # At run time too: the default under AIRFLOW_HOME and a connection's output_uri are only
        # known now, and the task log is where a user looks when a downstream task misses images.
        problem = local_output_problem(uri, executor=getattr(self, "executor", None))
        if problem is not None:
            self.log.warning("%s", problem)
        return uri

    def open_store(self) -> ObjectStore:
        """The store images go to (tests and subclasses replace it to wrap the store)."""
        # Start-up cost: DAG parsing imports this module; storage loads only when a task runs.
        from airflow_provider_aihubmix.storage import open_store

        return open_store(self.resolve_output_uri(), aws_conn_id=self.output_conn_id)

    def open_tracked_run(self, context: Context) -> GenerationRun:
        """This task instance's engine, recorded as lineage state (so a failure from here on
        reports its manifest) with its store location recorded for the gallery."""
        # Start-up cost: DAG parsing imports this module; the engine loads only when a task runs.
        from airflow_provider_aihubmix.engine.budget import DagBudget
        from airflow_provider_aihubmix.engine.manifest import TaskIdentity
        from airflow_provider_aihubmix.engine.run import GenerationRun

        spec = self.resolve_spec()
        run = GenerationRun(
            hook=self.hook,
            store=self.record_store_location(context, self.open_store()),
            spec=spec,
            params=self.request_params(),
            extra_input=self.extra_input,
            identity=TaskIdentity.from_context(context),
            aws_conn_id=self.output_conn_id,
            **({"max_image_bytes": self.max_image_bytes} if self.max_image_bytes else {}),
            prices=self.price_table(),
            dag_budget=DagBudget.from_context(context),
        )
        self._lineage_run = run
        return run

    def price_table(self) -> PriceTable:
        """The shipped prices, then the connection extra ``prices``, then the ``prices`` parameter."""

        return PriceTable.build(
            (f"connection {self.aihubmix_conn_id!r} extra 'prices'", self.hook.connection_prices),
            ("operator parameter 'prices'", self.prices),
        )

    # -- execution --------------------------------------------------------------------------
    def execute(self, context: Context) -> list[dict[str, Any]]:
        # Start-up cost: DAG parsing imports this module; the engine loads only when a task runs.
        from airflow_provider_aihubmix.engine.polling import PollSchedule, wait_for_task

        run = self.open_tracked_run(context)
        outcome = run.start(
            regenerate=self.regenerate,
            max_cost_usd=self.max_cost_usd,
            allow_unknown_cost=self.allow_unknown_cost,
            send_from_triggerer=self.deferrable,
            on_possibly_billed=self.possibly_billed_policy(),
        )
        if outcome.records is not None:
            return self.finish_task(run, outcome.records)
        if outcome.deferred is not None:
            self.defer_prediction(run)
        assert outcome.task is not None
        if not self.wait_for_completion:
            self.log.info("wait_for_completion=False: returning AIHubMix task %s", outcome.task.task_id)
            return [
                {
                    "remote_task_id": outcome.task.task_id,
                    "model": run.spec.path,
                    "map_index": run.identity.map_index,
                }
            ]
        if self.deferrable:
            # Imported here, like the hook: DAG parsing never needs them (benchmarks/bench_imports.py).
            from airflow_provider_aihubmix.engine.polling import DEFER_TIMEOUT_MARGIN
            from airflow_provider_aihubmix.triggers.aihubmix import AIHubMixTaskTrigger

            self.defer(
                trigger=AIHubMixTaskTrigger(
                    remote_task_id=outcome.task.task_id,
                    aihubmix_conn_id=self.aihubmix_conn_id,
                    poll_interval=self.poll_interval,
                    end_time=time.time() + self.timeout,
                    model=run.spec.path,
                    submitted_at=run.task_submitted_at(outcome.task.task_id),
                    not_found_grace=self.not_found_grace,
                ),
                method_name="execute_complete",
                timeout=timedelta(seconds=self.timeout) + DEFER_TIMEOUT_MARGIN,
            )
        event = wait_for_task(
            self.hook,
            outcome.task.task_id,
            model=run.spec.path,
            schedule=PollSchedule(self.poll_interval),
            timeout=self.timeout,
            submitted_at=run.task_submitted_at(outcome.task.task_id),
            not_found_grace=self.not_found_grace,
        )
        return self.finish_task(run, run.collect_event(event))

    def possibly_billed_policy(self) -> PossiblyBilledPolicy:
        """``on_possibly_billed``, else the connection extra's, else ``"fail"`` (checked before buying)."""
        if self.on_possibly_billed is not None:
            return self.on_possibly_billed
        return connection_policy(self.hook.get_connection(self.aihubmix_conn_id).extra_dejson)

    def defer_prediction(self, run: GenerationRun) -> None:
        """Hand the stored request to :class:`AIHubMixPredictionTrigger`; the slot is freed."""
        # Start-up cost: DAG parsing never loads the triggers (the engine, the hook); deferring does.
        from airflow_provider_aihubmix.engine.polling import DEFER_TIMEOUT_MARGIN
        from airflow_provider_aihubmix.triggers.aihubmix import AIHubMixPredictionTrigger

        # No request starts after ``timeout``; one that started may take the read timeout to answer.
        read_timeout = self.hook.settings.read_timeout
        self.defer(
            trigger=AIHubMixPredictionTrigger(
                model=run.spec.path,
                output_uri=run.store.base_uri,
                prefix=run.prefix,
                fingerprint=run.fingerprint,
                end_time=time.time() + self.timeout,
                aihubmix_conn_id=self.aihubmix_conn_id,
                output_conn_id=self.output_conn_id,
                max_image_bytes=self.max_image_bytes,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout + read_timeout) + DEFER_TIMEOUT_MARGIN,
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> list[dict[str, Any]]:
        """Finish after the triggerer: everything needed comes from the event and the manifest."""
        # Start-up cost: DAG parsing imports this module; the engine loads only when a task runs.
        from airflow_provider_aihubmix.engine.events import (
            is_prediction_event,
            validate_event,
            validate_prediction_event,
        )

        if is_prediction_event(event):
            prediction = validate_prediction_event(event)
            self.log.info(
                "The triggerer sent %d request(s) for model %s: %s, %d image(s)",
                prediction.sent,
                prediction.model,
                prediction.status.value,
                prediction.images,
            )
            run = self.open_tracked_run(context)
            try:
                return self.finish_task(run, run.complete_deferred(prediction))
            except AIHubMixPossiblyBilledError:
                if self.possibly_billed_policy() is not PossiblyBilledPolicy.RESEND_ONCE:
                    raise
                return self.execute(context)  # the manifest decides: send once more, or refuse
        task_event = validate_event(event)
        self.log_task_event(task_event)
        run = self.open_tracked_run(context)
        return self.finish_task(run, run.collect_event(task_event))

    def lineage_request(self) -> tuple[LineageRequest, BaseException | None]:
        """The request as the run validated it, else as this operator would; never raises."""
        # Start-up cost: DAG parsing imports this module; the engine loads only when a task runs.
        from airflow_provider_aihubmix.engine.run import GenerationRun

        run = self._lineage_run
        asked = run.lineage_request() if isinstance(run, GenerationRun) else None
        if asked is not None:
            return asked, None
        try:
            # Start-up cost: the schemas and storage load only when lineage is asked of a task.
            from airflow_provider_aihubmix.schemas import build_input
            from airflow_provider_aihubmix.storage.references import reference_strings

            spec = self.resolve_spec()
            params = self.request_params()
            references = reference_strings(params.get("image"))
            input_ = build_input(spec, {**params, "image": references or None}, self.extra_input)
        except Exception as err:  # an invalid request still gets a START / FAIL event
            return LineageRequest(model=str(self.model or "unknown")), err

        estimate = estimate_request(spec, input_, references=len(references))
        return request_of(spec.path, spec.family.value, params, input_, references, estimate), None


__all__ = ["DEFAULT_TIMEOUT", "REQUEST_PARAMS", "AIHubMixGenerateImageOperator"]
