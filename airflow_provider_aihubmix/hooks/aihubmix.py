"""The AIHubMix hook: one connection, sync and async httpx clients, retries, safe downloads.

The sync and async twins run the same decisions from :mod:`airflow_provider_aihubmix.http`
(retry or not, which error, which host may see the key); only the sleep and the I/O differ.
Clients are built in one place (:mod:`._clients`), open downloads are :mod:`._downloads`.

Over 500 lines on purpose: each call's sync and async twins sit side by side in one class (as in
Airflow's dbt Cloud hook), so a change to one is made next to the other.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager, nullcontext
from typing import Any

import httpx
from airflow.sdk import BaseHook

from airflow_provider_aihubmix.catalog.drift import IMAGE_TYPE, Drift, compare
from airflow_provider_aihubmix.catalog.models import ModelSpec, resolve_model
from airflow_provider_aihubmix.connection import UI_FIELD_BEHAVIOUR
from airflow_provider_aihubmix.exceptions import (
    AIHubMixAuthenticationError,
    AIHubMixBudgetExceededError,
    AIHubMixError,
    AIHubMixQuotaError,
    AIHubMixValidationError,
    DownloadTruncatedError,
)
from airflow_provider_aihubmix.http import (
    AIHubMixSettings,
    ByteBudget,
    Resolver,
    RetryPolicy,
    RetryState,
    content_length_of,
    download_error_for_status,
    json_or_raise,
    models_from_body,
    system_resolver,
    task_url,
)
from airflow_provider_aihubmix.http.clients import (
    Purpose,
    aclose_shared_clients,
    aload_ssl_context,
    borrow_prediction_client,
    build_client,
    default_ssl_context,
    request_gate,
    shared_client_for,
    shared_settings,
)
from airflow_provider_aihubmix.http.downloads import DEFAULT_CHUNK_SIZE, AsyncImageDownload, ImageDownload
from airflow_provider_aihubmix.http.retries import AsyncSleep
from airflow_provider_aihubmix.http.sends import (
    PredictionAnswer,
    is_streamed_answer,
    send_prediction,
    spool_answer,
)
from airflow_provider_aihubmix.redaction import amask_secret, mask_secret, scrub_text
from airflow_provider_aihubmix.responses import gemini, gemini_stream
from airflow_provider_aihubmix.responses.balance import REMAIN_PATH, Balance, parse_remain
from airflow_provider_aihubmix.responses.shapes import (
    PredictionResult,
    TaskState,
    TaskStatus,
    parse_prediction,
    parse_task,
)
from airflow_provider_aihubmix.schemas import build_input, schema_for
from airflow_provider_aihubmix.schemas.wire import WireRequest, wire_request
from airflow_provider_aihubmix.storage.references import DEFAULT_MAX_REFERENCE_BYTES, resolve_param_references
from airflow_provider_aihubmix.version_compat import aextra_dejson

log = logging.getLogger(__name__)

# httpx logs every request URL at INFO, signed image URLs included; keep those out of task
# logs unless the deployment chose a level for httpx itself.
if logging.getLogger("httpx").level == logging.NOTSET:
    logging.getLogger("httpx").setLevel(logging.WARNING)


class AIHubMixHook(BaseHook):
    """Talk to AIHubMix: predictions, async task status, model list, and image downloads.

    The API key goes only to the ``base_url`` / ``tasks_base_url`` origins (enforced per request,
    redirects included); images are fetched by a separate client that carries no credentials and
    refuses link-local, metadata and private addresses unless ``allow_private_image_hosts``.

    Build it from a connection (``aihubmix_conn_id``) or, without any connection lookup, from
    explicit values (``api_key=...`` and optionally ``base_url``, ``tasks_base_url``, timeouts)
    or a ready :class:`AIHubMixSettings` (``settings=...`` / :meth:`from_settings`). Keyword
    values given next to a connection id override what the connection says.

    Retries: see :mod:`airflow_provider_aihubmix.http`. In short, 429/5xx and failures before
    sending are retried with capped, jittered backoff honouring ``Retry-After``; a prediction
    whose response was lost raises :class:`AIHubMixPossiblyBilledError` instead of paying twice.

    :param aihubmix_conn_id: the ``aihubmix`` connection (host = base URL, password = API key).
    :param transport: / :param async_transport: httpx transports to use instead of the network
        (tests, benchmarks).
    :param shared_pool: whether async clients come from the process-wide pool shared by every
        hook and trigger of the event loop (``True``) or are this hook's own (``False``, closed by
        :meth:`aclose`). A shared client cannot carry a hook's own ``async_transport`` or
        ``resolver``, so asking for both raises :class:`AIHubMixValidationError`. Default
        (``None``): shared unless ``async_transport`` or ``resolver`` is given. Sync clients are
        always the hook's own.
    :param sleep: / :param async_sleep: / :param jitter: / :param resolver: injectable for tests.
    """

    conn_name_attr = "aihubmix_conn_id"
    default_conn_name = "aihubmix_default"
    conn_type = "aihubmix"
    hook_name = "AIHubMix"

    def __init__(
        self,
        aihubmix_conn_id: str = default_conn_name,
        *,
        settings: AIHubMixSettings | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        tasks_base_url: str | None = None,
        output_uri: str | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        max_retries: int | None = None,
        allow_private_image_hosts: bool | None = None,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Any] | None = None,
        async_sleep: AsyncSleep | None = None,
        jitter: Callable[[], float] | None = None,
        resolver: Resolver | None = None,
        shared_pool: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.aihubmix_conn_id = aihubmix_conn_id
        self._overrides: dict[str, Any] = {
            "base_url": base_url,
            "tasks_base_url": tasks_base_url,
            "output_uri": output_uri,
            "connect_timeout": connect_timeout,
            "read_timeout": read_timeout,
            "max_retries": max_retries,
            "allow_private_image_hosts": allow_private_image_hosts,
        }
        self._settings: AIHubMixSettings | None = (
            settings.with_overrides(**self._overrides) if settings else None
        )
        if self._settings is None and api_key is not None:
            self._settings = AIHubMixSettings(
                api_key=api_key,
                **{k: v for k, v in self._overrides.items() if v is not None},
            )
        if self._settings is not None:
            mask_secret(self._settings.api_key)
        self._transport = transport
        self._async_transport = async_transport
        self._sleep: Callable[[float], Any] = sleep or time.sleep
        self._async_sleep: AsyncSleep = async_sleep or asyncio.sleep
        self._jitter = jitter
        self._resolver: Resolver = resolver or system_resolver
        own_wiring = async_transport is not None or resolver is not None
        if shared_pool and own_wiring:
            raise AIHubMixValidationError(
                "AIHubMixHook(shared_pool=True) cannot use the hook's own async_transport or resolver: "
                "shared clients serve every hook of the event loop; pass shared_pool=False"
            )
        self.shared_pool: bool = not own_wiring if shared_pool is None else shared_pool
        self._clients: dict[Purpose, httpx.Client] = {}
        self._async_clients: dict[tuple[int, Purpose], httpx.AsyncClient] = {}

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_settings(cls, settings: AIHubMixSettings, **kwargs: Any) -> AIHubMixHook:
        """A hook that never looks a connection up (the trigger reads it with the async API first)."""
        return cls(settings.conn_id or cls.default_conn_name, settings=settings, **kwargs)

    @classmethod
    async def aload_settings(cls, conn_id: str = default_conn_name, **overrides: Any) -> AIHubMixSettings:
        """Read a connection with the async connection API (safe on the triggerer's loop)."""
        conn = await cls.aget_connection(conn_id)
        extra = await aextra_dejson(conn) if conn.extra else {}
        settings = AIHubMixSettings.from_connection(conn, extra_dejson=extra, **overrides)
        await amask_secret(settings.api_key)
        return settings

    @classmethod
    async def afrom_conn_id(cls, conn_id: str = default_conn_name, **kwargs: Any) -> AIHubMixHook:
        return cls.from_settings(await cls.aload_settings(conn_id), **kwargs)

    @property
    def settings(self) -> AIHubMixSettings:
        """Resolved once; reading the connection here is a blocking call (use ``aget_settings`` async)."""
        if self._settings is None:
            conn = self.get_connection(self.aihubmix_conn_id)
            self._settings = AIHubMixSettings.from_connection(conn, **self._overrides)
            mask_secret(self._settings.api_key)
        return self._settings

    async def aget_settings(self) -> AIHubMixSettings:
        """The settings, read with the async API on first use; kept for the hook's life.

        The read is shared (``http.clients.shared_settings``): every hook of the event loop on one
        connection gets one object, read once per ``SETTINGS_TTL`` seconds, so thousands of waiting
        triggers neither read nor keep the connection each; an edit reaches hooks made after the TTL.
        """
        if self._settings is None:
            conn_id = self.aihubmix_conn_id
            self._settings = await shared_settings(
                conn_id, lambda: self.aload_settings(conn_id), self._overrides
            )
        # Every async client is made after this: its TLS context must not be built on the loop.
        await aload_ssl_context()
        return self._settings

    @property
    def base_url(self) -> str:
        return self.settings.base_url

    @property
    def tasks_base_url(self) -> str:
        return self.settings.tasks_url

    @property
    def output_uri(self) -> str | None:
        return self.settings.output_uri

    @property
    def connection_prices(self) -> Any:
        """The connection extra ``prices`` (price overrides, see ``pricing.table``), or None.

        ``None`` too when the hook was built without a connection (``api_key=`` or ``settings=``).
        """
        try:
            conn = self.get_connection(self.aihubmix_conn_id)
        except Exception:
            return None
        return (conn.extra_dejson or {}).get("prices")

    def _policy(self, settings: AIHubMixSettings, max_retries: int | None = None) -> RetryPolicy:
        policy = settings.retry_policy()
        changes: dict[str, Any] = {}
        if self._jitter is not None:
            changes["jitter"] = self._jitter
        if max_retries is not None:
            changes["max_retries"] = min(max_retries, policy.max_retries)
        return RetryPolicy(**{**policy.__dict__, **changes}) if changes else policy

    def _retry_state(
        self,
        settings: AIHubMixSettings,
        method: str,
        url: str,
        *,
        billable: bool = False,
        kind: str = "api",
        max_retries: int | None = None,
    ) -> RetryState:
        return RetryState(
            method=method,
            url=url,
            policy=self._policy(settings, max_retries),
            billable=billable,
            kind=kind,
            secrets=(settings.api_key,),
        )

    # -- connection form ----------------------------------------------------------------------

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra fields for UIs that still build WTForms (Airflow 3.3 reads ``CONN_FIELDS`` instead)."""
        from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
        from flask_babel import lazy_gettext
        from wtforms import BooleanField, IntegerField, StringField
        from wtforms.validators import NumberRange, Optional

        return {
            "tasks_base_url": StringField(lazy_gettext("Tasks base URL"), widget=BS3TextFieldWidget()),
            "output_uri": StringField(lazy_gettext("Default output URI"), widget=BS3TextFieldWidget()),
            "connect_timeout": IntegerField(
                lazy_gettext("Connect timeout (s)"), validators=[Optional(), NumberRange(min=1)], default=10
            ),
            "read_timeout": IntegerField(
                lazy_gettext("Read timeout (s)"), validators=[Optional(), NumberRange(min=1)], default=300
            ),
            "max_retries": IntegerField(
                lazy_gettext("Max retries"), validators=[Optional(), NumberRange(min=0)], default=4
            ),
            "allow_private_image_hosts": BooleanField(
                lazy_gettext("Allow private image hosts"), default=False
            ),
        }

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": list(UI_FIELD_BEHAVIOUR["hidden-fields"]),
            "relabeling": dict(UI_FIELD_BEHAVIOUR["relabeling"]),
            "placeholders": dict(UI_FIELD_BEHAVIOUR["placeholders"]),
        }

    # -- sync clients -------------------------------------------------------------------------

    def get_conn(self) -> httpx.Client:
        """The pooled API client (base URL set, key only sent to the API origins)."""
        return self._client("api")

    def _client(self, purpose: Purpose) -> httpx.Client:
        client = self._clients.get(purpose)
        if client is None or client.is_closed:
            client = build_client(self.settings, purpose, transport=self._transport, resolver=self._resolver)
            self._clients[purpose] = client
        return client

    def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    def _send(
        self, client: httpx.Client, request: httpx.Request, call: RetryState, *, stream: bool = False
    ) -> httpx.Response:
        while True:
            try:
                response = client.send(request, stream=stream)
                if stream and call.kind == "api" and not is_streamed_answer(response):
                    # A small API answer: an error carried in a 200 is judged (and retried) below.
                    response.read()
            except httpx.TransportError as exc:
                self._sleep(call.after_exception(exc))
                continue
            delay = call.after_response(response)
            if delay is None:
                return response
            response.close()
            self._sleep(delay)

    def _call(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        billable: bool = False,
        max_retries: int | None = None,
        status_in_body_is_not_error: bool = False,
    ) -> tuple[Any, httpx.Response]:
        client = self.get_conn()
        request = client.build_request(method, url, json=json, params=params)
        # The absolute URL, so an error names the host (a relative path showed as ":///v1/...").
        call = self._retry_state(
            self.settings, method, str(request.url), billable=billable, max_retries=max_retries
        )
        response = self._send(client, request, call)
        return json_or_raise(
            response, call, status_in_body_is_not_error=status_in_body_is_not_error
        ), response

    # -- async clients ------------------------------------------------------------------------

    async def aget_async_client(self) -> httpx.AsyncClient:
        """The pooled async API client; the connection is read with the async API, nothing blocks."""
        return self._async_client(await self.aget_settings(), "api")

    def _async_client(self, settings: AIHubMixSettings, purpose: Purpose) -> httpx.AsyncClient:
        if self.shared_pool:
            return shared_client_for(settings, purpose)
        key = (id(asyncio.get_running_loop()), purpose)
        client = self._async_clients.get(key)
        if client is None or client.is_closed:
            client = build_client(
                settings, purpose, asynchronous=True, transport=self._async_transport, resolver=self._resolver
            )
            self._async_clients[key] = client
        return client

    async def aclose(self) -> None:
        """Close this hook's private async clients (shared ones stay open for other triggers)."""
        clients, self._async_clients = list(self._async_clients.values()), {}
        for client in clients:
            await client.aclose()

    async def _asend(
        self, client: httpx.AsyncClient, request: httpx.Request, call: RetryState, *, stream: bool = False
    ) -> httpx.Response:
        while True:
            try:
                if stream:
                    response = await client.send(request, stream=True)
                else:
                    async with request_gate(client):
                        response = await client.send(request)
            except httpx.TransportError as exc:
                await self._async_sleep(call.after_exception(exc))
                continue
            delay = call.after_response(response)
            if delay is None:
                return response
            await response.aclose()
            await self._async_sleep(delay)

    async def _acall(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        billable: bool = False,
        status_in_body_is_not_error: bool = False,
    ) -> tuple[Any, httpx.Response]:
        settings = await self.aget_settings()
        client = self._async_client(settings, "api")
        request = client.build_request(method, url, json=json)
        call = self._retry_state(settings, method, str(request.url), billable=billable)
        response = await self._asend(client, request, call)
        return json_or_raise(
            response, call, status_in_body_is_not_error=status_in_body_is_not_error
        ), response

    # -- predictions --------------------------------------------------------------------------

    @staticmethod
    def prepare_prediction(
        model: str | ModelSpec,
        params: Mapping[str, Any],
        extra_input: Mapping[str, Any] | None = None,
        *,
        require_resolved: bool = False,
        request_index: int = 0,
    ) -> tuple[ModelSpec, str, dict[str, Any]]:
        """Resolve and validate BEFORE any HTTP: ``(spec, path, body)``; raises AIHubMixValidationError.

        ``require_resolved`` refuses references the API cannot read (``s3://``, local paths).
        ``request_index`` picks which of a one-image-per-request model's ``n`` requests (Gemini)
        the body is for; other models ignore it.
        """
        spec, input_ = _validated(model, params, extra_input, require_resolved=require_resolved)
        request = wire_request(spec, input_, request_index)
        return spec, request.path, request.body

    @staticmethod
    def _inline_references(
        model: str | ModelSpec, params: Mapping[str, Any], aws_conn_id: str | None
    ) -> tuple[ModelSpec, dict[str, Any]]:
        """Read ``s3://`` URIs and local paths among the reference parameters into ``data:`` URIs."""
        spec = model if isinstance(model, ModelSpec) else resolve_model(model)
        if not isinstance(params, Mapping):
            return spec, params  # build_input names the problem
        schema = schema_for(spec.family)
        keys = [key for key in params if isinstance(key, str) and schema.canonical(key) in ("image", "mask")]
        return spec, resolve_param_references(params, keys, model=spec.name, aws_conn_id=aws_conn_id)

    def predict(
        self,
        model: str | ModelSpec,
        params: Mapping[str, Any],
        *,
        extra_input: Mapping[str, Any] | None = None,
        aws_conn_id: str | None = "aws_default",
        request_index: int = 0,
    ) -> PredictionResult:
        """Submit one prediction and return its images (sync models) or its task handle (async ones).

        Reference images given as ``s3://`` URIs (read with ``aws_conn_id``) or local paths are
        read here and sent inline, as the operators do; anything unreadable or not an image is an
        :class:`AIHubMixValidationError` before any request.

        The POST is billable: 429/5xx answers are retried (the gateway did not accept the job), a
        lost response raises :class:`AIHubMixPossiblyBilledError` rather than paying twice. For
        Gemini (one image per request) it sends request ``request_index`` of ``n``; URL references
        are downloaded first (no key, SSRF-guarded) and sent inline.
        """
        spec, params = self._inline_references(model, params, aws_conn_id)
        spec, input_ = _validated(spec, params, extra_input, require_resolved=True)
        urls = gemini.url_references(input_) if spec.one_image_per_request else []
        if urls:
            fetched = {url: self.download(url, max_bytes=DEFAULT_MAX_REFERENCE_BYTES) for url in urls}
            input_ = gemini.with_inlined_urls(input_, fetched)
        return self.send(spec, wire_request(spec, input_, request_index))

    def _gemini_prediction(
        self, spec: ModelSpec, path: str, body: dict[str, Any], *, seed: int | None
    ) -> PredictionResult:
        """POST a Gemini request and read its answer as it streams (plain or ``:streamGenerateContent``):
        one image's base64 at a time, ``thoughtSignature`` skipped (:mod:`.responses.gemini_stream`)."""
        client = self.get_conn()
        request = client.build_request("POST", path, json=body)
        call = self._retry_state(self.settings, "POST", str(request.url), billable=True)
        response = self._send(client, request, call, stream=True)
        try:
            if response.status_code >= 300:
                response.read()
                json_or_raise(response, call)
            result = gemini_stream.read_answer(
                _read_or_lost(response.iter_bytes(), call),
                request_id=response.headers.get("X-Request-Id"),
                seed=seed,
                raise_error=lambda skeleton: _raise_body_error(response, call, skeleton),
            )
        finally:
            response.close()
        self._log_prediction(spec, result)
        return result

    async def apredict(
        self,
        model: str | ModelSpec,
        params: Mapping[str, Any],
        *,
        extra_input: Mapping[str, Any] | None = None,
        aws_conn_id: str | None = "aws_default",
        request_index: int = 0,
    ) -> PredictionResult:
        """The async twin of :meth:`predict`; reading references runs off the event loop."""
        spec, params = await asyncio.to_thread(self._inline_references, model, params, aws_conn_id)
        spec, input_ = _validated(spec, params, extra_input, require_resolved=True)
        urls = gemini.url_references(input_) if spec.one_image_per_request else []
        if urls:
            fetched = {url: await self.adownload(url, max_bytes=DEFAULT_MAX_REFERENCE_BYTES) for url in urls}
            input_ = gemini.with_inlined_urls(input_, fetched)
        return await self.asend(spec, wire_request(spec, input_, request_index))

    def send(self, spec: ModelSpec, request: WireRequest) -> PredictionResult:
        """POST one request :func:`~.schemas.wire.wire_request` built (validated, references readable).

        The billable call itself, with :meth:`predict`'s retries and errors; the engine uses it to
        send the request it validated once.
        """
        if spec.one_image_per_request:
            return self._gemini_prediction(spec, request.path, request.body, seed=request.seed)
        # Streamed to a spool and read chunk by chunk: a base64 image is never held whole as text.
        client = self.get_conn()
        post = client.build_request("POST", request.path, json=request.body)
        call = self._retry_state(self.settings, "POST", str(post.url), billable=True)
        response = self._send(client, post, call, stream=True)
        try:
            if response.status_code >= 300:
                response.read()
                json_or_raise(response, call)
            answer = spool_answer(response, call)
        finally:
            response.close()
        if answer is None:
            return self._finish_prediction(spec, json_or_raise(response, call), response, seed=request.seed)
        result = answer.parse()
        self._log_prediction(spec, result)
        return result

    async def asend(self, spec: ModelSpec, wire: WireRequest) -> PredictionResult:
        """The async twin of :meth:`send`."""
        if spec.one_image_per_request:
            # Small next to the triggerer's path (send_prediction spools the answer); read in memory.
            settings = await self.aget_settings()
            client = self._async_client(settings, "api")
            request = client.build_request("POST", wire.path, json=wire.body)
            call = self._retry_state(settings, "POST", str(request.url), billable=True)
            response = await self._asend(client, request, call)
            if response.status_code >= 300:
                json_or_raise(response, call)
            result = gemini_stream.read_answer(
                [response.content],
                request_id=response.headers.get("X-Request-Id"),
                seed=wire.seed,
                raise_error=lambda skeleton: _raise_body_error(response, call, skeleton),
            )
            self._log_prediction(spec, result)
            return result
        data, response = await self._acall("POST", wire.path, json=wire.body, billable=True)
        return self._finish_prediction(spec, data, response, seed=wire.seed)

    async def asend_prediction(
        self, path: str, content: bytes, *, deadline: float | None = None
    ) -> PredictionAnswer:
        """POST a prepared request body (JSON bytes) and stream its answer; for the triggerer.

        ``path`` is relative to the base URL (``/v1/...``). 429/5xx are retried with the
        connection's policy but never past ``deadline`` (epoch seconds); a lost answer raises
        :class:`AIHubMixPossiblyBilledError`. Parse the answer in a thread (it is blocking).
        """
        settings = await self.aget_settings()
        borrowed = (
            borrow_prediction_client(settings)
            if self.shared_pool
            else nullcontext(self._async_client(settings, "predictions"))
        )
        async with borrowed as client:
            request = client.build_request(
                "POST", path, content=content, headers={"Content-Type": "application/json"}
            )
            call = self._retry_state(settings, "POST", str(request.url), billable=True)
            return await send_prediction(client, request, call, sleep=self._async_sleep, deadline=deadline)

    def _finish_prediction(
        self, spec: ModelSpec, data: Any, response: httpx.Response, *, seed: int | None = None
    ) -> PredictionResult:
        request_id = response.headers.get("X-Request-Id")
        if spec.one_image_per_request:
            result = gemini.parse_answer(data, request_id=request_id, seed=seed)
        else:
            result = parse_prediction(data, request_id=request_id)
        self._log_prediction(spec, result)
        return result

    def _log_prediction(self, spec: ModelSpec, result: PredictionResult) -> None:
        if result.task is not None:
            self.log.info("AIHubMix accepted %s as async task %s", spec.path, result.task.task_id)
        else:
            self.log.info(
                "AIHubMix %s returned %d image(s) (X-Request-Id=%s)",
                spec.path,
                len(result.images),
                result.request_id,
            )

    # -- async tasks --------------------------------------------------------------------------

    def get_task(self, task_id: str) -> TaskState:
        """``GET {tasks_base_url}/v1/tasks/<id>``; an HTTP 404 is a NOT_FOUND state, not an exception."""
        try:
            data, _ = self._call("GET", task_url(self.settings, task_id), status_in_body_is_not_error=True)
        except AIHubMixError as exc:
            return _task_not_found(task_id, exc)
        return parse_task(data, task_id)

    async def aget_task(self, task_id: str) -> TaskState:
        settings = await self.aget_settings()
        try:
            data, _ = await self._acall("GET", task_url(settings, task_id), status_in_body_is_not_error=True)
        except AIHubMixError as exc:
            return _task_not_found(task_id, exc)
        return parse_task(data, task_id)

    # -- models / connection test -------------------------------------------------------------

    def list_models(self) -> list[str]:
        """Model ids this key may use (``GET /v1/models``)."""
        data, _ = self._call("GET", "/v1/models")
        return models_from_body(data)

    def public_models(self, model_type: str = IMAGE_TYPE) -> list[dict[str, Any]] | None:
        """AIHubMix's public catalog (``GET /api/v1/models?type=...``): entries with ``model_id``,
        ``types``, ``input_modalities``; ``None`` when it cannot be read (the drift check then tells
        image models by name)."""
        try:
            data, _ = self._call("GET", "/api/v1/models", params={"type": model_type}, max_retries=1)
        except AIHubMixError as exc:
            self.log.info("AIHubMix's public model catalog could not be read: %s", exc)
            return None
        entries = data.get("data") if isinstance(data, Mapping) else None
        return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else None

    def model_drift(self) -> Drift:
        """The image models this key can use that the catalog lacks or marks differently."""
        return compare(self.list_models(), self.public_models())

    def get_balance(self) -> Balance:
        """The account's remaining balance (``GET /dashboard/billing/remain``, see
        :mod:`airflow_provider_aihubmix.responses.balance` for what is and is not known of its unit)."""
        data, _ = self._call("GET", REMAIN_PATH, max_retries=1)
        return parse_remain(data)

    @property
    def balance_guard(self) -> bool:
        """Connection extra ``balance_guard`` (default off): refuse a request whose estimate exceeds
        the remaining balance. Off by default: AIHubMix does not document the balance's unit."""
        try:
            extra = self.get_connection(self.aihubmix_conn_id).extra_dejson or {}
        except Exception:
            return False
        value = extra.get("balance_guard", False)
        if isinstance(value, str):
            value = value.strip().lower() == "true"
        return value is True

    def check_balance(self, estimated_usd: float | None, *, model: str) -> Balance:
        """Refuse, before any request, an estimate above the remaining balance (the balance guard).

        :raises AIHubMixBudgetExceededError: the estimate exceeds the remaining balance.
        """
        balance = self.get_balance()
        remaining = balance.remaining_usd
        if estimated_usd is None or remaining is None:
            self.log.info("Balance guard: %s; estimate %s: not compared", balance.describe(), estimated_usd)
            return balance
        if estimated_usd > remaining:
            raise AIHubMixBudgetExceededError(
                f"Connection extra 'balance_guard': estimated cost {estimated_usd:.4f} USD for model {model} "
                f"exceeds the account balance ({balance.describe()}; {balance.note}); nothing was submitted.",
                param="balance_guard",
            )
        return balance

    def test_connection(self) -> tuple[bool, str]:
        """Check the key with ``GET /v1/models`` and report the image models the catalog lacks; the
        message never contains the key."""
        try:
            settings = self.settings
            data, _ = self._call("GET", "/v1/models", max_retries=1)
            models = models_from_body(data)
            drift = compare(models, self.public_models())
        except AIHubMixAuthenticationError as exc:
            if exc.status_code is None:
                return False, exc.message
            return False, f"API key rejected (HTTP {exc.status_code}): {exc}"
        except AIHubMixQuotaError as exc:
            return False, f"API key not allowed: {exc}"
        except AIHubMixError as exc:
            return False, str(exc)
        except Exception as exc:
            secrets = (self._settings.api_key,) if self._settings else ()
            return False, f"{type(exc).__name__}: {scrub_text(str(exc), secrets)}"
        finally:
            self.close()
        return (
            True,
            f"Connected to AIHubMix at {settings.base_url}: {len(models)} models available for this key; "
            f"{drift.summary()}",
        )

    # -- downloads ----------------------------------------------------------------------------

    @contextmanager
    def stream_download(self, url: str, *, max_bytes: int | None = None) -> Iterator[ImageDownload]:
        """Open ``url`` (no Authorization header, SSRF-guarded) and yield an :class:`ImageDownload`.

        403/404/410 mean a signed URL expired or never existed: :class:`AIHubMixDownloadError`.
        """
        settings = self.settings
        client = self._client("download")
        settings.check_download(url, None)
        call = self._retry_state(settings, "GET", url, kind="download")
        response = self._send(client, client.build_request("GET", url), call, stream=True)
        try:
            if response.status_code >= 400:
                raise download_error_for_status(response, url, call.attempts)
            yield ImageDownload(response, ByteBudget(url, content_length_of(response), max_bytes))
        finally:
            response.close()

    def download(self, url: str, *, max_bytes: int | None = None) -> bytes:
        """The whole image; a body cut short is fetched again (a GET, so safe) within the retry budget."""
        policy = self._policy(self.settings)
        attempt = 0
        while True:
            try:
                with self.stream_download(url, max_bytes=max_bytes) as download:
                    return download.read()
            except DownloadTruncatedError as exc:
                delay = policy.delay_for(attempt, None)
                if delay is None:
                    raise
                self.log.warning("%s; downloading again in %.1f s", exc.message, delay)
                self._sleep(delay)
                attempt += 1

    @asynccontextmanager
    async def astream_download(
        self, url: str, *, max_bytes: int | None = None
    ) -> AsyncIterator[AsyncImageDownload]:
        settings = await self.aget_settings()
        client = self._async_client(settings, "download")
        settings.check_download(url, None)
        call = self._retry_state(settings, "GET", url, kind="download")
        response = await self._asend(client, client.build_request("GET", url), call, stream=True)
        try:
            if response.status_code >= 400:
                raise download_error_for_status(response, url, call.attempts)
            yield AsyncImageDownload(response, ByteBudget(url, content_length_of(response), max_bytes))
        finally:
            await response.aclose()

    async def adownload(self, url: str, *, max_bytes: int | None = None) -> bytes:
        policy = self._policy(await self.aget_settings())
        attempt = 0
        while True:
            try:
                async with self.astream_download(url, max_bytes=max_bytes) as download:
                    return await download.aread()
            except DownloadTruncatedError as exc:
                delay = policy.delay_for(attempt, None)
                if delay is None:
                    raise
                self.log.warning("%s; downloading again in %.1f s", exc.message, delay)
                await self._async_sleep(delay)
                attempt += 1


async def shared_async_client(
    conn_id: str = "aihubmix_default", *, settings: AIHubMixSettings | None = None
) -> httpx.AsyncClient:
    """The pooled API client for ``conn_id`` on the running event loop.

    All triggers of one triggerer run on one loop, so they share one connection pool per
    connection instead of opening one per task. The connection is read with the async API.
    Do not close the returned client: it is shared; :func:`aclose_shared_clients` does that.
    """
    if settings is None:
        settings = await AIHubMixHook.aload_settings(conn_id)
    await aload_ssl_context()
    return shared_client_for(settings, "api")


def _validated(
    model: str | ModelSpec,
    params: Mapping[str, Any],
    extra_input: Mapping[str, Any] | None,
    *,
    require_resolved: bool = False,
) -> tuple[ModelSpec, dict[str, Any]]:
    spec = model if isinstance(model, ModelSpec) else resolve_model(model)
    return spec, build_input(spec, params, extra_input, require_resolved=require_resolved)


def _read_or_lost(chunks: Iterator[bytes], call: Any) -> Iterator[bytes]:
    """The answer's chunks; a connection lost mid-answer was billed: PossiblyBilled, never a resend."""
    try:
        yield from chunks
    except httpx.TransportError as exc:
        call.after_exception(exc)
        raise


def _raise_body_error(response: httpx.Response, call: Any, skeleton: Any) -> None:
    """Map an ``error`` object answered with HTTP 2xx, from the skeleton (no image or signature in it)."""
    headers = {k: v for k, v in response.headers.items() if k.lower() == "x-request-id"}
    json_or_raise(
        httpx.Response(
            response.status_code,
            headers={**headers, "Content-Type": "application/json"},
            content=json.dumps(skeleton).encode(),
            request=response.request,
        ),
        call,
    )


def _task_not_found(task_id: str, exc: AIHubMixError) -> TaskState:
    # Only a 404 becomes a state (the task is gone); every other failure is raised to the caller.
    if exc.status_code != 404:
        raise exc
    return TaskState(
        task_id=task_id,
        status=TaskStatus.NOT_FOUND,
        raw_status="Task not found",
        message=exc.message,
    )


__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "AIHubMixHook",
    "AIHubMixSettings",
    "AsyncImageDownload",
    "ImageDownload",
    "aclose_shared_clients",
    "default_ssl_context",
    "shared_async_client",
]
