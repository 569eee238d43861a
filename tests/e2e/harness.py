"""A real Airflow deployment in subprocesses, for end-to-end tests.

The unit and integration tests run Airflow code in-process; only a real scheduler, dag-processor,
triggerer and api-server prove that a deferrable task survives the round trip through the
metadata DB, the triggerer and back to a worker. This module starts those processes against a
throw-away ``AIRFLOW_HOME`` (SQLite + LocalExecutor, the combination ``airflow standalone`` uses)
and talks to them through the public REST API, so tests observe what a user would.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import psutil

COMPONENTS: tuple[str, ...] = ("scheduler", "dag-processor", "triggerer", "api-server")
# The health endpoint names components after their job type, not their CLI command.
_HEALTH_KEYS: dict[str, str] = {
    "scheduler": "scheduler",
    "dag-processor": "dag_processor",
    "triggerer": "triggerer",
}
TERMINAL_RUN_STATES = frozenset({"success", "failed"})
# Secrets of the throw-away deployment: fixed so every process (and the test) agrees on them.
# PyJWT warns about HMAC keys under 64 bytes, once per token: keep it long to keep the logs quiet.
_JWT_SECRET = "aihubmix-e2e-jwt-secret-not-for-production-" + "0123456789abcdef" * 4
_API_SECRET_KEY = "aihubmix-e2e-api-secret-key"
_FERNET_KEY = "p3gdK3yC2yBdbVtsIJ2Lw6dYdPX0ldVChnQX3GxO7Dw="

_PASSED_THROUGH = ("AIRFLOW_CONN_", "AIRFLOW_VAR_")
_TRIGGER_LOG = re.compile(r"\.log\.trigger\.(\d+)\.log$")

T = TypeVar("T")

# One migrated, empty metadata DB per test process, copied into every later cluster's home.
_MIGRATED_DB: dict[str, Path] = {}


class HarnessError(RuntimeError):
    """The deployment did not do what the test waited for; the message points at the logs."""


def free_port() -> int:
    """Return a loopback port that was free a moment ago (the OS picks it, so parallel runs differ)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def airflow_command() -> list[str]:
    """Return the argv prefix for the ``airflow`` CLI of the interpreter running the tests."""
    script = Path(sys.executable).with_name("airflow")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "airflow"]


def _inherited_env() -> dict[str, str]:
    """Return this process's environment minus what would make a real deployment act like a test.

    ``tests/conftest.py`` sets ``AIRFLOW_HOME`` and ``AIRFLOW__CORE__UNIT_TEST_MODE`` for the
    in-process tests; pytest sets ``PYTEST_*``, which makes Airflow's logging raise instead of
    degrade. None of that may leak into the subprocesses. Connections and variables
    (``AIRFLOW_CONN_*``, ``AIRFLOW_VAR_*``) are data, not configuration: they pass, so fixtures
    such as ``sandbox_conn`` and ``s3_bucket`` that set them also configure the deployment.
    """
    return {
        key: value
        for key, value in os.environ.items()
        if key.startswith(_PASSED_THROUGH) or not key.startswith(("AIRFLOW", "_AIRFLOW", "PYTEST"))
    }


@dataclass
class Component:
    """One Airflow process (and its children, which share its process group)."""

    name: str
    argv: list[str]
    log_path: Path
    process: subprocess.Popen[bytes]
    started_at: float


@dataclass
class RunObserver:
    """Polls one DAG run and records every distinct state each task instance was seen in.

    A deferral lasts seconds, so the only way to prove a task deferred without reading
    Airflow internals is to look often and keep the sequence of states seen.
    """

    cluster: AirflowCluster
    dag_id: str
    run_id: str
    interval: float = 0.3
    run_states: list[str] = field(default_factory=list)
    task_states: dict[str, list[str | None]] = field(default_factory=dict)
    task_instances: dict[str, dict[str, Any]] = field(default_factory=dict)

    @staticmethod
    def _key(ti: Mapping[str, Any]) -> str:
        index = ti.get("map_index", -1)
        return ti["task_id"] if index in (-1, None) else f"{ti['task_id']}[{index}]"

    @staticmethod
    def _append(seq: list[T], value: T) -> None:
        if not seq or seq[-1] != value:
            seq.append(value)

    @property
    def run_state(self) -> str | None:
        return self.run_states[-1] if self.run_states else None

    def poll(self) -> None:
        """Take one snapshot of the run and its task instances."""
        run = self.cluster.get_dag_run(self.dag_id, self.run_id)
        for ti in self.cluster.get_task_instances(self.dag_id, self.run_id):
            key = self._key(ti)
            self.task_instances[key] = ti
            self._append(self.task_states.setdefault(key, []), ti.get("state"))
        self._append(self.run_states, run["state"])

    def saw(self, task_key: str, state: str) -> bool:
        return state in self.task_states.get(task_key, [])

    def state_of(self, task_key: str) -> str | None:
        states = self.task_states.get(task_key)
        return states[-1] if states else None

    def wait_until(self, predicate: Callable[[RunObserver], bool], timeout: float, what: str) -> None:
        """Poll until ``predicate(self)`` holds; raise with the history seen so far if it never does."""
        deadline = time.monotonic() + timeout
        while True:
            self.poll()
            if predicate(self):
                return
            if time.monotonic() > deadline:
                raise HarnessError(
                    f"timed out after {timeout:.0f}s waiting for {what}; run states {self.run_states}, "
                    f"task states {self.task_states}; logs under {self.cluster.home / 'logs'}"
                )
            time.sleep(self.interval)

    def wait_for_task_state(self, task_key: str, state: str, timeout: float = 60) -> None:
        self.wait_until(lambda o: o.state_of(task_key) == state, timeout, f"{task_key} in state {state}")

    def wait_for_finish(self, timeout: float = 120) -> str:
        """Wait until the run is success or failed and return that state."""
        self.wait_until(lambda o: o.run_state in TERMINAL_RUN_STATES, timeout, "the run to finish")
        # One more look so the final TI states are recorded even if the run flipped first.
        self.poll()
        return str(self.run_state)


class AirflowCluster:
    """A scheduler, dag-processor, triggerer and api-server sharing one throw-away AIRFLOW_HOME.

    Use as a context manager, or call :meth:`start` and :meth:`stop`. ``extra_env`` reaches every
    process (so tests inject ``AIRFLOW_CONN_*``, ``AIRFLOW_VAR_*``, sandbox URLs, or override
    any ``AIRFLOW__SECTION__KEY`` set here). Subclasses add components by extending
    ``known_components``, :meth:`argv`, :meth:`component_env` and :meth:`component_cwd`.
    """

    known_components: tuple[str, ...] = COMPONENTS

    def __init__(
        self,
        dags_folder: str | os.PathLike[str],
        *,
        extra_env: Mapping[str, str] | None = None,
        home: str | os.PathLike[str] | None = None,
        components: Iterable[str] = COMPONENTS,
        keep_home: bool = False,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self.dags_folder = Path(dags_folder).resolve()
        self.extra_env = dict(extra_env or {})
        self._own_home = home is None
        self.home = Path(home) if home is not None else Path(tempfile.mkdtemp(prefix="aihubmix-e2e-"))
        self.keep_home = keep_home
        # (username, password) for the REST API when the auth manager is not in all-admins mode.
        self.credentials = credentials
        self.component_names = tuple(components)
        unknown = set(self.component_names) - set(self.known_components)
        if unknown:
            raise ValueError(f"unknown components {sorted(unknown)}; choose from {self.known_components}")
        if "api-server" not in self.component_names:
            raise ValueError("the api-server is required: health checks and every helper go through it")
        self.api_port = free_port()
        self.base_url = f"http://127.0.0.1:{self.api_port}"
        self.components: dict[str, Component] = {}
        # Components sent a graceful stop by terminate(): no longer checked, still reaped by stop().
        self.stopping: list[Component] = []
        self.log_dir = self.home / "harness-logs"
        self.timings: dict[str, float] = {}
        self._incarnations: dict[str, int] = {}
        self._client: httpx.Client | None = None
        self._token: str | None = None

    # ------------------------------------------------------------------ configuration

    @property
    def db_path(self) -> Path:
        return self.home / "airflow.db"

    def env(self) -> dict[str, str]:
        """Return the environment every Airflow process of this deployment runs with."""
        env = _inherited_env()
        no_proxy = ",".join(filter(None, ["127.0.0.1,localhost", os.environ.get("NO_PROXY")]))
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "PYTHONUNBUFFERED": "1",
                # Loopback only: never let a proxy from the environment see execution-API calls.
                "NO_PROXY": no_proxy,
                "no_proxy": no_proxy,
                "NO_COLOR": "1",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.db_path}",
                # SQLite allows one writer, so only a single-machine executor works; LocalExecutor
                # is what `airflow standalone` uses with SQLite in Airflow 3.
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "4",
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__FERNET_KEY": _FERNET_KEY,
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
                "AIRFLOW__CORE__AUTH_MANAGER": (
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__API_AUTH__JWT_SECRET": _JWT_SECRET,
                # The default 5 s is shorter than a cold api-server's first execution-API answer on
                # a busy 2-core machine; a timeout there costs a retry and a confusing warning.
                "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30",
                "AIRFLOW__API__SECRET_KEY": _API_SECRET_KEY,
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.api_port),
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API__BASE_URL": self.base_url,
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
                "AIRFLOW__LOGGING__COLORED_CONSOLE_LOG": "False",
                # Parse the dags folder at once and often: tests write DAGs just before starting.
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10",
                "AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL": "2",
                "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
                "AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL": "300",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
                "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "2",
                "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
                "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
                # A restarted triggerer adopts a dead triggerer's triggers only once the dead one's
                # heartbeat is older than this threshold (default 30 s): keep both short.
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
                "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
                "AIRFLOW__OPENLINEAGE__DISABLED": "True",
            }
        )
        env.update(self.extra_env)
        return env

    def component_env(self, name: str) -> dict[str, str]:
        """Return the environment of one component (all share :meth:`env` here)."""
        return self.env()

    def component_cwd(self, name: str) -> Path:
        """Return the working directory of one component (all share the home here)."""
        return self.home

    def argv(self, name: str) -> list[str]:
        """Return the command line of a component."""
        airflow = airflow_command()
        if name == "api-server":
            return [*airflow, "api-server", "--host", "127.0.0.1", "--port", str(self.api_port)]
        if name in ("scheduler", "triggerer"):
            # serve-logs would bind the fixed ports 8793/8794; the api-server reads local files.
            return [*airflow, name, "--skip-serve-logs"]
        if name == "dag-processor":
            return [*airflow, name]
        raise ValueError(f"unknown component {name!r}")

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> AirflowCluster:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def migrate(self) -> None:
        """Create the metadata DB: ``airflow db migrate`` once per test process, a file copy after.

        Every CLI start costs seconds of imports (5-15 s for migrate on a busy 2-core machine),
        and an empty migrated SQLite file holds nothing specific to one home.
        """
        self.home.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        template = _MIGRATED_DB.get("path")
        if template is not None and template.exists():
            shutil.copyfile(template, self.db_path)
            return
        self.run_db_migrate(timeout=180)
        cache_dir = Path(tempfile.mkdtemp(prefix="aihubmix-e2e-db-"))
        atexit.register(shutil.rmtree, cache_dir, True)
        shutil.copyfile(self.db_path, cache_dir / "airflow.db")
        _MIGRATED_DB["path"] = cache_dir / "airflow.db"

    def run_db_migrate(self, timeout: float) -> None:
        """``airflow db migrate`` against this home's metadata DB, its output in ``db-migrate.log``."""
        log_path = self.log_dir / "db-migrate.log"
        with log_path.open("wb") as log:
            result = subprocess.run(
                [*airflow_command(), "db", "migrate"],
                env=self.env(),
                cwd=self.home,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
        if result.returncode != 0:
            raise HarnessError(f"airflow db migrate failed ({result.returncode}):\n{_tail(log_path)}")

    def start(self, timeout: float = 120) -> None:
        """Migrate the DB, start every component and wait until the health endpoint says healthy."""
        atexit.register(self.stop)
        began = time.monotonic()
        try:
            self.migrate()
            self.timings["migrate"] = time.monotonic() - began
            for name in self.component_names:
                self.start_component(name)
            # Warm up while the other components are still booting, not after.
            self.wait_until_healthy(["api-server"], timeout=timeout)
            self.timings["api_server_up"] = time.monotonic() - began
            self.warm_up()
            self.wait_until_healthy(self.component_names, timeout=timeout)
        except BaseException:
            self.stop()
            raise
        self.timings["start"] = time.monotonic() - began

    def warm_up(self) -> None:
        """Answer one execution-API request so the first task does not pay its cold start.

        The execution API builds its versioned routes on the first request (about 4 s here);
        before that a worker's first call can time out and be retried.
        """
        began = time.monotonic()
        self.client.get("/execution/health", timeout=120).raise_for_status()
        self.timings["execution_api_warm_up"] = time.monotonic() - began

    def start_component(self, name: str) -> Component:
        """Start one component in its own process group, its output to a fresh log file."""
        if name in self.components and self.components[name].process.poll() is None:
            raise HarnessError(f"{name} is already running")
        incarnation = self._incarnations.get(name, 0) + 1
        self._incarnations[name] = incarnation
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.{incarnation}.log"
        argv = self.argv(name)
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                argv,
                env=self.component_env(name),
                cwd=self.component_cwd(name),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Own session = own process group, so stop/kill reach the worker children too.
                start_new_session=True,
            )
        component = Component(name, argv, log_path, process, time.time())
        self.components[name] = component
        return component

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        """Send ``sig`` to a component's process group (and strays that left it), then reap it."""
        component = self.components[name]
        _signal_tree(component.process, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            component.process.wait(timeout=15)

    def terminate(self, name: str) -> Component:
        """SIGTERM to a component's main process only -- a graceful stop, as Kubernetes, systemd and
        ``docker stop`` send it -- and set it aside, so a successor can start at once.

        The caller waits for the returned component's process; :meth:`stop` still reaps it.
        """
        component = self.components.pop(name)
        self.stopping.append(component)
        component.process.send_signal(signal.SIGTERM)
        return component

    def restart(
        self, name: str, *, kill_signal: signal.Signals = signal.SIGKILL, timeout: float = 90
    ) -> None:
        """Kill a component the hard way (a crash, not a shutdown) and start it again."""
        began = time.monotonic()
        self.kill(name, kill_signal)
        component = self.start_component(name)
        self.wait_until_healthy([name], timeout=timeout, since=component.started_at)
        if name == "api-server":
            self.warm_up()
        self.timings[f"restart_{name}"] = time.monotonic() - began

    def stop(self, timeout: float = 5, grace: float = 2) -> None:
        """Stop every component; safe to call twice and after a failed start.

        SIGTERM goes to each component's main process only, which shuts its own children down.
        A second SIGTERM after ``grace`` seconds is Airflow's "stop waiting" (the triggerer would
        otherwise give its runner a 10 s escalation, the scheduler waits for running tasks);
        whatever is still alive after ``timeout``, children included, gets SIGKILL.
        """
        began = time.monotonic()
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)
        every = {**{f"{c.name} (stopping)#{i}": c for i, c in enumerate(self.stopping)}, **self.components}
        trees = {name: _process_tree(c.process) for name, c in every.items()}
        roots = [procs[0] for procs in trees.values() if procs]
        _send(roots, signal.SIGTERM)
        _gone, alive_roots = psutil.wait_procs(roots, timeout=grace)
        _send(alive_roots, signal.SIGTERM)
        psutil.wait_procs(alive_roots, timeout=max(0.0, timeout - grace))
        for name, procs in trees.items():
            process = every[name].process
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            alive = [proc for proc in procs if proc.is_running()]
            _send(alive, signal.SIGKILL)
            psutil.wait_procs(alive, timeout=5)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        if self._client is not None:
            self._client.close()
            self._client = None
        if roots:
            self.timings["stop"] = time.monotonic() - began

    def cleanup(self) -> None:
        """Remove the home directory the harness created (kept when ``keep_home`` is set)."""
        if self._own_home and not self.keep_home:
            shutil.rmtree(self.home, ignore_errors=True)

    # ------------------------------------------------------------------ health

    def health(self) -> dict[str, Any]:
        response = self.client.get("/api/v2/monitor/health", timeout=10)
        response.raise_for_status()
        return dict(response.json())

    def wait_until_healthy(
        self, names: Iterable[str], timeout: float = 120, since: float | None = None
    ) -> None:
        """Wait until the api-server answers and each named job heartbeats (after ``since``, if given)."""
        names = list(names)
        deadline = time.monotonic() + timeout
        last: object = None
        while True:
            # Every component, not just the awaited ones: a crash anywhere should fail fast.
            self._check_alive(self.components)
            try:
                health = self.health()
            except (httpx.HTTPError, ValueError) as err:
                last = err
            else:
                last = health
                if all(_is_healthy(health, name, since) for name in names):
                    return
            if time.monotonic() > deadline:
                raise HarnessError(
                    f"{names} not healthy after {timeout:.0f}s; last answer {last!r}\n{self.log_tails(names)}"
                )
            time.sleep(0.5)

    def _check_alive(self, names: Iterable[str]) -> None:
        for name in names:
            code = self.components[name].process.poll()
            if code is not None:
                raise HarnessError(f"{name} exited with {code}\n{self.log_tails([name])}")

    # ------------------------------------------------------------------ REST API

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            # trust_env=False: a proxy from the environment must never see loopback traffic.
            self._client = httpx.Client(base_url=self.base_url, timeout=30, trust_env=False)
        return self._client

    def token(self) -> str:
        """Return a JWT for the REST API (all-admins mode hands one out without credentials)."""
        if self._token is None:
            if self.credentials is not None:
                self._token = self.login(*self.credentials)
            else:
                response = self.client.get("/auth/token")
                response.raise_for_status()
                self._token = str(response.json()["access_token"])
        return self._token

    def login(self, username: str, password: str) -> str:
        """Return a JWT for one user of the auth manager (``POST /auth/token``)."""
        response = self.client.post("/auth/token", json={"username": username, "password": password})
        if response.status_code >= 400:
            raise HarnessError(f"login of {username!r} failed: {response.status_code} {response.text}")
        return str(response.json()["access_token"])

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call ``/api/v2`` + ``path`` with a token; return the decoded JSON, raise on HTTP errors."""
        headers = {"Authorization": f"Bearer {self.token()}", **kwargs.pop("headers", {})}
        response = self.client.request(method, f"/api/v2{path}", headers=headers, **kwargs)
        if response.is_error:
            raise HarnessError(f"{method} {path} -> {response.status_code}: {response.text[:2000]}")
        return response.json() if response.content else None

    def wait_for_dag(self, dag_id: str, timeout: float = 60) -> dict[str, Any]:
        """Wait until the dag-processor has serialized ``dag_id``; fail fast on an import error."""
        deadline = time.monotonic() + timeout
        while True:
            response = self.client.get(
                f"/api/v2/dags/{quote(dag_id, safe='')}",
                headers={"Authorization": f"Bearer {self.token()}"},
            )
            if response.status_code == 200:
                return dict(response.json())
            errors = self.api("GET", "/importErrors")["import_errors"]
            if errors:
                raise HarnessError(f"import errors in the dags folder: {errors}")
            if time.monotonic() > deadline:
                raise HarnessError(
                    f"DAG {dag_id} not parsed after {timeout:.0f}s\n{self.log_tails(['dag-processor'])}"
                )
            time.sleep(0.5)

    def unpause(self, dag_id: str) -> None:
        self.api("PATCH", f"/dags/{quote(dag_id, safe='')}", json={"is_paused": False})

    def trigger_dag(
        self,
        dag_id: str,
        conf: Mapping[str, Any] | None = None,
        *,
        run_id: str | None = None,
        timeout: float = 60,
    ) -> str:
        """Wait for the DAG to be parsed, unpause it, create a manual run and return its run id."""
        self.wait_for_dag(dag_id, timeout=timeout)
        self.unpause(dag_id)
        body: dict[str, Any] = {"logical_date": None, "conf": dict(conf or {})}
        if run_id is not None:
            body["dag_run_id"] = run_id
        run = self.api("POST", f"/dags/{quote(dag_id, safe='')}/dagRuns", json=body)
        return str(run["dag_run_id"])

    def get_dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return dict(self.api("GET", f"/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}"))

    def get_task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        path = f"/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}/taskInstances"
        return list(self.api("GET", path, params={"limit": 1000})["task_instances"])

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        """Return ``{task_id or task_id[map_index]: state}`` for one run."""
        return {RunObserver._key(ti): ti.get("state") for ti in self.get_task_instances(dag_id, run_id)}

    def get_xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        path = (
            f"/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}"
            f"/taskInstances/{quote(task_id, safe='')}/xcomEntries/{quote(key, safe='')}"
        )
        return self.api("GET", path, params={"deserialize": True})["value"]

    def observe(self, dag_id: str, run_id: str, interval: float = 0.3) -> RunObserver:
        return RunObserver(self, dag_id, run_id, interval=interval)

    def run_dag(
        self, dag_id: str, conf: Mapping[str, Any] | None = None, timeout: float = 120
    ) -> RunObserver:
        """Trigger a run and watch it to the end; the observer holds the states seen on the way."""
        observer = self.observe(dag_id, self.trigger_dag(dag_id, conf))
        observer.wait_for_finish(timeout)
        return observer

    # ------------------------------------------------------------------ evidence after the fact

    def query_db(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        """Run a read-only query on the metadata DB (brief reads; SQLite has one writer at a time)."""
        uri = f"file:{self.db_path}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=30)) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(row) for row in conn.execute(sql, tuple(params)).fetchall()]

    def task_log_files(self, dag_id: str, run_id: str, task_id: str) -> list[Path]:
        """Return the task's log files: one per try, plus one per triggerer that ran its trigger."""
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        return sorted(p for p in folder.rglob("*") if p.is_file())

    def task_log(self, dag_id: str, run_id: str, task_id: str) -> str:
        """Return every log file of a task joined, each headed by its name."""
        return "\n".join(
            f"==> {path.name} <==\n{path.read_text(errors='replace')}"
            for path in self.task_log_files(dag_id, run_id, task_id)
        )

    def trigger_log_files(self, dag_id: str, run_id: str, task_id: str) -> dict[int, Path]:
        """Return ``{triggerer job id: log file}`` for every triggerer that ran this task's trigger.

        Airflow 3 writes a trigger's log beside the task's, as ``attempt=N.log.trigger.<job id>.log``,
        so the file names alone say which triggerer processes ran it.
        """
        found: dict[int, Path] = {}
        for path in self.task_log_files(dag_id, run_id, task_id):
            match = _TRIGGER_LOG.search(path.name)
            if match:
                found[int(match.group(1))] = path
        return found

    def event_log(self, dag_id: str, run_id: str | None = None, task_id: str | None = None) -> list[str]:
        """Return the audit-log events (the ``log`` table) in order, e.g. running, deferred, running.

        The execution API writes one row per task state change, so this is durable proof of a
        deferral even after the trigger row is deleted.
        """
        params: dict[str, Any] = {"dag_id": dag_id, "order_by": "id", "limit": 1000}
        if run_id is not None:
            params["run_id"] = run_id
        if task_id is not None:
            params["task_id"] = task_id
        return [entry["event"] for entry in self.api("GET", "/eventLogs", params=params)["event_logs"]]

    def jobs(self, job_type: str | None = None) -> list[dict[str, Any]]:
        """Return the ``job`` rows (one per scheduler/triggerer/dag-processor process), oldest first."""
        params: dict[str, Any] = {"order_by": "id", "limit": 1000}
        if job_type is not None:
            params["job_type"] = job_type
        return list(self.api("GET", "/jobs", params=params)["jobs"])

    def component_log(self, name: str, incarnation: int | None = None) -> str:
        """Return a component's output; ``incarnation`` 1 is the first start, default the latest."""
        number = incarnation if incarnation is not None else self._incarnations.get(name, 1)
        path = self.log_dir / f"{name}.{number}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def processes(self, name: str | None = None) -> list[psutil.Process]:
        """Return the live processes of one component (or all): the root and every descendant."""
        names = [name] if name is not None else list(self.components)
        return [
            proc for n in names if n in self.components for proc in _process_tree(self.components[n].process)
        ]

    def log_tails(self, names: Iterable[str], lines: int = 40) -> str:
        parts = []
        for name in names:
            component = self.components.get(name)
            if component is not None:
                parts.append(f"--- {component.log_path} ---\n{_tail(component.log_path, lines)}")
        return "\n".join(parts)


def wait_for(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.5) -> T:
    """Call ``predicate`` until it returns something truthy and return that; raise on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise HarnessError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def _is_healthy(health: Mapping[str, Any], name: str, since: float | None) -> bool:
    if name == "api-server":
        return True  # it answered
    entry = health.get(_HEALTH_KEYS[name]) or {}
    if entry.get("status") != "healthy":
        return False
    if since is None:
        return True
    heartbeat = entry.get(f"latest_{_HEALTH_KEYS[name]}_heartbeat")
    if not heartbeat:
        return False
    beat = datetime.fromisoformat(heartbeat)
    if beat.tzinfo is None:  # the metadata DB stores UTC
        beat = beat.replace(tzinfo=timezone.utc)
    return beat.timestamp() > since


def _process_tree(process: subprocess.Popen[bytes]) -> list[psutil.Process]:
    try:
        root = psutil.Process(process.pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _send(procs: Iterable[psutil.Process], sig: signal.Signals) -> None:
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            proc.send_signal(sig)


def _signal_tree(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    # Collect descendants first: once the root dies they are re-parented and hard to find.
    procs = _process_tree(process)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)
    _send(procs, sig)
    if sig == signal.SIGKILL:
        psutil.wait_procs(procs, timeout=10)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
