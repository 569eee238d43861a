"""Asynchronous (Flux) tasks: a clock-driven lifecycle, so no background work is needed.

A task is Pending, then Generating (with progress), then its outcome once its delay has
passed. The status is computed when polled, from the task's creation time.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: Prompt tokens choosing an outcome; they document themselves in a DAG's prompt.
PROMPT_OUTCOMES = (
    ("sandbox:request-moderated", "request_moderated"),
    ("sandbox:content-moderated", "content_moderated"),
    ("sandbox:error", "error"),
    ("sandbox:failed", "failed"),
    ("sandbox:never", "never"),
)
_DELAY_RE = re.compile(r"sandbox:delay=(\d+(?:\.\d+)?)")
# BFL answers "Task not found" for an id its store does not know yet: this many seconds after submit.
_UNKNOWN_RE = re.compile(r"sandbox:unknown-for=(\d+(?:\.\d+)?)")

_CANONICAL = {
    "pending": "Pending",
    "generating": "Generating",
    "ready": "Ready",
    "error": "Error",
    "failed": "Failed",
    "request_moderated": "Request Moderated",
    "content_moderated": "Content Moderated",
    "not_found": "Task not found",
}

_DETAILS: dict[str, dict[str, Any]] = {
    "error": {"message": "Upstream generation error (sandbox)"},
    "failed": {"message": "Task failed upstream (sandbox)"},
    "request_moderated": {"Moderation Reasons": ["Sandbox: the request was moderated"]},
    "content_moderated": {"Moderation Reasons": ["Sandbox: the generated content was moderated"]},
}


def spell(state: str, style: str) -> str:
    """The status string for ``state`` in a spelling style (``bfl``, ``lower``, ``completed``)."""
    if style == "bfl":
        return _CANONICAL[state]
    if state == "ready":
        return "succeeded" if style == "lower" else "completed"
    return _CANONICAL[state].lower()


def outcome_from_prompt(prompt: str) -> str | None:
    for token, outcome in PROMPT_OUTCOMES:
        if token in prompt:
            return outcome
    return None


def unknown_from_prompt(prompt: str) -> float | None:
    match = _UNKNOWN_RE.search(prompt)
    return float(match.group(1)) if match else None


def delay_from_prompt(prompt: str) -> float | None:
    match = _DELAY_RE.search(prompt)
    return float(match.group(1)) if match else None


@dataclass
class Task:
    id: str
    model: str
    prompt: str
    seed: Any
    image_seed: int
    width: int
    height: int
    fmt: str
    delay_s: float
    outcome: str
    unknown_s: float = 0.0  # reads "Task not found" this long after creation
    created: float = field(default_factory=time.monotonic)
    created_wall: float = field(default_factory=time.time)

    def state(self, now: float) -> tuple[str, float]:
        """(lifecycle state, progress 0..1) at monotonic time ``now``."""
        elapsed = now - self.created
        if self.outcome == "never":
            # Creeps towards 0.9 and never arrives.
            return ("pending" if elapsed < 0.3 else "generating"), 0.9 * (1 - math.exp(-elapsed / 5.0))
        if elapsed >= self.delay_s:
            return self.outcome, 1.0
        progress = elapsed / self.delay_s if self.delay_s > 0 else 1.0
        return ("pending" if progress < 0.3 else "generating"), round(progress, 3)

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "outcome": self.outcome,
            "delay_s": self.delay_s,
            "width": self.width,
            "height": self.height,
            "format": self.fmt,
            "age_s": round(time.monotonic() - self.created, 3),
        }


def task_status(
    task: Task | None,
    task_id: str,
    *,
    style: str,
    generating_status: bool,
    sample_url: Callable[[Task], str],
) -> dict[str, Any]:
    """The upstream-shaped status body: ``{"id", "status", "result", "progress", "details"}``."""
    if task is None or time.monotonic() - task.created < task.unknown_s:
        return {
            "id": task_id,
            "status": spell("not_found", style),
            "result": None,
            "progress": None,
            "details": None,
        }
    state, progress = task.state(time.monotonic())
    if state == "generating" and not generating_status:
        state = "pending"
    result: dict[str, Any] | None = None
    if state == "ready":
        result = {
            "sample": sample_url(task),
            "prompt": task.prompt,
            "seed": task.seed,
            "start_time": task.created_wall,
            "end_time": task.created_wall + task.delay_s,
            "duration": task.delay_s,
        }
    return {
        "id": task.id,
        "status": spell(state, style),
        "result": result,
        "progress": round(progress, 3) if state in ("pending", "generating", "ready") else None,
        "details": _DETAILS.get(state),
    }
