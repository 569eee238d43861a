"""``on_possibly_billed`` on the operator: its own value wins, else the connection extra, else "fail"."""

from __future__ import annotations

import json

import pytest

from airflow_provider_aihubmix.exceptions import AIHubMixValidationError
from airflow_provider_aihubmix.operators.images import AIHubMixOpenAIImageOperator
from airflow_provider_aihubmix.possibly_billed import PossiblyBilledPolicy


def operator(**kwargs: object) -> AIHubMixOpenAIImageOperator:
    return AIHubMixOpenAIImageOperator(
        task_id="poster",
        prompt="x",
        output_uri="file:///tmp/aihubmix-policy",
        aihubmix_conn_id="policy",
        **kwargs,
    )


def connection(monkeypatch: pytest.MonkeyPatch, extra: dict[str, object]) -> None:
    conn = {"conn_type": "aihubmix", "host": "http://127.0.0.1:1", "password": "sk-test", "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_POLICY", json.dumps(conn))


@pytest.mark.parametrize(
    ("own", "extra", "expected"),
    [
        (None, {}, PossiblyBilledPolicy.FAIL),
        (None, {"on_possibly_billed": "resend_once"}, PossiblyBilledPolicy.RESEND_ONCE),
        ("fail", {"on_possibly_billed": "resend_once"}, PossiblyBilledPolicy.FAIL),
        ("resend_once", {}, PossiblyBilledPolicy.RESEND_ONCE),
    ],
)
def test_the_operator_value_wins_then_the_connection_then_fail(
    monkeypatch: pytest.MonkeyPatch, own: str | None, extra: dict[str, object], expected: PossiblyBilledPolicy
) -> None:
    connection(monkeypatch, extra)
    assert operator(on_possibly_billed=own).possibly_billed_policy() is expected


def test_a_bad_connection_extra_is_refused_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    connection(monkeypatch, {"on_possibly_billed": "always"})
    with pytest.raises(
        AIHubMixValidationError, match=r"Connection extra 'on_possibly_billed'.*'resend_once'"
    ):
        operator().possibly_billed_policy()


def test_a_bad_operator_value_is_refused_when_built() -> None:
    with pytest.raises(
        AIHubMixValidationError, match=r"parameter 'on_possibly_billed'.*'fail', 'resend_once'"
    ):
        operator(on_possibly_billed="twice")
