"""The resume decision as a table: every manifest state, with and without its data, per switch."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_aihubmix.engine.decide import Action, decide
from airflow_provider_aihubmix.engine.manifest import (
    Manifest,
    ManifestStatus,
    ReceivedImage,
    RemoteTask,
    SendMarker,
)
from airflow_provider_aihubmix.engine.resend import reservation_key
from airflow_provider_aihubmix.exceptions import AIHubMixValidationError
from airflow_provider_aihubmix.possibly_billed import PossiblyBilledPolicy, connection_policy, parse_policy

FP = "f" * 64
OTHER = "0" * 64
S = ManifestStatus


def manifest(status: ManifestStatus, *, fingerprint: str = FP, **fields: Any) -> Manifest:
    return Manifest(
        status=status,
        fingerprint=fingerprint,
        model="openai/gpt-image-1",
        family="openai",
        input={"prompt": "x"},
        dag_id="d",
        run_id="r",
        task_id="t",
        map_index=-1,
        try_number=1,
        **fields,
    )


RECEIVED = [ReceivedImage(index=0, url="https://img.example/0.png")]
TASKS = [RemoteTask(task_id="task-1", submitted_at="2026-12-05T00:00:00+00:00")]
MARKER = SendMarker(request=1, at="2026-12-05T00:00:00+00:00", trigger_run="worker try 1")

# (manifest, regenerate, series) -> action. Same fingerprint unless the row says OTHER.
TABLE: list[tuple[str, Manifest | None, bool, bool, Action]] = [
    ("nothing recorded", None, False, False, Action.BUY),
    ("complete", manifest(S.COMPLETE), False, False, Action.REUSE),
    ("complete, regenerate", manifest(S.COMPLETE), True, False, Action.BUY),
    ("received with images", manifest(S.RECEIVED, received=RECEIVED), False, False, Action.FINISH_RECEIVED),
    ("received without images", manifest(S.RECEIVED), False, False, Action.BUY),
    ("submitted with a task", manifest(S.SUBMITTED, remote_tasks=TASKS), False, False, Action.REATTACH),
    ("submitted without a task", manifest(S.SUBMITTED), False, False, Action.BUY),
    ("submitting", manifest(S.SUBMITTING), False, False, Action.REFUSE_POSSIBLY_BILLED),
    ("submitting, regenerate", manifest(S.SUBMITTING), True, False, Action.BUY),
    ("ambiguous", manifest(S.AMBIGUOUS), False, False, Action.REFUSE_POSSIBLY_BILLED),
    (
        "ambiguous, answer saved",
        manifest(S.AMBIGUOUS, saved_answer="answer.json"),
        False,
        False,
        Action.FINISH_SAVED,
    ),
    ("failed", manifest(S.FAILED), False, False, Action.BUY),
    ("deferred, never sent", manifest(S.DEFERRED), False, False, Action.BUY),
    (
        "series cut short (failed, 2 answered)",
        manifest(S.FAILED, requests_answered=2, requests_total=3),
        False,
        True,
        Action.RESUME_SERIES,
    ),
    (
        "series cut short, not a worker series",
        manifest(S.FAILED, requests_answered=2, requests_total=3),
        False,
        False,
        Action.BUY,
    ),
    (
        "series cut short, regenerate",
        manifest(S.DEFERRED, requests_answered=2, requests_total=3),
        True,
        True,
        Action.BUY,
    ),
    (
        "series with a request in flight",
        manifest(S.SUBMITTING, requests_answered=1, requests_total=3, in_flight=MARKER),
        False,
        True,
        Action.REFUSE_POSSIBLY_BILLED,
    ),
    ("other request, complete", manifest(S.COMPLETE, fingerprint=OTHER), False, False, Action.BUY),
    ("other request, failed", manifest(S.FAILED, fingerprint=OTHER), False, False, Action.BUY),
    (
        "other request, submitting",
        manifest(S.SUBMITTING, fingerprint=OTHER),
        False,
        False,
        Action.REFUSE_CHANGED,
    ),
    ("other request, received", manifest(S.RECEIVED, fingerprint=OTHER), False, False, Action.REFUSE_CHANGED),
    (
        "other request, submitted",
        manifest(S.SUBMITTED, fingerprint=OTHER),
        False,
        False,
        Action.REFUSE_CHANGED,
    ),
    (
        "other request, ambiguous",
        manifest(S.AMBIGUOUS, fingerprint=OTHER),
        False,
        False,
        Action.REFUSE_CHANGED,
    ),
    (
        "other request, deferred with answered requests",
        manifest(S.DEFERRED, fingerprint=OTHER, requests_answered=1),
        False,
        False,
        Action.REFUSE_CHANGED,
    ),
    (
        "other request, deferred, none answered",
        manifest(S.DEFERRED, fingerprint=OTHER),
        False,
        False,
        Action.BUY,
    ),
    (
        "other request, submitting, regenerate",
        manifest(S.SUBMITTING, fingerprint=OTHER),
        True,
        False,
        Action.BUY,
    ),
]


@pytest.mark.parametrize(
    ("case", "previous", "regenerate", "series", "expected"), TABLE, ids=[r[0] for r in TABLE]
)
def test_decide(
    case: str, previous: Manifest | None, regenerate: bool, series: bool, expected: Action
) -> None:
    assert decide(previous, FP, regenerate=regenerate, series=series) is expected


def test_every_state_has_a_row() -> None:
    covered = {row[1].status for row in TABLE if row[1] is not None}
    assert covered == set(ManifestStatus)


def test_only_buying_actions_pass_the_budget_check() -> None:
    assert {a for a in Action if a.buys} == {Action.BUY, Action.RESUME_SERIES, Action.RESEND}


RESENT = [{"manifest": "earlier/x/manifest.json", "fingerprint": FP, "resend": True}]
KEPT = [{"manifest": "earlier/y/manifest.json", "fingerprint": OTHER, "images": 1}]
RESEND_ONCE = PossiblyBilledPolicy.RESEND_ONCE

# (manifest, regenerate, series) under on_possibly_billed="resend_once" -> action.
REFUSE, SAVED, CHANGED = Action.REFUSE_POSSIBLY_BILLED, Action.FINISH_SAVED, Action.REFUSE_CHANGED
POLICY_TABLE: list[tuple[str, Manifest | None, bool, bool, Action]] = [
    ("nothing recorded", None, False, False, Action.BUY),
    ("submitting (worker killed mid-send)", manifest(S.SUBMITTING), False, False, Action.RESEND),
    ("ambiguous (answer lost)", manifest(S.AMBIGUOUS), False, False, Action.RESEND),
    (
        "ambiguous, earlier kept",
        manifest(S.AMBIGUOUS, earlier=KEPT),
        False,
        False,
        Action.RESEND,
    ),
    (
        "ambiguous, already the second send",
        manifest(S.AMBIGUOUS, earlier=RESENT),
        False,
        False,
        REFUSE,
    ),
    (
        "submitting, already the second send",
        manifest(S.SUBMITTING, earlier=RESENT),
        False,
        False,
        REFUSE,
    ),
    (
        "failed after the second send (refused)",
        manifest(S.FAILED, earlier=RESENT),
        False,
        False,
        Action.BUY,
    ),
    (
        "ambiguous, answer saved",
        manifest(S.AMBIGUOUS, saved_answer="answer.json"),
        False,
        False,
        SAVED,
    ),
    ("submitted with a task", manifest(S.SUBMITTED, remote_tasks=TASKS), False, False, Action.REATTACH),
    ("received with images", manifest(S.RECEIVED, received=RECEIVED), False, False, Action.FINISH_RECEIVED),
    ("complete", manifest(S.COMPLETE), False, False, Action.REUSE),
    (
        "series with a request in flight, some answered",
        manifest(S.SUBMITTING, requests_answered=1, requests_total=3, in_flight=MARKER),
        False,
        True,
        REFUSE,
    ),
    ("submitting, regenerate", manifest(S.SUBMITTING), True, False, Action.BUY),
    (
        "other request, ambiguous",
        manifest(S.AMBIGUOUS, fingerprint=OTHER),
        False,
        False,
        CHANGED,
    ),
]


@pytest.mark.parametrize(
    ("case", "previous", "regenerate", "series", "expected"),
    POLICY_TABLE,
    ids=[r[0] for r in POLICY_TABLE],
)
def test_decide_resend_once(
    case: str, previous: Manifest | None, regenerate: bool, series: bool, expected: Action
) -> None:
    assert (
        decide(previous, FP, regenerate=regenerate, series=series, on_possibly_billed=RESEND_ONCE) is expected
    )
    assert expected.buys is (expected in (Action.BUY, Action.RESEND, Action.RESUME_SERIES))


@pytest.mark.parametrize("value", ["fail", "resend_once", " RESEND_ONCE ", None])
def test_policy_parses(value: str | None) -> None:
    parsed = parse_policy(value)
    assert parsed is None if value is None else parsed.value == value.strip().lower()


@pytest.mark.parametrize("value", ["retry", "", True, 1, "resend"])
def test_bad_policy_is_refused_naming_the_parameter_and_the_allowed_values(value: object) -> None:
    with pytest.raises(AIHubMixValidationError, match=r"on_possibly_billed.*'fail', 'resend_once'"):
        parse_policy(value)
    with pytest.raises(AIHubMixValidationError, match=r"Connection extra 'on_possibly_billed'"):
        connection_policy({"on_possibly_billed": value})


def test_connection_default_is_fail() -> None:
    assert connection_policy({}) is PossiblyBilledPolicy.FAIL
    assert connection_policy(None) is PossiblyBilledPolicy.FAIL
    assert connection_policy({"on_possibly_billed": "resend_once"}) is RESEND_ONCE


def test_second_send_reserves_apart() -> None:
    assert reservation_key(FP, []) == FP
    assert reservation_key(FP, KEPT) == FP
    assert reservation_key(FP, RESENT) == f"{FP}:resend"
