"""The gallery's run cache, filters, counts and pages (issue 25), without Airflow."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from airflow_provider_aihubmix.exceptions import AIHubMixBudgetExceededError
from airflow_provider_aihubmix.gallery.app import budget_for, budget_reports, task_label
from airflow_provider_aihubmix.gallery.index import (
    LIVE_TTL_S,
    MAX_PAGE_SIZE,
    PAGE_SIZE,
    RunCache,
    Version,
    clamp_page,
    counts,
    matches,
    page,
    summary,
)
from airflow_provider_aihubmix.gallery.runs import TaskInstanceRow
from airflow_provider_aihubmix.pricing.reservations import RunLedger
from airflow_provider_aihubmix.storage import LocalObjectStore

MODELS = ("model-a", "model-b", "model-c")


def entry(
    task_id: str, map_index: int, outcome: str = "complete", images: int = 1, **m: Any
) -> dict[str, Any]:
    manifest = {"model": m.get("model", "model-a"), "prompt_sha256": m.get("prompt", f"p{map_index}")}
    manifest["cost_usd"] = m.get("cost", 0.01 * images)
    manifest["earlier"] = []
    return {
        "task_id": task_id,
        "map_index": map_index,
        "outcome": outcome,
        "operator": "AIHubMixImagenOperator",
        "manifest": manifest,
        "images": [{"name": f"image-{i:03d}.png", "index": i} for i in range(images)],
    }


def campaign(prompts: int) -> list[dict[str, Any]]:
    """``prompts`` prompts x 3 models (one task per model, mapped over the prompts)."""
    return [
        entry(f"gen_{model}", i, model=model, prompt=f"p{i}", images=2, cost=0.02)
        for model in MODELS
        for i in range(prompts)
    ]


def test_a_page_holds_limit_cards_and_cuts_a_task_between_pages() -> None:
    entries = campaign(10)  # 30 tasks, 60 cards
    tasks, paging = page(entries, 0, 25)
    assert sum(len(t["images"]) for t in tasks) == 25 and len(tasks) == 13
    assert tasks[-1]["images"] == [{"name": "image-000.png", "index": 0}]
    assert paging == {"offset": 0, "limit": 25, "cards": 60, "next_offset": 25, "prev_offset": None}
    tasks, paging = page(entries, 25, 25)
    assert tasks[0]["images"] == [{"name": "image-001.png", "index": 1}]  # the rest of task 13
    tasks, paging = page(entries, 50, 25)
    assert sum(len(t["images"]) for t in tasks) == 10 and paging["next_offset"] is None
    assert paging["prev_offset"] == 25
    assert entries[12]["images"][1]["index"] == 1  # paging never changes the cached entries


def test_a_task_without_images_is_one_card() -> None:
    entries = [entry("t", 0, "failed", images=0), entry("t", 1)]
    tasks, paging = page(entries, 0, 10)
    assert paging["cards"] == 2 and [t["outcome"] for t in tasks] == ["failed", "complete"]


def test_the_page_size_is_clamped() -> None:
    assert clamp_page(None, None) == (0, PAGE_SIZE)
    assert clamp_page(-5, 10_000) == (0, MAX_PAGE_SIZE)
    assert clamp_page(120, 0) == (120, PAGE_SIZE)


def test_filters_match_model_task_state_prompt_and_map_index() -> None:
    entries = [*campaign(3), entry("gen_model-a", 9, "moderated"), entry("other", -1, "ambiguous", images=0)]
    assert len([e for e in entries if matches(e, {"model": "model-b"})]) == 3
    assert len([e for e in entries if matches(e, {"task_id": "gen_model-a"})]) == 4
    assert len([e for e in entries if matches(e, {"state": "moderated"})]) == 1
    assert len([e for e in entries if matches(e, {"state": "ambiguous"})]) == 1
    # The compare view: one prompt, every model.
    same_prompt = [e for e in entries if matches(e, {"prompt": "p1"})]
    assert sorted(e["manifest"]["model"] for e in same_prompt) == sorted(MODELS)
    assert len([e for e in entries if matches(e, {"map_index": "2"})]) == 3


def test_counts_per_filter_say_what_choosing_a_value_would_show() -> None:
    entries = [*campaign(4), entry("gen_model-a", 7, "failed", images=0, model="model-a")]
    every = counts(entries, {})
    assert every["model"] == {"model-a": 5, "model-b": 4, "model-c": 4}
    assert every["state"] == {"complete": 12, "failed": 1}
    narrowed = counts(entries, {"state": "failed"})
    # The model counts follow the state chosen; the state counts do not follow themselves.
    assert narrowed["model"] == {"model-a": 1}
    assert narrowed["state"] == {"complete": 12, "failed": 1}


def test_the_summary_counts_every_entry_not_one_page() -> None:
    entries = campaign(100)
    totals = summary(entries)
    assert totals["tasks"] == 300 and totals["images"] == 600
    assert totals["cost_usd"] == 6.0 and totals["failed"] == 0


def rows(n: int, state: str = "success", try_number: int = 1) -> list[tuple[tuple[str, int], Version, int]]:
    return [(("t", i), Version(state, try_number, "file:///out"), i) for i in range(n)]


def test_the_cache_reads_each_manifest_once_until_its_task_changes() -> None:
    cache, built = RunCache(), []

    def build(i: int) -> dict[str, Any]:
        built.append(i)
        return {"i": i, "thread": threading.current_thread().name}

    key = ("", "dag", "run")
    first = cache.entries(key, rows(50), build, now=0.0)
    assert [e["i"] for e in first] == list(range(50)) and sorted(built) == list(range(50))
    assert any(e["thread"].startswith("gallery-read") for e in first)  # read concurrently
    built.clear()
    cache.entries(key, rows(50), build, now=1000.0)
    assert built == []  # ended tasks: their manifests do not change
    changed = rows(50)
    changed[7] = (("t", 7), Version("success", 2, "file:///out"), 7)  # a retry ended
    cache.entries(key, changed, build, now=1000.0)
    assert built == [7]
    assert cache.reads == 51


def test_a_running_task_is_read_again_after_a_few_seconds() -> None:
    cache, built = RunCache(), []
    key = ("", "dag", "run")
    cache.entries(key, rows(2, "running"), lambda i: built.append(i) or {}, now=0.0)
    cache.entries(key, rows(2, "running"), lambda i: built.append(i) or {}, now=LIVE_TTL_S / 2)
    assert len(built) == 2
    cache.entries(key, rows(2, "running"), lambda i: built.append(i) or {}, now=LIVE_TTL_S + 1)
    assert len(built) == 4


def test_runs_are_cached_apart_and_the_oldest_is_dropped() -> None:
    cache = RunCache()
    for n in range(20):
        cache.entries(("", "dag", f"run{n}"), rows(1), lambda i: {}, now=0.0)
    assert len(cache.runs) == 16 and ("", "dag", "run0") not in cache.runs


def test_the_gallery_shows_the_dag_budgets_reservations_spend_and_refusals(tmp_path: Any) -> None:
    store = LocalObjectStore((tmp_path / "out").as_uri())
    ledger = RunLedger(store, "dag", "run")
    bought = ledger.reserve("gen[0]", "fp0", 0.03, cap_usd=0.05, describe_cap="the test cap")
    ledger.settle(bought, 0.025)
    with pytest.raises(AIHubMixBudgetExceededError):
        ledger.reserve("gen[1]", "fp1", 0.03, cap_usd=0.05, describe_cap="the test cap")
    location = {"output_uri": store.base_uri, "conn_id": None, "show_prompt": False}
    rows = [TaskInstanceRow("gen", i, "success", 1, "AIHubMixImagenOperator", location) for i in range(3)]
    reports = budget_reports(rows, "dag", "run")
    expected = {"reserved_usd": 0.03, "actual_usd": 0.025, "released": 0, "open": 0, "refused": False}
    assert {k: reports["gen[0]"][k] for k in expected} == expected
    refused = budget_for(reports, {"task_id": "gen", "map_index": 1})
    assert refused is not None and refused["refused"] is True and refused["reserved_usd"] == 0.0
    assert budget_for(reports, {"task_id": "gen", "map_index": 2}) is None  # reserved nothing
    assert task_label({"task_id": "gen", "map_index": 1}) == "gen[1]"
    assert task_label({"task_id": "gen", "map_index": -1}) == "gen"
    assert budget_reports([], "dag", "run") == {}
