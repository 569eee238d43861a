"""PostgreSQL and Redis for the distributed tests: private servers on free loopback ports.

Each server gets a data directory of its own under the system temp dir and runs in its own
process group, so stopping it never touches the servers other test sessions run. PostgreSQL
refuses to run as root: as root it runs as the ``postgres`` user (Debian creates it with the
package); as anyone else, as that user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.e2e.harness import HarnessError, free_port


def _require(program: str, hint: str) -> str:
    path = shutil.which(program)
    if path is None:
        raise HarnessError(f"{program} not found: {hint} (scripts/test.sh installs it as root)")
    return path


def postgres_bindir() -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin`` (Debian), else wherever ``initdb`` is."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    return Path(_require("initdb", "install the Debian package postgresql")).parent


class _Server:
    """A child process in its own process group, its output in a log file."""

    name = "server"

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix=f"aihubmix-{self.name}-"))
        self.log_path = self.dir / f"{self.name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def _spawn(self, argv: list[str], **kwargs: Any) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **kwargs,
            )

    def _wait_ready(self, probe: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise HarnessError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(Exception):
                if probe():
                    return
            if time.monotonic() > deadline:
                raise HarnessError(f"{self.name} not ready after {timeout:.0f}s:\n{self.log_tail()}")
            time.sleep(0.3)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, sig)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


class PostgresServer(_Server):
    """A throw-away PostgreSQL cluster: ``initdb``, then ``postgres`` on 127.0.0.1:``port``.

    Durability is off (``fsync``, ``synchronous_commit``, ``full_page_writes``): the data is
    worthless after the test, and a 2-core machine shared with other work needs the speed.
    """

    name = "postgres"
    database = "airflow"

    def __init__(self) -> None:
        super().__init__()
        self.bindir = postgres_bindir()
        self.data = self.dir / "data"
        self._as_user: dict[str, Any] = {}
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam("postgres")
            except KeyError as err:
                raise HarnessError(
                    "running as root needs the 'postgres' user (Debian package postgresql)"
                ) from err
            self._as_user = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
            os.chown(self.dir, account.pw_uid, account.pw_gid)
            self.log_path.touch()
            os.chown(self.log_path, account.pw_uid, account.pw_gid)

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the ``airflow`` database (trust authentication, loopback only)."""
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{self.database}"

    def start(self, timeout: float = 60) -> PostgresServer:
        initdb = [str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust"]
        result = subprocess.run(
            [*initdb, "-E", "UTF8", "--no-sync"],
            capture_output=True,
            timeout=120,
            check=False,
            **self._as_user,
        )
        if result.returncode != 0:
            raise HarnessError(f"initdb failed: {result.stderr.decode(errors='replace')}")
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.dir),
            "max_connections": "300",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        argv = [str(self.bindir / "postgres"), "-D", str(self.data)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        self._spawn(argv, **self._as_user)
        self._wait_ready(self._create_database, timeout)
        return self

    def connect(self, database: str | None = None) -> Any:
        import psycopg2

        return psycopg2.connect(
            host="127.0.0.1",
            port=self.port,
            user="postgres",
            dbname=database or self.database,
            connect_timeout=5,
        )

    def _create_database(self) -> bool:
        conn = self.connect("postgres")
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,))
                if cur.fetchone() is None:
                    cur.execute(f'CREATE DATABASE "{self.database}"')
        finally:
            conn.close()
        return True

    def stop(self, sig: signal.Signals = signal.SIGINT) -> None:
        # SIGINT is PostgreSQL's "fast" shutdown: sessions are disconnected, no wait for clients.
        super().stop(sig)


class RedisServer(_Server):
    """A Redis server without persistence on 127.0.0.1:``port``: the Celery broker."""

    name = "redis"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 30) -> RedisServer:
        program = _require("redis-server", "install the Debian package redis-server")
        argv = [program, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self._spawn([*argv, "--dir", str(self.dir), "--protected-mode", "no"], cwd=self.dir)
        self._wait_ready(self._ping, timeout)
        return self

    def _ping(self) -> bool:
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
