"""Run task instances the way Airflow does, against the sandbox, and count what happened.

:class:`TaskRunner` is a small stand-in for the task runner: a fresh operator per try (a
fresh worker process), ``try_number`` counting up to ``retries + 1``, and a deferral resumed
after the trigger ran to its one event (the triggerer). The counts come from the sandbox's
own request log and from the objects actually present in storage, never from the client.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_provider_aihubmix.storage import task_prefix
from tests.sockets import splice
from tests.task_fakes import FakeTaskInstance, context_for, trigger_events

# Re-exported for the scenario modules.
make_context = context_for
run_trigger = trigger_events

PREDICT_PATH = r"^/v1/(models/.+/predictions|images/generations)$"
TASK_PATH = r"^/v1/tasks/"
DAG_ID = "reliability"
RUN_ID = "manual__2026-01-01T00:00:00+00:00"


@dataclass
class TaskRun:
    """How one task instance ended across its tries."""

    records: list[dict[str, Any]] | None = None
    error: BaseException | None = None
    errors: list[BaseException] = field(default_factory=list)
    tries: int = 0
    deferrals: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)
    xcom: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.records is not None


class TaskRunner:
    """One task instance: ``make_operator()`` builds the operator anew for every try, like a worker.

    ``before_try(try_number)`` runs before each try (a test's fault switch), ``on_defer(deferred)``
    between the deferral and the trigger's first poll; an exception that
    is not an ``Exception`` (e.g. :class:`WorkerKilled`) stops the run at once, as a SIGKILL would.
    """

    def __init__(
        self,
        make_operator: Callable[[], Any],
        *,
        task_id: str = "generate",
        map_index: int = -1,
        retries: int = 0,
        dag_id: str = DAG_ID,
        run_id: str = RUN_ID,
        before_try: Callable[[int], None] | None = None,
        on_defer: Callable[[Any], None] | None = None,
    ) -> None:
        self.make_operator = make_operator
        self.task_id = task_id
        self.map_index = map_index
        self.retries = retries
        self.dag_id = dag_id
        self.run_id = run_id
        self.before_try = before_try
        self.on_defer = on_defer

    def ti(self, try_number: int) -> FakeTaskInstance:
        return FakeTaskInstance(
            dag_id=self.dag_id,
            task_id=self.task_id,
            run_id=self.run_id,
            map_index=self.map_index,
            try_number=try_number,
        )

    def run(self, *, first_try: int = 1) -> TaskRun:
        from airflow_provider_aihubmix.version_compat import AirflowFailException, TaskDeferred

        result = TaskRun()
        for try_number in range(first_try, first_try + self.retries + 1):
            if self.before_try is not None:
                self.before_try(try_number)
            result.tries += 1
            ti = self.ti(try_number)
            try:
                try:
                    result.records = self.make_operator().execute(make_context(ti))
                except TaskDeferred as deferred:
                    result.deferrals += 1
                    if self.on_defer is not None:
                        self.on_defer(deferred)
                    events = asyncio.run(trigger_events(deferred.trigger))
                    result.events.extend(events)
                    assert len(events) == 1, f"the trigger yielded {len(events)} events"
                    resume = getattr(self.make_operator(), deferred.method_name)
                    result.records = resume(make_context(ti), event=events[0], **(deferred.kwargs or {}))
                result.error = None
                result.xcom.update(ti.pushed)
                return result
            except Exception as err:
                result.error = err
                result.errors.append(err)
                result.xcom.update(ti.pushed)
                if isinstance(err, AirflowFailException):
                    break  # Airflow fails the task without using its retries
        return result


class WorkerKilled(BaseException):
    """Stands for SIGKILL: not an ``Exception``, so nothing in the provider can catch it."""


def with_hook(operator: Any, **hook_kwargs: Any) -> Any:
    """Give ``operator`` its own hook (e.g. a fast backoff) instead of the cached default one."""
    from airflow_provider_aihubmix.hooks.aihubmix import AIHubMixHook

    operator.__dict__["hook"] = AIHubMixHook(aihubmix_conn_id=operator.aihubmix_conn_id, **hook_kwargs)
    return operator


def fast_backoff() -> dict[str, Any]:
    """Hook arguments for a scaled-down backoff: 0.05, 0.1, 0.2, 0.4 s (jitter fixed at 5 %)."""
    return {"jitter": lambda: 0.05}


# -- counting ----------------------------------------------------------------------------------


def api_requests(client: Any, path: str | None = None, method: str | None = None) -> list[dict[str, Any]]:
    return [r for r in client.requests(host="api", path=path) if method is None or r["method"] == method]


def posts(client: Any) -> list[dict[str, Any]]:
    return api_requests(client, PREDICT_PATH, "POST")


def billed_posts(client: Any) -> list[dict[str, Any]]:
    return [r for r in posts(client) if r["billed"]]


def billed_per_prompt(client: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in billed_posts(client):
        body = record.get("json") or {}
        prompt = (body.get("input") or body).get("prompt", "?")
        counts[prompt] = counts.get(prompt, 0) + 1
    return counts


def gaps(records: Iterable[dict[str, Any]]) -> list[float]:
    """Seconds between consecutive logged requests (the sandbox stamps each on arrival)."""
    times = [r["time"] for r in records]
    return [round(b - a, 3) for a, b in itertools.pairwise(times)]


def local_prefix(root: Path, task_id: str, map_index: int = -1, *, dag_id: str = DAG_ID) -> Path:
    return root / task_prefix(dag_id, RUN_ID, task_id, map_index)


def image_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("image-*") if p.is_file() and not p.name.endswith(".thumb.webp"))


def read_manifest(root: Path, task_id: str, map_index: int = -1) -> dict[str, Any] | None:
    path = local_prefix(root, task_id, map_index) / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else None


def s3_manifest(bucket: Any, prefix: str, task_id: str, map_index: int = -1) -> dict[str, Any] | None:
    key = f"{prefix}/{task_prefix(DAG_ID, RUN_ID, task_id, map_index)}/manifest.json"
    try:
        body = bucket.client.get_object(Bucket=bucket.name, Key=key)["Body"].read()
    except Exception:
        return None
    return json.loads(body)


def s3_image_keys(bucket: Any) -> list[str]:
    return [
        k
        for k in bucket.list_keys()
        if k.rsplit("/", 1)[-1].startswith("image-") and not k.endswith(".thumb.webp")
    ]


# -- a port that refuses connections until it starts listening --------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LateListener:
    """``127.0.0.1:port`` refuses connections (nothing listens) for ``delay_s``, then forwards
    every connection to ``upstream_port``: an API that is down, then back."""

    def __init__(self, upstream_port: int, delay_s: float) -> None:
        self.port = free_port()
        self.upstream_port = upstream_port
        self.started_at: float | None = None
        self._server: socket.socket | None = None
        self._closed = threading.Event()
        self._timer = threading.Timer(delay_s, self._start)
        self._timer.daemon = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LateListener:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed.set()
        self._timer.cancel()
        if self._server is not None:
            self._server.close()

    def _start(self) -> None:
        if self._closed.is_set():
            return
        self._server = socket.create_server(("127.0.0.1", self.port))
        self.started_at = time.time()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        assert self._server is not None
        while not self._closed.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            splice(conn, upstream)
