"""Connection settings for the hook: timeouts, base URLs, the API key, resolved once.

Read from an ``aihubmix`` connection (:meth:`AIHubMixSettings.from_connection`) or given
explicitly; invalid extras raise :class:`AIHubMixValidationError` naming the extra.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import httpx

from airflow_provider_aihubmix.connection import DEFAULT_BASE_URL, DEFAULT_TASKS_BASE_URL
from airflow_provider_aihubmix.exceptions import AIHubMixAuthenticationError, AIHubMixValidationError
from airflow_provider_aihubmix.http.retries import (
    DEFAULT_BACKOFF_BASE,
    DEFAULT_BACKOFF_CAP,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_RETRY_AFTER,
    RetryPolicy,
)
from airflow_provider_aihubmix.http.ssrf import check_download_url, is_loopback_host

if TYPE_CHECKING:
    from airflow.sdk.definitions.connection import Connection

DEFAULT_CONNECT_TIMEOUT = 10.0
# gpt-image at high quality can take ~90 s and more; a shorter read timeout would turn a slow
# success into a PossiblyBilled error.
DEFAULT_READ_TIMEOUT = 300.0
DEFAULT_WRITE_TIMEOUT = 60.0
DEFAULT_POOL_TIMEOUT = 30.0


def _coerce_number(name: str, value: Any, default: float, *, integer: bool) -> float:
    """A connection extra as a number: seconds (> 0) or, with ``integer``, a count (>= 0)."""
    if value is None or value == "":
        return default
    try:
        number = int(value) if integer else float(value)
    except (TypeError, ValueError):
        what = "an integer" if integer else "a number of seconds"
        raise AIHubMixValidationError(f"Connection extra '{name}' must be {what}, got {value!r}") from None
    if not math.isfinite(number):
        # float("nan") parses: NaN would reach the HTTP client only after the manifest says
        # "submitting", and fail there with the request possibly sent.
        raise AIHubMixValidationError(
            f"Connection extra '{name}' must be a finite number of seconds, got {value!r}"
        )
    if number < 0 or (number == 0 and not integer):
        bound = ">= 0" if integer else "> 0"
        raise AIHubMixValidationError(f"Connection extra '{name}' must be {bound}, got {value!r}")
    return number


def _coerce_float(name: str, value: Any, default: float) -> float:
    return float(_coerce_number(name, value, default, integer=False))


def _coerce_int(name: str, value: Any, default: int) -> int:
    return int(_coerce_number(name, value, default, integer=True))


def _coerce_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on", "y")
    return bool(value)


def normalise_base_url(url: str) -> str:
    """``aihubmix.com/v1/`` -> ``https://aihubmix.com``: users paste OpenAI-style base URLs."""
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = f"https://{url}"
    if url.endswith("/v1"):
        url = url[: -len("/v1")]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AIHubMixValidationError(f"AIHubMix base URL must be an http(s) URL with a host, got {url!r}")
    return url


def default_tasks_base_url(base_url: str) -> str:
    """The doc polls tasks on ``api.aihubmix.com``; any other host (a sandbox, a proxy) serves both."""
    host = urlsplit(base_url).hostname or ""
    return DEFAULT_TASKS_BASE_URL if host in ("aihubmix.com", "www.aihubmix.com") else base_url


def origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return scheme, (parts.hostname or "").lower(), port


def header_problem(key: str) -> str | None:
    """What in ``key`` cannot go in an ``Authorization`` header (described, never quoted), or None."""
    for position, char in enumerate(key):
        if not " " <= char <= "~":
            kind = "a non-ASCII character" if ord(char) > 0x7F else "a control character (a line break?)"
            return f"{kind} at position {position}"
    return None


@dataclass(frozen=True)
class AIHubMixSettings:
    """Everything the hook needs, resolved once from a connection or given explicitly.

    ``api_key`` is excluded from ``repr`` so a settings object can be logged or shown in a
    traceback without leaking the key.
    """

    api_key: str = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    tasks_base_url: str | None = None
    output_uri: str | None = None
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    write_timeout: float = DEFAULT_WRITE_TIMEOUT
    pool_timeout: float = DEFAULT_POOL_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    backoff_base: float = DEFAULT_BACKOFF_BASE
    backoff_cap: float = DEFAULT_BACKOFF_CAP
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER
    allow_private_image_hosts: bool = False
    conn_id: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.api_key, str) or not self.api_key.strip():
            where = f"Connection {self.conn_id!r}" if self.conn_id else "AIHubMix settings"
            raise AIHubMixAuthenticationError(f"{where} has no API key: put it in the connection's password")
        object.__setattr__(self, "api_key", self.api_key.strip())
        problem = header_problem(self.api_key)
        if problem:
            # Refused here, not by the HTTP library: its error quotes the header, key and all,
            # escaped so that no exact-match masking finds it (and a non-ASCII key fails with a
            # bare UnicodeEncodeError). The message never shows the key.
            where = f"Connection {self.conn_id!r}" if self.conn_id else "AIHubMix settings"
            raise AIHubMixAuthenticationError(
                f"{where} has an API key that cannot be sent in an HTTP header: it holds {problem}; "
                "allowed: printable ASCII characters (re-paste the key into the connection's password)"
            )
        object.__setattr__(self, "base_url", normalise_base_url(self.base_url))
        tasks = self.tasks_base_url or default_tasks_base_url(self.base_url)
        object.__setattr__(self, "tasks_base_url", normalise_base_url(tasks))

    @property
    def tasks_url(self) -> str:
        return self.tasks_base_url or self.base_url

    @property
    def timeout(self) -> httpx.Timeout:
        return httpx.Timeout(
            connect=self.connect_timeout,
            read=self.read_timeout,
            write=self.write_timeout,
            pool=self.pool_timeout,
        )

    @property
    def api_on_loopback(self) -> bool:
        """The API itself is on this machine (the sandbox): its image URLs are too, so fetch them."""
        return is_loopback_host(urlsplit(self.base_url).hostname or "")

    def check_download(self, url: str, addresses: list[str] | None) -> None:
        """:func:`check_download_url` with this connection's opt-outs (private hosts, loopback API)."""
        check_download_url(
            url,
            addresses,
            allow_private=self.allow_private_image_hosts,
            allow_loopback=self.api_on_loopback,
        )

    @property
    def api_origins(self) -> frozenset[tuple[str, str, int]]:
        """The only origins the API key is ever sent to."""
        return frozenset({origin(self.base_url), origin(self.tasks_url)})

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_retries=self.max_retries,
            backoff_base=self.backoff_base,
            backoff_cap=self.backoff_cap,
            max_retry_after=self.max_retry_after,
        )

    def fingerprint(self) -> tuple[Any, ...]:
        """Identity of a pooled client: a rotated key or edited timeout must not reuse an old one."""
        return (
            hash(self.api_key),
            self.base_url,
            self.tasks_url,
            self.connect_timeout,
            self.read_timeout,
            self.write_timeout,
            self.pool_timeout,
            self.allow_private_image_hosts,
        )

    def with_overrides(self, **overrides: Any) -> AIHubMixSettings:
        changes = {k: v for k, v in overrides.items() if v is not None}
        return replace(self, **changes) if changes else self

    @classmethod
    def from_connection(
        cls, conn: Connection, *, extra_dejson: Mapping[str, Any] | None = None, **overrides: Any
    ) -> AIHubMixSettings:
        """Read host (base URL), password (API key) and the extras of an ``aihubmix`` connection.

        Extras may arrive as strings (UI form) or with the legacy ``extra__aihubmix__`` prefix.
        ``extra_dejson``: extras already parsed (async callers use ``aextra_dejson``, because
        ``conn.extra_dejson`` masks them with a sync call that must not run on a triggerer's loop).
        """
        raw_extra = extra_dejson if extra_dejson is not None else (conn.extra_dejson if conn.extra else {})
        extra: dict[str, Any] = {}
        for key, value in (raw_extra or {}).items():
            extra[key.removeprefix("extra__aihubmix__")] = value
        host = (conn.host or "").strip()
        if not host:
            base_url = DEFAULT_BASE_URL
        else:
            if "://" not in host:
                host = f"{(conn.schema or 'https').strip()}://{host}"
            if conn.port and urlsplit(host).port is None:
                parts = urlsplit(host)
                host = f"{parts.scheme}://{parts.netloc}:{conn.port}{parts.path}"
            base_url = host
        values: dict[str, Any] = {
            "api_key": conn.password or "",
            "base_url": base_url,
            "tasks_base_url": extra.get("tasks_base_url") or None,
            "output_uri": extra.get("output_uri") or None,
            "connect_timeout": _coerce_float(
                "connect_timeout", extra.get("connect_timeout"), DEFAULT_CONNECT_TIMEOUT
            ),
            "read_timeout": _coerce_float("read_timeout", extra.get("read_timeout"), DEFAULT_READ_TIMEOUT),
            "write_timeout": _coerce_float(
                "write_timeout", extra.get("write_timeout"), DEFAULT_WRITE_TIMEOUT
            ),
            "pool_timeout": _coerce_float("pool_timeout", extra.get("pool_timeout"), DEFAULT_POOL_TIMEOUT),
            "max_retries": _coerce_int("max_retries", extra.get("max_retries"), DEFAULT_MAX_RETRIES),
            "allow_private_image_hosts": _coerce_bool(extra.get("allow_private_image_hosts", False)),
            "conn_id": conn.conn_id,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def task_url(settings: AIHubMixSettings, task_id: str) -> str:
    return f"{settings.tasks_url}/v1/tasks/{quote(task_id, safe='')}"
