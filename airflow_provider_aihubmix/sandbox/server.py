"""``SandboxServer``: both uvicorn apps on one event loop in a background thread.

Sockets are bound in ``start()`` before the thread runs, so ``port=0`` works and the
URLs are known at once; ``start()`` returns when both servers accept connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import socket
import threading
from types import TracebackType
from typing import TYPE_CHECKING, Any

from airflow_provider_aihubmix.sandbox.client import SandboxClient
from airflow_provider_aihubmix.sandbox.config import MIB, SandboxConfig
from airflow_provider_aihubmix.sandbox.state import SandboxState

if TYPE_CHECKING:
    import uvicorn


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _url(host: str, port: int) -> str:
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"  # URLs handed to clients must be reachable, not a wildcard
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _new_loop() -> asyncio.AbstractEventLoop:
    if importlib.util.find_spec("uvloop") is not None:
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


class SandboxServer:
    """A local AIHubMix-compatible API (``base_url``) and image storage (``storage_url``).

    Use as a context manager, or ``start()`` / ``stop()``. Settings are the start-up
    values ``POST /_sandbox/reset`` returns to; ``client`` drives the control API.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        storage_port: int = 0,
        *,
        task_delay_s: float = 2.0,
        api_key: str | None = None,
        max_side: int = 1024,
        status_style: str = "bfl",
        generating_status: bool = True,
        task_outcome: str = "ready",
        url_ttl_s: float = 24 * 3600.0,
        task_url_ttl_s: float = 600.0,
        huge_bytes: int = 8 * MIB,
        balance_usd: float = 1000.0,
        fault_seed: int = 0,
        log_max: int = 10_000,
        startup_timeout_s: float = 15.0,
    ) -> None:
        config = SandboxConfig()
        config.update(
            {
                "task_delay_s": task_delay_s,
                "api_key": api_key,
                "max_side": max_side,
                "status_style": status_style,
                "generating_status": generating_status,
                "task_outcome": task_outcome,
                "url_ttl_s": url_ttl_s,
                "task_url_ttl_s": task_url_ttl_s,
                "huge_bytes": huge_bytes,
                "balance_usd": balance_usd,
                "fault_seed": fault_seed,
            }
        )
        self.host = host
        self.port = port
        self.storage_port = storage_port
        self.state = SandboxState(config, log_max=log_max)
        self.startup_timeout_s = startup_timeout_s
        self._sockets: list[socket.socket] = []
        self._servers: list[uvicorn.Server] = []
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._client: SandboxClient | None = None

    @property
    def base_url(self) -> str:
        return _url(self.host, self.port)

    @property
    def storage_url(self) -> str:
        return _url(self.host, self.storage_port)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def client(self) -> SandboxClient:
        if self._client is None:
            self._client = SandboxClient(self.base_url)
        return self._client

    def start(self) -> SandboxServer:
        if self._thread is not None:
            raise RuntimeError("this SandboxServer was already started")
        api_sock = _bind(self.host, self.port)
        try:
            storage_sock = _bind(self.host, self.storage_port)
        except OSError:
            api_sock.close()
            raise
        self._sockets = [api_sock, storage_sock]
        self.port = api_sock.getsockname()[1]
        self.storage_port = storage_sock.getsockname()[1]
        self.state.storage_url = self.storage_url
        self._thread = threading.Thread(target=self._run, name="aihubmix-sandbox", daemon=True)
        self._thread.start()
        if not self._ready.wait(self.startup_timeout_s):
            self.stop()
            raise RuntimeError(f"AIHubMix sandbox did not start within {self.startup_timeout_s} s")
        if self._error is not None:
            self.stop()
            raise RuntimeError(f"AIHubMix sandbox failed to start: {self._error!r}") from self._error
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        for server in self._servers:
            server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout_s)
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- the thread --------------------------------------------------------------------
    def _run(self) -> None:
        loop = _new_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:
            self._error = exc
        finally:
            self._ready.set()
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self) -> None:
        # Start-up cost: uvicorn and the FastAPI apps load only when a server starts, not when the
        # sandbox package is imported for its client or config.
        import uvicorn

        from airflow_provider_aihubmix.sandbox.app import create_api_app
        from airflow_provider_aihubmix.sandbox.storage_app import create_storage_app

        http = "httptools" if importlib.util.find_spec("httptools") is not None else "h11"
        common: dict[str, Any] = {
            "lifespan": "off",
            "access_log": False,  # the request log is in memory; stdout stays quiet
            "log_config": None,  # never reconfigure the host process's logging
            "log_level": "warning",
            "http": http,
            "ws": "none",
            "server_header": False,
            "timeout_keep_alive": 30,
            "timeout_graceful_shutdown": 2,
            "backlog": 4096,
        }
        self._servers = [
            uvicorn.Server(uvicorn.Config(create_api_app(self.state), **common)),
            uvicorn.Server(uvicorn.Config(create_storage_app(self.state), **common)),
        ]
        runs = [
            asyncio.ensure_future(server.serve(sockets=[sock]))
            for server, sock in zip(self._servers, self._sockets, strict=True)
        ]
        while not all(server.started for server in self._servers):
            if any(run.done() for run in runs):
                break
            await asyncio.sleep(0.005)
        if all(server.started for server in self._servers):
            self._ready.set()
        await asyncio.gather(*runs)
        if not all(server.started for server in self._servers):
            raise RuntimeError("a sandbox server stopped during start-up")
