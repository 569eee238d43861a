"""``SandboxClient``: the control API from Python (tests, benchmarks, a user's notebook)."""

from __future__ import annotations

import re
from types import TracebackType
from typing import Any

import httpx


class SandboxClient:
    """Talks to ``/_sandbox/`` on a running sandbox (in this process or another)."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=f"{self.base_url}/_sandbox", timeout=timeout)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json()

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health")

    def requests(self, host: str | None = None, path: str | None = None) -> list[dict[str, Any]]:
        """Logged requests, oldest first; ``host`` is ``api`` or ``storage``, ``path`` a regex."""
        params = {k: v for k, v in (("host", host), ("path", path)) if v is not None}
        return self._call("GET", "/requests", params=params)

    def clear_requests(self) -> None:
        self._call("DELETE", "/requests")

    def inject(self, **rule: Any) -> dict[str, Any]:
        """Add a fault rule (see :class:`~airflow_provider_aihubmix.sandbox.faults.FaultRule`)."""
        return self._call("POST", "/faults", json=rule)

    def faults(self) -> list[dict[str, Any]]:
        return self._call("GET", "/faults")

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def configure(self, **config: Any) -> dict[str, Any]:
        return self._call("POST", "/config", json=config)

    def config(self) -> dict[str, Any]:
        return self._call("GET", "/config")

    def reset(self) -> None:
        """Back to start-up settings; log, faults, tasks and billed usage cleared."""
        self._call("POST", "/reset")

    def tasks(self) -> list[dict[str, Any]]:
        return self._call("GET", "/tasks")

    def set_task(
        self, task_id: str, *, outcome: str | None = None, delay_s: float | None = None
    ) -> dict[str, Any]:
        body = {k: v for k, v in (("outcome", outcome), ("delay_s", delay_s)) if v is not None}
        return self._call("POST", f"/tasks/{task_id}", json=body)

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/stats")

    def billed_count(self, path_regex: str | None = None) -> int:
        """How many API requests were processed and billed (lost answers included)."""
        pattern = re.compile(path_regex) if path_regex else None
        return sum(
            1
            for record in self.requests(host="api")
            if record["billed"] and (pattern is None or pattern.search(record["path"]))
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SandboxClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
