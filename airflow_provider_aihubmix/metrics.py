"""Metrics through Airflow's own stats facility: what the provider buys, stores and refuses.

Every metric goes through the ``Stats`` Airflow itself uses (the Task SDK's
``airflow.sdk.observability.stats`` where the Airflow version has it, else ``airflow.stats``),
so the deployment's ``[metrics]`` settings decide where it goes -- StatsD, Datadog's StatsD,
OpenTelemetry -- with the deployment's prefix (``statsd_prefix`` / ``otel_prefix``) and tags.
With metrics off Airflow's backend is its no-op logger: nothing is sent and no socket opened.
There is no second metrics client.

:data:`METRICS` is the one table of names (``docs/METRICS.md`` prints it). Tags are ``model``,
``family`` and ``dag_id`` (plus ``outcome`` / ``kind`` / ``reason`` where a row says so); never a
prompt, a URL or anything secret: tag values are only catalog names, DAG ids and fixed words,
with every character Airflow's name validator refuses replaced by ``_``.

Money is counted in integer micro-USD (``1 USD = 1_000_000``) so the counters add up exactly:
summing ``aihubmix.spend.actual_microusd`` over a day equals the sum of that day's manifests'
``actual_cost_usd`` (rounded to the micro-dollar); a purchase whose actual cost is unknown is
counted by ``aihubmix.spend.unknown``, never as zero.

Emission never fails a task nor slows it noticeably: each call is one in-process call into
Airflow's backend (a UDP datagram or an in-memory OpenTelemetry instrument); any error is
swallowed and logged once per process.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)

MICRO = 1_000_000
_UNSAFE = re.compile(r"[^A-Za-z0-9_./-]")


class _StatsLike(Protocol):
    def incr(
        self, stat: str, count: int = ..., rate: float = ..., *, tags: dict[str, Any] | None = ...
    ) -> Any: ...

    def gauge(self, stat: str, value: float, *, tags: dict[str, Any] | None = ...) -> Any: ...

    def timing(self, stat: str, dt: Any, *, tags: dict[str, Any] | None = ...) -> Any: ...


def _airflow_stats() -> _StatsLike | None:
    """Airflow's ``Stats``: the Task SDK's where it exists (Airflow >= 3.2), else the core one."""
    try:
        from airflow.sdk.observability.stats import Stats

        return Stats  # type: ignore[return-value]
    except ImportError:
        pass
    try:
        from airflow.stats import Stats  # type: ignore[attr-defined,no-redef,unused-ignore]

        return Stats  # type: ignore[no-any-return,unused-ignore]
    except ImportError:
        return None


@dataclass(frozen=True)
class Metric:
    """One documented metric: its name (after the deployment's prefix), type, unit, tags and when."""

    name: str
    type: str
    unit: str
    tags: tuple[str, ...]
    when: str


_BASE = ("model", "family", "dag_id")
REQUESTS = Metric(
    "aihubmix.requests",
    "counter",
    "requests",
    (*_BASE, "outcome"),
    "a billable request ends (outcome: success, refused_before_sending, moderated, rate_limited, "
    "upstream_error, refused, possibly_billed) -- as its manifest records it",
)
REQUEST_DURATION = Metric(
    "aihubmix.request.duration",
    "timer",
    "milliseconds",
    (*_BASE, "outcome"),
    "a request's answer (or error) is recorded: from the send marker on disk to the outcome "
    "recorded, in the process that sent it (retries of 429/5xx included)",
)
TASK_WAIT = Metric(
    "aihubmix.task.wait",
    "timer",
    "milliseconds",
    _BASE,
    "an async (submit-then-poll) task's wait ends: from its submission to its result collected",
)
IMAGES = Metric("aihubmix.images.stored", "counter", "images", _BASE, "a purchase completes")
BYTES = Metric("aihubmix.images.bytes", "counter", "bytes", _BASE, "a purchase completes")
ESTIMATED = Metric(
    "aihubmix.spend.estimated_microusd",
    "counter",
    "micro-USD",
    _BASE,
    "a purchase completes: the estimate made before buying",
)
ACTUAL = Metric(
    "aihubmix.spend.actual_microusd",
    "counter",
    "micro-USD",
    _BASE,
    "a purchase completes with a known actual cost (sums to the manifests' actual_cost_usd)",
)
UNKNOWN = Metric(
    "aihubmix.spend.unknown",
    "counter",
    "purchases",
    _BASE,
    "a purchase completes without a known actual cost (never counted as zero USD)",
)
RETRIES = Metric(
    "aihubmix.retries",
    "counter",
    "retries",
    ("kind", "reason"),
    "an API call or a download is retried (kind: api, download; reason: the HTTP status or "
    "the transport error's class name)",
)
BUDGET_REFUSALS = Metric(
    "aihubmix.budget.refusals",
    "counter",
    "requests",
    _BASE,
    "a request is refused by max_cost_usd, the DAG budget or the balance guard before sending",
)
TRIGGERS = Metric(
    "aihubmix.triggers.running",
    "gauge",
    "triggers",
    ("kind",),
    "a trigger of this provider starts or ends in the triggerer (kind: prediction, task); the "
    "number running in that triggerer process",
)

METRICS: tuple[Metric, ...] = (
    REQUESTS,
    REQUEST_DURATION,
    TASK_WAIT,
    IMAGES,
    BYTES,
    ESTIMATED,
    ACTUAL,
    UNKNOWN,
    RETRIES,
    BUDGET_REFUSALS,
    TRIGGERS,
)

# error class name -> outcome; anything else that billed nothing is "refused" (the API said no).
_OUTCOMES = {
    "AIHubMixModerationError": "moderated",
    "AIHubMixRefusalError": "moderated",
    "AIHubMixTaskModeratedError": "moderated",
    "AIHubMixRateLimitError": "rate_limited",
    "AIHubMixUpstreamError": "upstream_error",
    "AIHubMixTaskFailedError": "upstream_error",
    "AIHubMixTaskTimeoutError": "upstream_error",
    "AIHubMixBudgetExceededError": "refused_before_sending",
    "AIHubMixValidationError": "refused_before_sending",
}


def failure_outcome(error_type: str | None, *, may_be_billed: bool) -> str:
    """The ``outcome`` tag of a request that ended without images."""
    if may_be_billed:
        return "possibly_billed"
    return _OUTCOMES.get(error_type or "", "refused")


def tag_value(value: object) -> str:
    """A tag value Airflow's validators accept: characters outside ``[A-Za-z0-9_./-]`` become ``_``."""
    return _UNSAFE.sub("_", str(value))[:100] or "_"


def to_micro(usd: float) -> int:
    return round(usd * MICRO)


_failed_once = False


def _emit(kind: str, metric: Metric, value: float, tags: dict[str, str]) -> None:
    global _failed_once
    try:
        stats = _airflow_stats()
        if stats is None:
            return
        if kind == "incr":
            if value > 0:
                stats.incr(metric.name, int(value), tags=tags)
        elif kind == "gauge":
            stats.gauge(metric.name, value, tags=tags)
        else:
            stats.timing(metric.name, value, tags=tags)
    except Exception as err:  # metrics never fail a task
        if not _failed_once:
            _failed_once = True
            log.warning(
                "AIHubMix metrics could not be emitted (%s: %s); further errors are not logged",
                type(err).__name__,
                err,
            )


def incr(metric: Metric, count: int = 1, **tags: str) -> None:
    """Add ``count`` to a counter of :data:`METRICS` (nothing is sent for 0)."""
    _emit("incr", metric, count, {k: tag_value(v) for k, v in tags.items()})


def gauge(metric: Metric, value: float, **tags: str) -> None:
    _emit("gauge", metric, value, {k: tag_value(v) for k, v in tags.items()})


def timing(metric: Metric, milliseconds: float, **tags: str) -> None:
    """A timer of :data:`METRICS`, in milliseconds as Airflow's StatsD and OTel timers take it."""
    _emit("timing", metric, milliseconds, {k: tag_value(v) for k, v in tags.items()})


def purchase_completed(
    *,
    model: str,
    family: str,
    dag_id: str,
    records: list[dict[str, Any]],
    estimated_usd: float | None,
    actual_usd: float | None,
) -> None:
    """What a completed purchase adds: images, bytes, the estimate, and the actual cost or unknown."""
    base = {"model": model, "family": family, "dag_id": dag_id}
    incr(IMAGES, len(records), **base)
    incr(BYTES, sum(int(r.get("bytes") or 0) for r in records), **base)
    if estimated_usd is not None:
        incr(ESTIMATED, to_micro(estimated_usd), **base)
    if actual_usd is None:
        incr(UNKNOWN, 1, **base)
    else:
        incr(ACTUAL, to_micro(actual_usd), **base)


def budget_refused(*, model: str, family: str, dag_id: str) -> None:
    """A request refused by a budget before sending: a refusal, and a request that ended unsent."""
    incr(BUDGET_REFUSALS, 1, model=model, family=family, dag_id=dag_id)
    incr(REQUESTS, 1, model=model, family=family, dag_id=dag_id, outcome="refused_before_sending")


_running: Counter[str] = Counter()
_running_lock = threading.Lock()


@contextmanager
def running_trigger(kind: str) -> Iterator[None]:
    """Count a trigger of ``kind`` running in this (triggerer) process while the block runs."""
    with _running_lock:
        _running[kind] += 1
        now = _running[kind]
    gauge(TRIGGERS, now, kind=kind)
    try:
        yield
    finally:
        with _running_lock:
            _running[kind] -= 1
            now = _running[kind]
        gauge(TRIGGERS, now, kind=kind)


def metrics_table() -> str:
    """:data:`METRICS` as the Markdown table ``docs/METRICS.md`` prints."""
    rows = ["| name | type | unit | tags | when |", "|---|---|---|---|---|"]
    rows += [f"| `{m.name}` | {m.type} | {m.unit} | {', '.join(m.tags)} | {m.when} |" for m in METRICS]
    return "\n".join(rows)


__all__ = [
    "METRICS",
    "Metric",
    "budget_refused",
    "failure_outcome",
    "gauge",
    "incr",
    "metrics_table",
    "purchase_completed",
    "running_trigger",
    "tag_value",
    "timing",
    "to_micro",
]
