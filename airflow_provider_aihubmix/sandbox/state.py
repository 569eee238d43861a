"""Everything the two sandbox apps share: settings, request log, faults, tasks, images, billing.

All of it is touched from one event loop (both uvicorn servers run on it), so no locks.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import os
import re
import time
from collections import deque
from typing import Any

import anyio.to_thread

from airflow_provider_aihubmix.sandbox.config import SandboxConfig
from airflow_provider_aihubmix.sandbox.faults import FaultBook
from airflow_provider_aihubmix.sandbox.images import EXTENSIONS, ImageCache, render
from airflow_provider_aihubmix.sandbox.tasks import Task

_MAX_TASKS = 100_000


class SandboxState:
    def __init__(self, config: SandboxConfig, *, log_max: int = 10_000) -> None:
        self.initial = config.copy()
        self.config = config.copy()
        self.log: deque[dict[str, Any]] = deque(maxlen=log_max)
        self.faults = FaultBook(config.fault_seed)
        self.tasks: dict[str, Task] = {}
        self.images = ImageCache()
        self.usage_usd = 0.0
        self.storage_url = "http://127.0.0.1:0"
        self._seq = itertools.count(1)
        self._boot = os.urandom(3).hex()
        # Signs image URLs like a vendor's pre-signed link: a client that drops the query fails.
        self._secret = os.urandom(16)

    # --- request log -------------------------------------------------------------------
    def new_record(
        self, host: str, method: str, path: str, query: str, headers: dict[str, str]
    ) -> dict[str, Any]:
        seq = next(self._seq)
        record: dict[str, Any] = {
            "seq": seq,
            "request_id": f"sbx-{self._boot}-{seq:08x}",
            "time": time.time(),
            "host": host,
            "method": method,
            "path": path,
            "query": query,
            "headers": headers,
            "json": None,
            "form": None,
            "status": None,
            "billed": False,
            "fault": None,
        }
        self.log.append(record)
        return record

    def requests(self, host: str | None = None, path: str | None = None) -> list[dict[str, Any]]:
        pattern = re.compile(path) if path else None
        return [
            r
            for r in self.log
            if (host is None or r["host"] == host) and (pattern is None or pattern.search(r["path"]))
        ]

    # --- billing -----------------------------------------------------------------------
    def check_quota(self) -> bool:
        return self.usage_usd < self.config.balance_usd

    def bill(self, record: dict[str, Any] | None, usd: float) -> None:
        self.usage_usd += usd
        if record is not None:
            record["billed"] = True

    # --- images ------------------------------------------------------------------------
    def image_path(self, width: int, height: int, fmt: str, seed: int, index: int) -> str:
        return f"/images/{width}x{height}-{seed:x}-{index}.{EXTENSIONS[fmt]}"

    def image_url(self, width: int, height: int, fmt: str, seed: int, index: int, ttl_s: float) -> str:
        path = self.image_path(width, height, fmt, seed, index)
        expires = int(time.time() + ttl_s)
        return f"{self.storage_url}{path}?Expires={expires}&Signature={self.sign(path, expires)}"

    def sign(self, path: str, expires: int) -> str:
        return hmac.new(self._secret, f"{path}|{expires}".encode(), hashlib.sha256).hexdigest()[:32]

    async def image_bytes(self, width: int, height: int, fmt: str, seed: int, index: int) -> bytes:
        key = (width, height, fmt, seed, index)
        data = self.images.get(key)
        if data is None:
            data = await anyio.to_thread.run_sync(render, width, height, fmt, seed, index)
            self.images.put(key, data)
        return data

    # --- tasks -------------------------------------------------------------------------
    def add_task(self, task: Task) -> None:
        if len(self.tasks) >= _MAX_TASKS:
            self.tasks.pop(next(iter(self.tasks)))
        self.tasks[task.id] = task

    # --- control -----------------------------------------------------------------------
    def reset(self) -> None:
        self.config = self.initial.copy()
        self.log.clear()
        self.faults.clear(seed=self.config.fault_seed)
        self.tasks.clear()
        self.usage_usd = 0.0
