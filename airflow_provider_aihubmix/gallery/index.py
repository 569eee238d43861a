"""A run's gallery entries, cached per run, then filtered, counted and paged (issue 25).

A view no longer reads every manifest of the run: the entries built from the manifests are
kept per run (:class:`RunCache`) and a task instance's entry is built again only when
Airflow's record of it changed (its state or try number -- "a task ended"), or, while it
is still running, when the entry is older than :data:`LIVE_TTL_S`. The stale ones are read
concurrently (:data:`READ_WORKERS` threads: on S3 each is a GET).

Filtering, counting and paging work on those cached entries in memory; nothing here
imports Airflow, so the logic is unit-tested alone.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

#: Airflow states after which a task instance's manifest does not change until its next try.
TERMINAL_STATES = frozenset({"success", "failed", "upstream_failed", "skipped", "removed"})
#: How long the entry of a task that is still running is reused (seconds).
LIVE_TTL_S = 5.0
#: Manifests read at once when a view finds stale entries.
READ_WORKERS = 16
#: Runs kept in the cache (least recently viewed dropped first).
CACHED_RUNS = 16
#: Cards per page: the default and the most a request may ask for.
PAGE_SIZE = 60
MAX_PAGE_SIZE = 200
#: The filters a request may set, in the order the page shows them.
FILTERS = ("model", "task_id", "state", "prompt", "map_index")


@dataclass(frozen=True)
class Version:
    """What Airflow says of a task instance: an entry built under another version is stale."""

    state: str | None
    try_number: int | None
    location: str | None


@dataclass
class Cached:
    version: Version
    built_at: float
    entry: dict[str, Any]


@dataclass
class RunCache:
    """Built entries of recently viewed runs, keyed by ``(mount root, dag_id, run_id)``."""

    runs: OrderedDict[tuple[str, str, str], dict[tuple[str, int], Cached]] = field(
        default_factory=OrderedDict
    )
    lock: threading.Lock = field(default_factory=threading.Lock)
    reads: int = 0  # manifests read since start (for tests and benchmarks)
    # Per run, things derived from the whole run (the budget ledger's report), rebuilt with entries.
    derived: dict[tuple[str, str, str], Any] = field(default_factory=dict)

    def derive(self, key: tuple[str, str, str], compute: Callable[[], Any], *, changed: bool) -> Any:
        """``compute()`` for run ``key``, kept until a view finds a task changed (``changed``)."""
        with self.lock:
            if not changed and key in self.derived:
                return self.derived[key]
        value = compute()
        with self.lock:
            self.derived[key] = value
            for stale in [k for k in self.derived if k not in self.runs]:
                del self.derived[stale]
        return value

    def entries(
        self,
        key: tuple[str, str, str],
        rows: Sequence[tuple[tuple[str, int], Version, Any]],
        build: Callable[[Any], dict[str, Any]],
        *,
        now: float | None = None,
    ) -> list[dict[str, Any]]:
        """The entries of ``rows`` (``(id, version, row)``, in display order), building stale ones.

        ``build(row)`` reads the task's manifest and returns its entry; it runs concurrently.
        """
        return self.refresh(key, rows, build, now=now)[0]

    def refresh(
        self,
        key: tuple[str, str, str],
        rows: Sequence[tuple[tuple[str, int], Version, Any]],
        build: Callable[[Any], dict[str, Any]],
        *,
        now: float | None = None,
    ) -> tuple[list[dict[str, Any]], bool]:
        """:meth:`entries`, and whether any entry was built (or dropped) in this call."""
        now = time.monotonic() if now is None else now
        with self.lock:
            cached = dict(self.runs.get(key, {}))
        stale = [row for row in rows if not _fresh(cached.get(row[0]), row[1], now)]
        if stale:
            workers = min(READ_WORKERS, len(stale))
            if workers == 1:
                built = [build(stale[0][2])]
            else:
                with ThreadPoolExecutor(workers, thread_name_prefix="gallery-read") as pool:
                    built = list(pool.map(lambda row: build(row[2]), stale))
            for (ident, version, _), entry in zip(stale, built, strict=True):
                cached[ident] = Cached(version, now, entry)
        current = {ident: cached[ident] for ident, _, _ in rows}
        changed = bool(stale) or len(current) != len(cached)
        with self.lock:
            self.reads += len(stale)
            self.runs[key] = current
            self.runs.move_to_end(key)
            while len(self.runs) > CACHED_RUNS:
                self.runs.popitem(last=False)
        return [current[ident].entry for ident, _, _ in rows], changed

    def clear(self) -> None:
        with self.lock:
            self.runs.clear()
            self.derived.clear()


def _fresh(cached: Cached | None, version: Version, now: float) -> bool:
    if cached is None or cached.version != version:
        return False
    return version.state in TERMINAL_STATES or now - cached.built_at < LIVE_TTL_S


# ------------------------------------------------------------------------------------ filters
def facets(entry: Mapping[str, Any]) -> dict[str, str]:
    """The values a task entry is filtered by (``state`` is the gallery's outcome word)."""
    manifest = entry.get("manifest") or {}
    return {
        "model": str(manifest.get("model") or entry.get("operator") or ""),
        "task_id": str(entry.get("task_id")),
        "state": str(entry.get("outcome")),
        "prompt": str(manifest.get("prompt_sha256") or ""),
        "map_index": str(entry.get("map_index")),
    }


def matches(entry: Mapping[str, Any], wanted: Mapping[str, str]) -> bool:
    values = facets(entry)
    return all(values[name] == value for name, value in wanted.items())


def counts(entries: Iterable[Mapping[str, Any]], wanted: Mapping[str, str]) -> dict[str, dict[str, int]]:
    """Per filter, ``{value: tasks}`` among the tasks matching the *other* filters set.

    So a count says what choosing that value would show (the usual faceted-search rule).
    ``prompt`` and ``map_index`` are left out: one value per task, not worth a list.
    """
    out: dict[str, dict[str, int]] = {name: {} for name in ("model", "task_id", "state")}
    for entry in entries:
        values = facets(entry)
        for name, bucket in out.items():
            others = {k: v for k, v in wanted.items() if k != name}
            if all(values[k] == v for k, v in others.items()):
                bucket[values[name]] = bucket.get(values[name], 0) + 1
    return {name: dict(sorted(bucket.items())) for name, bucket in out.items()}


# ------------------------------------------------------------------------------------- paging
def cards(entries: Iterable[Mapping[str, Any]]) -> list[tuple[int, int | None]]:
    """``(entry position, image position or None)`` per card: one per image, one per task without."""
    out: list[tuple[int, int | None]] = []
    for position, entry in enumerate(entries):
        images = entry.get("images") or []
        out.extend((position, i) for i in range(len(images))) if images else out.append((position, None))
    return out


def page(
    entries: Sequence[Mapping[str, Any]], offset: int, limit: int
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The tasks holding cards ``offset .. offset+limit`` (their images cut to the page) and the paging."""
    all_cards = cards(entries)
    window = all_cards[offset : offset + limit]
    tasks: dict[int, dict[str, Any]] = {}
    for position, image in window:
        if position not in tasks:
            tasks[position] = {**entries[position], "images": []}
        if image is not None:
            tasks[position]["images"].append(entries[position]["images"][image])
    end = offset + len(window)
    return list(tasks.values()), {
        "offset": offset,
        "limit": limit,
        "cards": len(all_cards),
        "next_offset": end if end < len(all_cards) else None,
        "prev_offset": max(0, offset - limit) if offset > 0 else None,
    }


def summary(entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The run's totals (every entry, not one page): tasks, images, failures and cost."""
    manifests = [e["manifest"] for e in entries if e.get("manifest")]
    costs = [m["cost_usd"] for m in manifests if m.get("cost_usd") is not None]
    # Earlier purchases a task kept when it bought anew were paid for too: they count.
    earlier = [e for m in manifests for e in m.get("earlier") or []]
    costs += [e["cost_usd"] for e in earlier if e.get("cost_usd") is not None]
    return {
        "tasks": len(entries),
        "images": sum(len(e.get("images") or []) for e in entries),
        "failed": sum(e.get("outcome") in ("failed", "moderated", "ambiguous") for e in entries),
        "cost_usd": round(sum(costs), 6) if costs else None,
        "earlier_images": sum(e.get("images") or 0 for e in earlier),
        "tasks_without_cost": sum(1 for m in manifests if m.get("cost_usd") is None),
    }


def clamp_page(offset: int | None, limit: int | None) -> tuple[int, int]:
    """A request's ``offset``/``limit`` made safe: ``offset >= 0``, ``1 <= limit <= MAX_PAGE_SIZE``."""
    return max(0, offset or 0), min(MAX_PAGE_SIZE, max(1, limit or PAGE_SIZE))


__all__ = [
    "FILTERS",
    "MAX_PAGE_SIZE",
    "PAGE_SIZE",
    "RunCache",
    "Version",
    "cards",
    "clamp_page",
    "counts",
    "facets",
    "matches",
    "page",
    "summary",
]
