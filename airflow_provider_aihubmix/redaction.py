"""Every function that makes a value safe to show or keep: one home for the scrubbing rules.

What each one is for:

* :func:`scrub_text` — an error message or body excerpt: secrets, signed-URL query strings and
  base64 blobs removed, then truncated.
* :func:`redact_url` — a URL in a log line or an error: scheme, host and path only (signed URLs
  carry their credential in the query string, a ``user:password@`` in the authority).
* :func:`redact_input` — a request ``input`` persisted in a manifest or hashed into a fingerprint:
  inline images and URL query strings become content hashes.
* :func:`without_secrets` — a free-form mapping sent to lineage: credential-named keys dropped,
  ``user:password@`` stripped from URLs.
* :func:`mask_secret` / :func:`amask_secret` — register a secret with Airflow's log masker, so
  anything Airflow itself logs (rendered fields, tracebacks) hides it too.

Import-light on purpose (``re``, ``hashlib``, ``urllib`` only): the operators module, which
DAG parsing imports, reaches these through lineage.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_aihubmix import version_compat

# Request fields that hold the prompt's text: what a task that hides its prompt keeps out of
# lineage facets and the gallery (both read this one set).
PROMPT_FIELDS = frozenset({"prompt", "negative_prompt"})

EXCERPT_LIMIT = 300
_LONG_TOKEN_RE = re.compile(r"[A-Za-z0-9+/=_-]{120,}")
_QUERY_RE = re.compile(r"(https?://[^\s\"'?#]+)\?[^\s\"'#]*")
_DATA_URI = re.compile(r"^data:(?P<type>[^;,]*)(?:;[^,]*)?,(?P<payload>.*)$", re.DOTALL)

# Parameter names that may hold credentials (extra_input is free-form): never sent to lineage.
SENSITIVE_MARKERS = (
    "api_key",
    "apikey",
    "access_key",
    "private_key",
    "token",
    "secret",
    "password",
    "passwd",
    "authorization",
    "credential",
)


def scrub_text(text: str, secrets: Iterable[str | None] = (), *, limit: int | None = EXCERPT_LIMIT) -> str:
    """Return ``text`` safe for a message: secrets, signed-URL query strings and base64 blobs removed.

    Scrubbing happens before truncation so a secret cut in half at the limit cannot leak its head.
    """
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = _QUERY_RE.sub(r"\1?<redacted>", text)
    text = _LONG_TOKEN_RE.sub(lambda m: f"<{len(m.group(0))} chars redacted>", text)
    if limit is not None and len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def redact_url(url: object) -> str:
    """Scheme, host and path only: signed URLs carry their credential in the query string.

    ``url``: a ``str`` or an ``httpx.URL`` (anything whose ``str()`` is a URL).
    """
    parts = urlsplit(str(url))
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


def redact_input(value: Any) -> Any:
    """A copy of a request ``input`` safe to persist: inline images become content hashes.

    Data URIs would bloat the manifest and may carry private pictures; URL query strings
    are often signatures (presigned reference images), so they are hashed too.
    """
    if isinstance(value, dict):
        return {k: redact_input(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_input(v) for v in value]
    if isinstance(value, str):
        match = _DATA_URI.match(value)
        if match:
            digest = hashlib.sha256(match.group("payload").encode()).hexdigest()
            return f"data:{match.group('type')};sha256={digest}"
        if value.startswith(("http://", "https://")) and "?" in value:
            base, _, query = value.partition("?")
            return f"{base}?sha256={hashlib.sha256(query.encode()).hexdigest()}"
    return value


def is_sensitive_name(name: str) -> bool:
    """Whether a parameter name looks like it holds a credential (``api_key``, ``x-token``...)."""
    lowered = name.lower()
    return any(marker in lowered for marker in SENSITIVE_MARKERS)


def without_secrets(value: Any) -> Any:
    """``value`` with credential-named keys dropped and ``user:password@`` removed from URLs."""
    if isinstance(value, Mapping):
        return {k: without_secrets(v) for k, v in value.items() if not is_sensitive_name(str(k))}
    if isinstance(value, list):
        return [without_secrets(v) for v in value]
    if isinstance(value, str) and "://" in value:
        scheme, _, rest = value.partition("://")
        authority, slash, path = rest.partition("/")
        if "@" in authority:  # user:password@host -- a credential in a URL
            return f"{scheme}://{authority.rpartition('@')[2]}{slash}{path}"
    return value


def mask_secret(secret: str) -> None:
    """Register ``secret`` with Airflow's log masker (sync; not for a triggerer's event loop)."""
    version_compat.mask_secret(secret)


async def amask_secret(secret: str) -> None:
    """Register ``secret`` with Airflow's log masker without blocking the event loop."""
    await version_compat.amask_secret(secret)


__all__ = [
    "EXCERPT_LIMIT",
    "PROMPT_FIELDS",
    "SENSITIVE_MARKERS",
    "amask_secret",
    "is_sensitive_name",
    "mask_secret",
    "redact_input",
    "redact_url",
    "scrub_text",
    "without_secrets",
]
