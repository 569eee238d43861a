"""Fault rules: how a test or a user makes the sandbox misbehave on purpose.

A rule comes from ``POST /_sandbox/faults`` (lasting: ``count`` / ``duration_s`` /
``probability``) or from a request's ``X-Sandbox-Fault`` header (that request only).
"""

from __future__ import annotations

import itertools
import random
import re
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

FaultKind = Literal[
    "status",
    "drop",
    "reset_after_send",
    "slow",
    "error_200",
    "malformed_json",
    "unknown_shape",
    "moderation",
    "expired",
    "truncated",
    "wrong_content_type",
    "huge",
]

#: Kinds that only make sense on the storage (image download) server.
STORAGE_KINDS = frozenset({"expired", "truncated", "wrong_content_type", "huge"})
#: Kinds where the request is processed (and billed) before the fault hits the answer.
AFTER_PROCESSING_KINDS = frozenset({"reset_after_send", "malformed_json", "unknown_shape", "slow"})

HEADER = "x-sandbox-fault"


class FaultRule(BaseModel):
    """One fault. Matching narrows by ``host``, ``method`` and ``path`` (a regex searched in the path).

    ``host`` defaults to ``storage`` for the download kinds and ``api`` otherwise; ``any``
    matches both. ``count`` limits it to the next N matching requests, ``duration_s`` to
    the next S seconds, ``probability`` draws from the sandbox's seeded RNG (``fault_seed``).
    Without ``count`` or ``duration_s`` a rule lasts until cleared.

    Before processing (nothing billed): ``drop`` closes the connection with no answer;
    ``status`` answers ``status`` (default 500) with the error body and ``Retry-After`` when
    ``retry_after`` is set; ``error_200`` puts that error body in an HTTP 200; ``moderation``
    answers 400 ``moderation_blocked``. After processing (billed, tasks created):
    ``reset_after_send`` drops the connection instead of answering; ``slow`` holds the answer
    ``delay_s``; ``malformed_json`` sends half the real body; ``unknown_shape`` sends valid
    JSON in no documented shape. Storage downloads: ``expired`` (403, or ``status`` 404),
    ``truncated`` (full Content-Length, half the body, connection closed),
    ``wrong_content_type`` (an HTML page as text/html, or the real bytes labelled
    ``content_type`` when given), ``huge`` (a valid PNG of ``size_bytes``, default the
    ``huge_bytes`` setting). ``message`` and ``code`` override the error body's.
    """

    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    status: int | None = Field(default=None, ge=100, le=599)
    retry_after: float | str | None = None
    path: str | None = None
    method: str | None = None
    host: Literal["api", "storage", "any"] | None = None
    count: int | None = Field(default=None, ge=1)
    duration_s: float | None = Field(default=None, gt=0)
    probability: float = Field(default=1.0, ge=0.0, le=1.0)
    delay_s: float = Field(default=1.0, ge=0.0)
    size_bytes: int | None = Field(default=None, ge=0)
    content_type: str | None = None
    message: str | None = None
    code: str | None = None

    @field_validator("path")
    @classmethod
    def _path_is_regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"path is not a regular expression: {exc}") from None
        return value

    @field_validator("method")
    @classmethod
    def _upper(cls, value: str | None) -> str | None:
        return value.upper() if value else None

    @property
    def effective_host(self) -> str:
        if self.host:
            return self.host
        return "storage" if self.kind in STORAGE_KINDS else "api"

    def effective_status(self) -> int:
        if self.status is not None:
            return self.status
        return {"expired": 403, "moderation": 400, "error_200": 500}.get(self.kind, 500)


class _Active:
    __slots__ = ("expires_at", "id", "pattern", "remaining", "rule")

    def __init__(self, rule_id: int, rule: FaultRule) -> None:
        self.id = rule_id
        self.rule = rule
        self.pattern = re.compile(rule.path) if rule.path else None
        self.remaining = rule.count
        self.expires_at = time.monotonic() + rule.duration_s if rule.duration_s else None


class FaultBook:
    """The lasting rules, checked in the order they were added; the first match wins."""

    def __init__(self, seed: int = 0) -> None:
        self._rules: list[_Active] = []
        self._ids = itertools.count(1)
        self.rng = random.Random(seed)

    def add(self, rule: FaultRule) -> dict[str, Any]:
        active = _Active(next(self._ids), rule)
        self._rules.append(active)
        return self._describe(active)

    def clear(self, seed: int | None = None) -> None:
        self._rules.clear()
        if seed is not None:
            self.rng.seed(seed)

    def remove(self, rule_id: int) -> bool:
        before = len(self._rules)
        self._rules = [a for a in self._rules if a.id != rule_id]
        return len(self._rules) != before

    def rules(self) -> list[dict[str, Any]]:
        self._expire()
        return [self._describe(a) for a in self._rules]

    def match(self, host: str, method: str, path: str) -> FaultRule | None:
        if not self._rules:  # the common case, kept cheap for benchmarks
            return None
        self._expire()
        for active in self._rules:
            rule = active.rule
            if rule.effective_host not in (host, "any"):
                continue
            if rule.method and rule.method != method:
                continue
            if active.pattern is not None and not active.pattern.search(path):
                continue
            if rule.probability < 1.0 and self.rng.random() >= rule.probability:
                continue
            if active.remaining is not None:
                active.remaining -= 1
                if active.remaining <= 0:
                    self._rules.remove(active)
            return rule
        return None

    def _expire(self) -> None:
        now = time.monotonic()
        self._rules = [a for a in self._rules if a.expires_at is None or a.expires_at > now]

    @staticmethod
    def _describe(active: _Active) -> dict[str, Any]:
        out = active.rule.model_dump(exclude_none=True)
        out["id"] = active.id
        out["remaining"] = active.remaining
        return out


def parse_fault_header(value: str) -> FaultRule:
    """Parse ``<kind>[;status=..;retry_after=..;delay_s=..]`` (the per-request header)."""
    kind, *params = (part.strip() for part in value.split(";"))
    fields: dict[str, Any] = {"kind": kind}
    for param in params:
        if not param:
            continue
        name, _, raw = param.partition("=")
        fields[name.strip()] = _scalar(raw.strip())
    # A header targets exactly the request that carries it, whichever host that is.
    fields["host"] = "any"
    return FaultRule.model_validate(fields)


def _scalar(raw: str) -> Any:
    for convert in (int, float):
        try:
            return convert(raw)
        except ValueError:
            pass
    if raw.lower() in ("null", "none", ""):
        return None
    return raw
