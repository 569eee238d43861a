"""A production-shaped Airflow deployment for the distributed tests.

CeleryExecutor on PostgreSQL with a Redis broker: api-server, scheduler and dag-processor on a
"control-plane host" (the cluster's home), two Celery workers and two triggerers that each
behave as a host of their own -- own ``AIRFLOW_HOME``, ``HOME``, ``TMPDIR`` and log folder,
own node name in the metadata DB. The only directory they share is the DAG folder, as code
is shared in a real deployment; images must therefore travel through S3.

Everything else (REST helpers, process groups, kill and restart) comes from
:class:`tests.e2e.harness.AirflowCluster`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psycopg2.extras

from tests.distributed.services import PostgresServer, RedisServer
from tests.e2e.harness import AirflowCluster, HarnessError, airflow_command

WORKERS: tuple[str, ...] = ("worker-1", "worker-2")
TRIGGERERS: tuple[str, ...] = ("triggerer-1", "triggerer-2")
CONTROL_PLANE: tuple[str, ...] = ("api-server", "scheduler", "dag-processor")
NODES: tuple[str, ...] = (*CONTROL_PLANE, *WORKERS, *TRIGGERERS)
WORKER_CONCURRENCY = 4
_PYTHONPATH = Path(__file__).resolve().parent / "pythonpath"


class CeleryCluster(AirflowCluster):
    """Two Celery workers and two triggerers on PostgreSQL + Redis; see the module docstring."""

    known_components = NODES

    def __init__(
        self,
        dags_folder: str | Path,
        *,
        postgres: PostgresServer,
        redis: RedisServer,
        extra_env: Mapping[str, str] | None = None,
        home: str | Path | None = None,
        worker_concurrency: int = WORKER_CONCURRENCY,
    ) -> None:
        super().__init__(dags_folder, extra_env=extra_env, home=home, components=NODES)
        self.postgres = postgres
        self.redis = redis
        self.worker_concurrency = worker_concurrency

    # ------------------------------------------------------------------ configuration

    def node_home(self, name: str) -> Path:
        """The private directory of a worker or triggerer (the control plane shares the home)."""
        return self.home if name in CONTROL_PLANE else self.home / "nodes" / name

    def env(self) -> dict[str, str]:
        env = super().env()
        env.update(
            {
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.postgres.url,
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__CORE__PARALLELISM": "32",
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "aihubmix_test_node.node_name",
                "PYTHONPATH": ":".join(filter(None, [str(_PYTHONPATH), env.get("PYTHONPATH")])),
                "AIRFLOW__CELERY__BROKER_URL": self.redis.url,
                "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + self.postgres.url,
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.worker_concurrency),
                "AIRFLOW__CELERY__SYNC_PARALLELISM": "1",
                # Sending to the broker on a loaded 2-core machine can take longer than the 1 s default.
                "AIRFLOW__CELERY__OPERATION_TIMEOUT": "30",
                # A SIGKILLed worker stops heartbeating its tasks; the scheduler fails them after this
                # and Airflow retries them elsewhere (default 300 s).
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
                "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "15",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE": "3",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_MAX_OVERFLOW": "5",
            }
        )
        env.update(self.extra_env)
        return env

    def component_env(self, name: str) -> dict[str, str]:
        env = self.env()
        env["AIHUBMIX_NODE_NAME"] = name
        if name not in CONTROL_PLANE:
            home = self.node_home(name)
            for sub in ("home", "tmp", "logs"):
                (home / sub).mkdir(parents=True, exist_ok=True)
            env.update(
                {
                    "AIRFLOW_HOME": str(home),
                    "HOME": str(home / "home"),
                    "TMPDIR": str(home / "tmp"),
                    "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
                }
            )
        return env

    def component_cwd(self, name: str) -> Path:
        return self.node_home(name)

    def argv(self, name: str) -> list[str]:
        airflow = airflow_command()
        if name in WORKERS:
            return [
                *airflow,
                "celery",
                "worker",
                "--celery-hostname",
                f"{name}@%h",
                "--concurrency",
                str(self.worker_concurrency),
                "--skip-serve-logs",
                "--without-mingle",
                "--without-gossip",
            ]
        if name in TRIGGERERS:
            return [*airflow, "triggerer", "--skip-serve-logs"]
        return super().argv(name)

    # ------------------------------------------------------------------ lifecycle

    def migrate(self) -> None:
        """``airflow db migrate`` against the PostgreSQL database (no SQLite template to copy)."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.run_db_migrate(timeout=600)

    def wait_until_healthy(
        self, names: Iterable[str], timeout: float = 180, since: float | None = None
    ) -> None:
        """Wait until the api-server answers, each scheduling job and triggerer heartbeats (after
        ``since``) and each Celery worker has said it is ready."""
        names = list(names)
        started = {name: self.components[name].started_at for name in names}
        deadline = time.monotonic() + timeout
        pending = names
        while True:
            self._check_alive(self.components)
            pending = [name for name in pending if not self._ready(name, since or started[name])]
            if not pending:
                return
            if time.monotonic() > deadline:
                raise HarnessError(f"{pending} not ready after {timeout:.0f}s\n{self.log_tails(pending)}")
            time.sleep(0.5)

    def _ready(self, name: str, since: float) -> bool:
        if name == "api-server":
            with contextlib.suppress(Exception):
                self.health()
                return True
            return False
        if name in WORKERS:
            # Celery's banner line once the consumer is connected to the broker.
            return f"{name}@" in self.component_log(name) and " ready." in self.component_log(name)
        job_type = {"scheduler": "SchedulerJob", "dag-processor": "DagProcessorJob"}.get(name, "TriggererJob")
        beat = self.latest_heartbeat(job_type, name)
        return beat is not None and beat.timestamp() > since

    # ------------------------------------------------------------------ evidence

    def query_db(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        """Run a query on the PostgreSQL metadata DB and return the rows as dicts."""
        conn = self.postgres.connect()
        try:
            with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
                cur.execute(sql, tuple(params))
                return [dict(row) for row in cur.fetchall()]
        finally:
            conn.close()

    def latest_heartbeat(self, job_type: str, hostname: str) -> datetime | None:
        rows = self.query_db(
            "SELECT max(latest_heartbeat) AS beat FROM job WHERE job_type = %s AND hostname = %s "
            "AND state = 'running'",
            (job_type, hostname),
        )
        beat = rows[0]["beat"] if rows else None
        if beat is not None and beat.tzinfo is None:
            beat = beat.replace(tzinfo=timezone.utc)
        return beat

    def triggerer_job_ids(self, name: str) -> list[int]:
        """The job ids a triggerer node has had (one per start), oldest first."""
        rows = self.query_db(
            "SELECT id FROM job WHERE job_type = 'TriggererJob' AND hostname = %s ORDER BY id", (name,)
        )
        return [int(row["id"]) for row in rows]

    def node_logs(self, name: str) -> Path:
        """The task/trigger log folder a worker or triggerer writes on its own disk."""
        return self.node_home(name) / "logs"
