"""Every httpx client the hook uses is built here, by :func:`build_client`.

Two purposes — ``"api"`` (base URL set, the key sent only to the API origins) and ``"download"``
(no credentials, SSRF-guarded per request, redirects followed) — in two flavours, sync and async;
``"predictions"`` is the API client for the long requests the triggerer sends, pooled in shards
(:func:`borrow_prediction_client`).
Async API and download clients are shared per (connection, purpose, event loop) unless a hook
asks for private ones: all triggers of a triggerer run on one loop, so they share one pool per
connection instead of opening one per task. Beside them, :func:`shared_settings` keeps one
settings object per connection and loop for :data:`SETTINGS_TTL` seconds, so those triggers share
one connection read too.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Literal, overload

import httpx

from airflow_provider_aihubmix.http.auth import api_client_kwargs, download_client_kwargs
from airflow_provider_aihubmix.http.settings import AIHubMixSettings
from airflow_provider_aihubmix.http.ssrf import Resolver, is_ip_literal, system_resolver

Purpose = Literal["api", "download", "predictions"]

# Predictions sent from the triggerer wait 30-120 s for their answer, one connection each
# (HTTP/1.1), so 1,000 of them need 1,000 connections. httpcore's pool re-scans all of its
# connections on every request and every answer, so one pool of 1,000 costs O(n^2) on the
# loop (seconds of lag, connect timeouts: benchmarks/bench_prediction_triggers.py). They are
# spread over shards of PREDICTION_SHARD connections instead, each a pooled client.
PREDICTION_SHARD = 32
PREDICTION_LIMITS = httpx.Limits(max_connections=PREDICTION_SHARD, max_keepalive_connections=8)


@functools.lru_cache(maxsize=1)
def default_ssl_context() -> ssl.SSLContext:
    """httpx's default verifying context, built once per process (building it reads the CA bundle)."""
    return httpx.create_ssl_context()


async def aload_ssl_context() -> None:
    """Build :func:`default_ssl_context` in a thread: loading the CA bundle blocks for ~0.1 s,
    never on the event loop all triggers share. Call before any async client is built."""
    if default_ssl_context.cache_info().currsize == 0:
        await asyncio.to_thread(default_ssl_context)


def _sync_download_guard(settings: AIHubMixSettings, resolver: Resolver) -> Callable[[httpx.Request], None]:
    def guard(request: httpx.Request) -> None:
        host = request.url.host
        addresses = None if settings.allow_private_image_hosts or is_ip_literal(host) else resolver(host)
        settings.check_download(str(request.url), addresses)

    return guard


def _async_download_guard(
    settings: AIHubMixSettings, resolver: Resolver
) -> Callable[[httpx.Request], Awaitable[None]]:
    async def guard(request: httpx.Request) -> None:
        host = request.url.host
        addresses = None
        if not settings.allow_private_image_hosts and not is_ip_literal(host):
            # getaddrinfo blocks: never on the triggerer's loop.
            addresses = await asyncio.to_thread(resolver, host)
        settings.check_download(str(request.url), addresses)

    return guard


@overload
def build_client(
    settings: AIHubMixSettings,
    purpose: Purpose,
    *,
    asynchronous: Literal[False] = ...,
    transport: httpx.BaseTransport | None = ...,
    resolver: Resolver = ...,
) -> httpx.Client: ...


@overload
def build_client(
    settings: AIHubMixSettings,
    purpose: Purpose,
    *,
    asynchronous: Literal[True],
    transport: httpx.AsyncBaseTransport | None = ...,
    resolver: Resolver = ...,
) -> httpx.AsyncClient: ...


def build_client(
    settings: AIHubMixSettings,
    purpose: Purpose,
    *,
    asynchronous: bool = False,
    transport: Any = None,
    resolver: Resolver = system_resolver,
) -> httpx.Client | httpx.AsyncClient:
    """A new client for ``purpose``; ``transport`` replaces the network (tests, benchmarks).

    :param resolver: host -> addresses for the download guard (a test may pin it).
    """
    kwargs: dict[str, Any]
    if purpose == "api":
        kwargs = api_client_kwargs(settings)
    elif purpose == "predictions":
        kwargs = {**api_client_kwargs(settings), "limits": PREDICTION_LIMITS}
    else:
        guard = (_async_download_guard if asynchronous else _sync_download_guard)(settings, resolver)
        kwargs = {**download_client_kwargs(settings), "event_hooks": {"request": [guard]}}
    if asynchronous:
        return httpx.AsyncClient(transport=transport, verify=default_ssl_context(), **kwargs)
    return httpx.Client(transport=transport, verify=default_ssl_context(), **kwargs)


# ---------------------------------------------------------------------------------------------
# One pooled AsyncClient per (connection, purpose, event loop), shared by every trigger
# ---------------------------------------------------------------------------------------------


class _SharedEntry:
    def __init__(self, client: httpx.AsyncClient, fingerprint: tuple[Any, ...]) -> None:
        self.client = client
        self.fingerprint = fingerprint


# Keyed by the loop object itself (weakly): a client's connections belong to the loop that opened
# them, and a loop that is gone takes its entries with it.
_SHARED: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str | None, str], _SharedEntry]] = (
    weakref.WeakKeyDictionary()
)


def shared_client_for(settings: AIHubMixSettings, purpose: Purpose) -> httpx.AsyncClient:
    """The running loop's shared client for ``settings.conn_id`` and ``purpose`` (built on first use,
    rebuilt when the connection changed)."""
    loop = asyncio.get_running_loop()
    entries = _SHARED.setdefault(loop, {})
    key = (settings.conn_id, purpose)
    entry = entries.get(key)
    fingerprint = settings.fingerprint()
    if entry is not None and entry.fingerprint == fingerprint and not entry.client.is_closed:
        return entry.client
    if entry is not None and not entry.client.is_closed:
        # The connection changed (rotated key, new URL): requests in flight on the old client may
        # finish within the read timeout, then it is closed.
        old = entry.client
        loop.call_later(settings.read_timeout + 5, lambda: loop.create_task(old.aclose()))
    client = build_client(settings, purpose, asynchronous=True)
    entries[key] = _SharedEntry(client, fingerprint)
    return client


async def aclose_shared_clients() -> None:
    """Close every shared client of the running loop (shutdown, tests)."""
    loop = asyncio.get_running_loop()
    entries = _SHARED.pop(loop, {})
    for entry in entries.values():
        await entry.client.aclose()
    for _, pools in _PREDICTION_POOLS.pop(loop, {}).values():
        await pools.aclose()
    _SETTINGS.pop(loop, None)


# ---------------------------------------------------------------------------------------------
# One settings object per (connection, event loop) for a short while, shared by every trigger
# ---------------------------------------------------------------------------------------------

#: Seconds one read of a connection serves every hook of the event loop. A connection edit (a
#: rotated key, a new URL) reaches the hooks that read their settings after that, at the latest
#: this long after the edit.
SETTINGS_TTL = 30.0
#: The clock of that TTL (tests replace it).
settings_clock: Callable[[], float] = time.monotonic


class _SettingsEntry:
    __slots__ = ("derived", "expires", "load")

    def __init__(self, load: asyncio.Task[AIHubMixSettings]) -> None:
        self.load = load
        self.expires = float("inf")  # set when the read ends
        self.derived: dict[tuple[tuple[str, Any], ...], AIHubMixSettings] = {}


_SETTINGS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _SettingsEntry]] = (
    weakref.WeakKeyDictionary()
)


async def shared_settings(
    conn_id: str,
    load: Callable[[], Awaitable[AIHubMixSettings]],
    overrides: Mapping[str, Any] | None = None,
    *,
    ttl: float | None = None,
) -> AIHubMixSettings:
    """
    The running loop's settings for ``conn_id``: read once by ``load`` and shared for ``ttl`` seconds.

    Thousands of triggers of one connection starting together make one read; each waits for it
    (a waiter cancelled does not cancel the read). A failed read is not kept: the next call reads
    again. ``overrides`` (None values ignored) apply on top, one object per distinct set.
    ``ttl``: seconds, :data:`SETTINGS_TTL` when None.
    """
    ttl = SETTINGS_TTL if ttl is None else ttl
    loop = asyncio.get_running_loop()
    entries = _SETTINGS.setdefault(loop, {})
    entry = entries.get(conn_id)
    if entry is None or (entry.load.done() and entry.expires <= settings_clock()):
        task = loop.create_task(_read(load))
        entry = entries[conn_id] = _SettingsEntry(task)
        task.add_done_callback(functools.partial(_settle, entries, conn_id, entry, ttl))
    base = await asyncio.shield(entry.load)
    key = tuple(sorted((k, v) for k, v in (overrides or {}).items() if v is not None))
    if not key:
        return base
    settings = entry.derived.get(key)
    if settings is None:
        settings = entry.derived[key] = base.with_overrides(**dict(key))
    return settings


async def _read(load: Callable[[], Awaitable[AIHubMixSettings]]) -> AIHubMixSettings:
    return await load()


def _settle(
    entries: dict[str, _SettingsEntry],
    conn_id: str,
    entry: _SettingsEntry,
    ttl: float,
    done: asyncio.Task[AIHubMixSettings],
) -> None:
    if done.cancelled() or done.exception() is not None:
        if entries.get(conn_id) is entry:
            del entries[conn_id]
        return
    entry.expires = settings_clock() + ttl


class _Shard:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.in_flight = 0


class PredictionPools:
    """Pooled prediction clients in shards of :data:`PREDICTION_SHARD` connections.

    A request borrows the least busy shard that has room, or a new shard when all are full,
    so no pool ever holds more connections than a shard and none waits for a connection.
    """

    def __init__(self, make: Callable[[], httpx.AsyncClient]) -> None:
        self._make = make
        self._shards: list[_Shard] = []

    @contextlib.asynccontextmanager
    async def borrow(self) -> AsyncIterator[httpx.AsyncClient]:
        open_shards = [s for s in self._shards if s.in_flight < PREDICTION_SHARD and not s.client.is_closed]
        shard = min(open_shards, key=lambda s: s.in_flight, default=None)
        if shard is None:
            shard = _Shard(self._make())
            self._shards.append(shard)
        shard.in_flight += 1
        try:
            yield shard.client
        finally:
            shard.in_flight -= 1

    async def aclose(self) -> None:
        shards, self._shards = self._shards, []
        for shard in shards:
            await shard.client.aclose()


_PREDICTION_POOLS: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[str | None, tuple[tuple[Any, ...], PredictionPools]]
] = weakref.WeakKeyDictionary()


def borrow_prediction_client(
    settings: AIHubMixSettings,
) -> contextlib.AbstractAsyncContextManager[httpx.AsyncClient]:
    """A pooled prediction client of the running loop for ``settings``, borrowed for one request."""
    loop = asyncio.get_running_loop()
    entries = _PREDICTION_POOLS.setdefault(loop, {})
    fingerprint = settings.fingerprint()
    entry = entries.get(settings.conn_id)
    if entry is None or entry[0] != fingerprint:
        # A changed connection starts new shards; requests in flight finish on the old ones.
        pools = PredictionPools(lambda: build_client(settings, "predictions", asynchronous=True))
        entry = entries[settings.conn_id] = (fingerprint, pools)
    return entry[1].borrow()


# httpcore's pool re-scans every queued request against every connection on each state change,
# so thousands of triggers polling at once stall the shared loop for minutes (benchmarks/
# bench_triggers.py). Requests wait here instead, in a FIFO semaphore, and the pool never holds
# more than it has connections. 20 = max_keepalive_connections: no connection churn either.
ASYNC_API_CONCURRENCY = 20
_GATES: weakref.WeakKeyDictionary[httpx.AsyncClient, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def request_gate(client: httpx.AsyncClient) -> asyncio.Semaphore:
    """The FIFO semaphore non-streamed requests of ``client`` wait in."""
    gate = _GATES.get(client)
    if gate is None:
        gate = _GATES[client] = asyncio.Semaphore(ASYNC_API_CONCURRENCY)
    return gate


__all__ = [
    "ASYNC_API_CONCURRENCY",
    "SETTINGS_TTL",
    "Purpose",
    "aclose_shared_clients",
    "aload_ssl_context",
    "borrow_prediction_client",
    "build_client",
    "default_ssl_context",
    "request_gate",
    "shared_client_for",
    "shared_settings",
]
