"""How often to poll an async task: one schedule for the triggerer and for a blocking worker.

The interval starts at ``poll_interval`` and grows gently (x1.5 per poll up to
``max_interval``) so a long generation costs few requests, with +/-10 % jitter so a
fan-out of hundreds of tasks submitted together does not poll in lock-step.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

DEFAULT_POLL_INTERVAL = 5.0
DEFAULT_MAX_TRANSIENT_FAILURES = 5


@dataclass(frozen=True)
class PollSchedule:
    poll_interval: float = DEFAULT_POLL_INTERVAL
    max_interval: float | None = None  # default: 4 x poll_interval, at most 60 s
    factor: float = 1.5
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if self.poll_interval <= 0:
            raise ValueError(f"Parameter 'poll_interval' must be > 0 seconds, got {self.poll_interval!r}")

    @property
    def ceiling(self) -> float:
        if self.max_interval is not None:
            return max(self.max_interval, self.poll_interval)
        return max(self.poll_interval, min(4 * self.poll_interval, 60.0))

    def interval(self, poll_number: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before poll ``poll_number`` (0-based), jittered."""
        base = min(self.poll_interval * self.factor ** max(poll_number, 0), self.ceiling)
        spread = (rng or random).uniform(-self.jitter, self.jitter)
        return max(0.05, base * (1 + spread))


def progress_text(progress: float | None) -> str:
    """``progress`` as a percentage for logs: the API gives a 0..1 fraction or a 0..100 number."""
    if progress is None:
        return ""
    percent = progress * 100 if 0 <= progress <= 1 else progress
    return f", progress {percent:.0f}%"
