"""The manifest's state machine: every allowed move, every forbidden one, and the ledger's writes.

The table below is written out by hand on purpose (not read from ``TRANSITIONS``): changing the
machine must change this test too, which is where a reviewer sees that "never pay twice" moved.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from airflow_provider_aihubmix.engine.ledger import ManifestLedger
from airflow_provider_aihubmix.engine.manifest import (
    Attempt,
    Manifest,
    ManifestStatus,
    ReceivedImage,
    SendMarker,
    TaskIdentity,
)
from airflow_provider_aihubmix.exceptions import ManifestTransitionError
from airflow_provider_aihubmix.responses.shapes import TaskHandle
from airflow_provider_aihubmix.storage import LocalObjectStore

S = ManifestStatus
ALLOWED = {
    (S.DEFERRED, S.DEFERRED),
    (S.DEFERRED, S.SUBMITTING),
    (S.SUBMITTING, S.DEFERRED),
    (S.SUBMITTING, S.SUBMITTED),
    (S.SUBMITTING, S.RECEIVED),
    (S.SUBMITTING, S.FAILED),
    (S.SUBMITTING, S.AMBIGUOUS),
    (S.SUBMITTED, S.RECEIVED),
    (S.SUBMITTED, S.FAILED),
    (S.RECEIVED, S.RECEIVED),
    (S.RECEIVED, S.COMPLETE),
    # A Gemini series resumed at its failed request, from the worker or the triggerer.
    (S.FAILED, S.SUBMITTING),
    (S.FAILED, S.DEFERRED),
    # An unreadable answer saved beside the manifest, read by a later run: never a new submission.
    (S.AMBIGUOUS, S.RECEIVED),
    (S.AMBIGUOUS, S.SUBMITTED),
    (S.AMBIGUOUS, S.FAILED),
}
IDENTITY = TaskIdentity(dag_id="d", run_id="r", task_id="t", map_index=2, try_number=1)


def fresh(status: ManifestStatus = S.SUBMITTING) -> Manifest:
    return Manifest.for_task(
        IDENTITY, status=status, fingerprint="f" * 64, model="m/x", family="imagen", input={"prompt": "p"}
    )


def recorded_in(status: ManifestStatus) -> Manifest:
    """A manifest whose last recorded attempt is ``status`` (as a retry would load it)."""
    manifest = fresh()
    manifest.status = status
    manifest.attempts = [Attempt(try_number=1, at="2026-01-01T00:00:00+00:00", status=status)]
    return manifest


@pytest.mark.parametrize(("source", "target"), list(itertools.product(S, S)), ids=lambda s: s.value)
def test_every_move_is_allowed_or_refused_as_the_table_says(source: S, target: S) -> None:
    manifest = recorded_in(source)
    if (source, target) in ALLOWED:
        manifest.record_attempt(target, request_id="req-1")
        assert manifest.status is target
        assert (manifest.attempts[-1].status, manifest.attempts[-1].request_id) == (target, "req-1")
    else:
        before = manifest.model_dump()
        with pytest.raises(ManifestTransitionError, match=f"from {source.value} to {target.value}"):
            manifest.record_attempt(target)
        assert manifest.model_dump() == before  # nothing recorded


@pytest.mark.parametrize("status", list(S), ids=lambda s: s.value)
def test_a_new_manifest_starts_submitting_or_submitted_and_records_that_first(status: S) -> None:
    if status not in (S.SUBMITTING, S.SUBMITTED, S.DEFERRED):
        with pytest.raises(ManifestTransitionError, match="cannot start"):
            fresh(status)
        return
    manifest = fresh(status)
    assert (manifest.dag_id, manifest.run_id, manifest.task_id, manifest.map_index) == ("d", "r", "t", 2)
    assert manifest.attempts == []
    manifest.record_attempt(status)  # a fresh manifest records the state it was made in
    with pytest.raises(ManifestTransitionError):
        manifest.record_attempt(S.COMPLETE)


@pytest.fixture
def ledger(tmp_path: Path) -> ManifestLedger:
    return ManifestLedger(LocalObjectStore(tmp_path.as_uri()), "dag_id=d/run_id=r/task_id=t/map_index=2")


def on_disk(ledger: ManifestLedger) -> list[str]:
    manifest = ledger.load()
    assert manifest is not None
    return [attempt.status.value for attempt in manifest.attempts]


def test_each_ledger_transition_records_and_saves_in_one_step(ledger: ManifestLedger) -> None:
    bought = fresh()
    ledger.submitting(bought)
    assert on_disk(ledger) == ["submitting"]
    ledger.submitted(bought, TaskHandle(task_id="task-1"), usage={"n": 1}, request_id="req-1")
    assert on_disk(ledger) == ["submitting", "submitted"]
    assert [t.task_id for t in (ledger.load() or bought).remote_tasks] == ["task-1"]
    image = ReceivedImage(index=0, url="https://cdn.example.com/a.png?sig=s")
    ledger.received(bought, [image], usage=None, request_id="req-2")
    assert on_disk(ledger) == ["submitting", "submitted", "received"]
    assert (ledger.load() or bought).usage == {"n": 1}  # an answer without usage keeps the recorded one
    ledger.complete(bought, [{"index": 0}], cost={"estimated": 0.04, "actual": 0.03}, request_id=None)
    saved = ledger.load()
    assert saved is not None and saved.status is S.COMPLETE
    assert saved.received[0].url is None  # signed vendor URL dropped once stored
    assert (saved.records, saved.estimated_cost_usd, saved.actual_cost_usd) == ([{"index": 0}], 0.04, 0.03)
    assert ledger.manifest is bought


def test_the_triggerer_send_moves_deferred_submitting_deferred_received(ledger: ManifestLedger) -> None:
    bought = fresh(S.DEFERRED)
    ledger.deferred(bought, request_key="p/request.json", requests_total=2)
    for request in range(2):
        marker = SendMarker(request=request, at=f"2026-01-01T00:0{request}:00+00:00", trigger_run="run-1")
        ledger.submitting(bought, marker)
        saved = ledger.load()
        assert saved is not None and saved.in_flight == marker
        image = ReceivedImage(index=request, key=f"p/image-00{request}.png", sha256="a" * 64)
        ledger.answered(
            bought, request, received=[*bought.received, image], records=[], usage=None, request_id=None
        )
    saved = ledger.load()
    assert saved is not None
    assert on_disk(ledger) == ["deferred", "submitting", "deferred", "submitting", "received"]
    assert (saved.requests_answered, saved.in_flight, len(saved.received)) == (2, None, 2)
    assert saved.timings["submitted_at"] == "2026-01-01T00:00:00+00:00"  # the first send's time


@pytest.mark.parametrize("end", ["failed", "ambiguous"])
def test_refusal_and_lost_answer_are_saved_with_their_error(ledger: ManifestLedger, end: str) -> None:
    bought = fresh()
    ledger.submitting(bought)
    getattr(ledger, end)(bought, error="boom", request_id="req-9")
    saved = ledger.load()
    assert saved is not None
    assert (saved.status.value, saved.attempts[-1].error, saved.attempts[-1].request_id) == (
        end,
        "boom",
        "req-9",
    )


def test_a_forbidden_ledger_move_writes_nothing(ledger: ManifestLedger) -> None:
    bought = fresh()
    ledger.submitting(bought)
    ledger.failed(bought, error="refused")
    before = bought.model_dump()
    with pytest.raises(ManifestTransitionError):
        ledger.received(
            bought, [ReceivedImage(index=0, url="https://cdn/x.png")], usage={"n": 1}, request_id=None
        )
    assert on_disk(ledger) == ["submitting", "failed"]
    assert bought.model_dump() == before  # not even half-made in memory
