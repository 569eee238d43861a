"""API faults on the billable POST and on polls: rate limits, 5xx, refused and reset connections,
read timeouts, unreadable answers. Nothing is paid twice; every failure is a clear, typed error."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from airflow_provider_aihubmix.exceptions import (
    AIHubMixBadRequestError,
    AIHubMixPossiblyBilledError,
    AIHubMixResponseError,
    AIHubMixUnreadableAnswerError,
    AIHubMixUpstreamError,
)
from tests.reliability.helpers import (
    PREDICT_PATH,
    TASK_PATH,
    LateListener,
    TaskRunner,
    api_requests,
    billed_posts,
    fast_backoff,
    free_port,
    gaps,
    image_files,
    local_prefix,
    posts,
    read_manifest,
)

AREA = "API"
SYNC_MODEL = "qwen-image"  # answers with an image URL: the download path is exercised too
# The issue asks for 429 during 30 s; the suite uses 3 s so CI stays fast (same code path).
RATE_LIMIT_PERIOD_S = 3.0


def _statuses(records: list[dict[str, Any]]) -> list[Any]:
    return [r["status"] for r in records]


def test_429_with_retry_after_for_a_period_then_ok(api, sandbox, operator_factory, out_dir, report):
    api.connect(max_retries=8)
    sandbox.client.inject(
        kind="status", status=429, retry_after=1, duration_s=RATE_LIMIT_PERIOD_S, path=PREDICT_PATH
    )
    started = time.monotonic()
    run = TaskRunner(operator_factory(model=SYNC_MODEL, prompt="rate limited, Retry-After")).run()
    elapsed = time.monotonic() - started

    sent = posts(sandbox.client)
    waits = gaps(sent)
    assert run.ok, run.error
    assert _statuses(sent)[-1] == 200 and set(_statuses(sent)[:-1]) == {429}
    # Retry-After: 1 is honoured: no attempt came sooner than a second after the previous one.
    assert all(w >= 0.99 for w in waits), waits
    # Bounded: one attempt per Retry-After during the period, plus the one that succeeds.
    assert len(sent) <= RATE_LIMIT_PERIOD_S / 1 + 2
    assert len(billed_posts(sandbox.client)) == 1
    assert len(image_files(out_dir)) == 1
    report.row(
        "api-429-retry-after",
        area=AREA,
        scenario=f"429 with Retry-After: 1 for {RATE_LIMIT_PERIOD_S:.0f} s (issue: 30 s), then OK",
        expected="task succeeds; every gap >= Retry-After; request count bounded",
        result=f"success after {len(sent)} POSTs in {elapsed:.1f} s; min gap {min(waits):.2f} s",
        requests=len(sent),
        billed=1,
        objects=1,
        duplicates=0,
    )


def test_429_without_retry_after_backs_off_exponentially(api, sandbox, operator_factory, out_dir, report):
    api.connect(max_retries=8)
    sandbox.client.inject(kind="status", status=429, duration_s=RATE_LIMIT_PERIOD_S, path=PREDICT_PATH)
    # Jitter pinned at 50 %: the backoff is then 0.5, 1, 2, 4 s (base 1 s, doubling, capped at 30 s).
    factory = operator_factory(
        model=SYNC_MODEL, prompt="rate limited, no Retry-After", hook_kwargs={"jitter": lambda: 0.5}
    )
    run = TaskRunner(factory).run()

    sent = posts(sandbox.client)
    waits = gaps(sent)
    assert run.ok, run.error
    assert _statuses(sent)[-1] == 200 and set(_statuses(sent)[:-1]) == {429}
    expected_waits = [0.5 * 2**i for i in range(len(waits))]
    assert all(w >= e - 0.01 for w, e in zip(waits, expected_waits, strict=True)), (waits, expected_waits)
    assert len(sent) <= 6  # 0.5 + 1 + 2 s already outlasts the 3 s period
    assert len(billed_posts(sandbox.client)) == 1 and len(image_files(out_dir)) == 1
    report.row(
        "api-429-backoff",
        area=AREA,
        scenario=f"429 without Retry-After for {RATE_LIMIT_PERIOD_S:.0f} s (issue: 30 s), then OK",
        expected="task succeeds; exponential backoff between attempts; request count bounded",
        result=f"success after {len(sent)} POSTs; gaps {waits} s",
        requests=len(sent),
        billed=1,
        objects=1,
        duplicates=0,
    )


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_burst_of_5xx_is_retried_and_paid_once(status, api, sandbox, operator_factory, out_dir, report):
    sandbox.client.inject(kind="status", status=status, count=3, path=PREDICT_PATH)
    run = TaskRunner(
        operator_factory(model=SYNC_MODEL, prompt=f"burst {status}", hook_kwargs=fast_backoff())
    ).run()

    sent = posts(sandbox.client)
    assert run.ok, run.error
    assert _statuses(sent) == [status, status, status, 200]
    assert len(billed_posts(sandbox.client)) == 1 and len(image_files(out_dir)) == 1
    report.row(
        f"api-burst-{status}",
        area=AREA,
        scenario=f"burst of 3 x HTTP {status} on the prediction POST",
        expected="retried within the task (the gateway refused, nothing billed); paid once",
        result=f"success on attempt {len(sent)}",
        requests=len(sent),
        billed=1,
        objects=1,
        duplicates=0,
    )


def test_5xx_past_the_budget_fails_clearly_then_the_airflow_retry_pays_once(
    api, sandbox, operator_factory, out_dir, report
):
    api.connect(max_retries=2)
    rule = sandbox.client.inject(kind="status", status=503, path=PREDICT_PATH)

    def heal(try_number: int) -> None:
        if try_number == 2:
            sandbox.client._call("DELETE", f"/faults/{rule['id']}")

    run = TaskRunner(
        operator_factory(model=SYNC_MODEL, prompt="503 past the budget", hook_kwargs=fast_backoff()),
        retries=1,
        before_try=heal,
    ).run()

    first = run.errors[0]
    assert isinstance(first, AIHubMixUpstreamError)
    assert "after 3 attempts" in str(first) and first.request_id and first.request_id.startswith("sbx-")
    assert run.ok and run.tries == 2
    sent = posts(sandbox.client)
    assert _statuses(sent) == [503, 503, 503, 200]
    assert len(billed_posts(sandbox.client)) == 1 and len(image_files(out_dir)) == 1
    api.assert_clean(first)
    report.row(
        "api-5xx-exhausted",
        area=AREA,
        scenario="HTTP 503 on every attempt (max_retries=2), fault gone before the Airflow retry",
        expected="try 1 fails with AIHubMixUpstreamError (X-Request-Id); try 2 submits and succeeds",
        result=f"try 1: {type(first).__name__}; try 2: success",
        requests=len(sent),
        billed=1,
        objects=1,
        duplicates=0,
    )


def test_connection_refused_then_ok(api, sandbox, operator_factory, out_dir, report):
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        time.sleep(seconds)

    sandbox_port = int(sandbox.base_url.rsplit(":", 1)[1])
    with LateListener(sandbox_port, delay_s=1.0) as listener:
        api.connect(host=listener.url)
        run = TaskRunner(
            operator_factory(
                model=SYNC_MODEL,
                prompt="refused, then ok",
                hook_kwargs={"jitter": lambda: 0.5, "sleep": sleep},
            )
        ).run()
    assert run.ok, run.error
    assert len(sleeps) >= 1  # at least one connect was refused and retried
    assert len(posts(sandbox.client)) == 1 and len(billed_posts(sandbox.client)) == 1
    assert len(image_files(out_dir)) == 1
    report.row(
        "api-refused-then-ok",
        area=AREA,
        scenario="connection refused for 1 s (nothing listening), then the API is back",
        expected="connect errors retried (nothing was sent, so safe even for the POST); paid once",
        result=f"success after {len(sleeps)} refused attempt(s)",
        requests=len(sleeps) + 1,
        billed=1,
        objects=1,
        duplicates=0,
    )


def test_connection_refused_for_good_fails_clearly(api, sandbox, operator_factory, out_dir, report):
    host = f"127.0.0.1:{free_port()}"
    api.connect(host=f"http://{host}", max_retries=2)
    run = TaskRunner(
        operator_factory(model=SYNC_MODEL, prompt="nobody listens", hook_kwargs=fast_backoff())
    ).run()
    err = run.error
    assert isinstance(err, AIHubMixUpstreamError)
    assert "ConnectError after 3 attempt(s)" in str(err)
    assert f"POST http://{host}/v1/models/" in str(err)  # the error names the host it could not reach
    assert api_requests(sandbox.client) == []
    assert read_manifest(out_dir, "generate")["status"] == "failed"  # nothing billed: retry may submit
    api.assert_clean(err)
    report.row(
        "api-refused",
        area=AREA,
        scenario="connection refused on every attempt",
        expected="clear AIHubMixUpstreamError after the retry budget; manifest 'failed' (nothing billed)",
        result=f"{type(err).__name__}: {err.message}",
        requests=0,
        billed=0,
        objects=0,
        duplicates=0,
    )


@pytest.mark.parametrize(
    ("kind", "billed"),
    [("reset_after_send", 1), ("drop", 0)],
    ids=["reset-after-processing", "dropped-before-processing"],
)
def test_connection_reset_before_the_response_is_never_resubmitted(
    kind, billed, api, sandbox, operator_factory, out_dir, report
):
    sandbox.client.inject(kind=kind, count=1, path=PREDICT_PATH)
    run = TaskRunner(
        operator_factory(model=SYNC_MODEL, prompt=f"lost answer {kind}", hook_kwargs=fast_backoff()),
        retries=2,
    ).run()

    assert not run.ok and run.tries == 3
    assert all(isinstance(e, AIHubMixPossiblyBilledError) for e in run.errors)
    assert "may have been billed" in str(run.errors[0])
    # One POST in all: neither the hook nor the two Airflow retries sent it again.
    assert len(posts(sandbox.client)) == 1
    assert len(billed_posts(sandbox.client)) == billed
    manifest = read_manifest(out_dir, "generate")
    assert manifest["status"] == "ambiguous"
    assert [a["status"] for a in manifest["attempts"]] == ["submitting", "ambiguous"]
    assert image_files(out_dir) == []
    api.assert_clean(*run.errors, manifest)
    report.row(
        f"api-{kind}",
        area=AREA,
        scenario=(
            "connection reset after the POST was processed (answer lost)"
            if kind == "reset_after_send"
            else "connection dropped before the POST was processed (client cannot tell the difference)"
        ),
        expected="no blind retry: AIHubMixPossiblyBilledError; manifest 'ambiguous'; Airflow retries refuse",
        result=f"{run.tries} tries, each {type(run.errors[-1]).__name__}; 1 POST",
        requests=1,
        billed=billed,
        objects=0,
        duplicates=0,
    )


def test_connection_reset_on_a_task_poll_is_retried(api, sandbox, operator_factory, out_dir, report):
    sandbox.client.inject(kind="reset_after_send", count=2, path=TASK_PATH)
    run = TaskRunner(
        operator_factory(model="flux-2-pro", prompt="poll reset", hook_kwargs=fast_backoff())
    ).run()
    assert run.ok, run.error
    polls = api_requests(sandbox.client, TASK_PATH)
    assert sum(1 for r in polls if r["fault"] == "reset_after_send") == 2
    assert len(posts(sandbox.client)) == 1 and len(image_files(out_dir)) == 1
    report.row(
        "api-reset-poll",
        area=AREA,
        scenario="connection reset on 2 task-status polls (GET)",
        expected="GETs are safe to repeat: retried, task succeeds, one submission",
        result=f"success; {len(polls)} polls",
        requests=len(polls) + 1,
        billed=1,
        objects=1,
        duplicates=0,
    )


def test_read_timeout_on_the_billable_post(api, sandbox, operator_factory, out_dir, report):
    api.connect(read_timeout=1)
    sandbox.client.inject(kind="slow", delay_s=3, count=1, path=PREDICT_PATH)
    run = TaskRunner(
        operator_factory(model=SYNC_MODEL, prompt="slow answer", hook_kwargs=fast_backoff()), retries=1
    ).run()

    err = run.errors[0]
    assert isinstance(err, AIHubMixPossiblyBilledError)
    assert "ReadTimeout" in str(err) and "may have been billed" in str(err)
    assert isinstance(run.errors[1], AIHubMixPossiblyBilledError)  # the retry refuses too
    assert len(posts(sandbox.client)) == 1 and len(billed_posts(sandbox.client)) == 1
    manifest = read_manifest(out_dir, "generate")
    assert manifest["status"] == "ambiguous"
    ambiguous = [a for a in manifest["attempts"] if a["status"] == "ambiguous"]
    assert len(ambiguous) == 1 and "ReadTimeout" in ambiguous[0]["error"]
    api.assert_clean(*run.errors, manifest)
    report.row(
        "api-read-timeout",
        area=AREA,
        scenario="read timeout (1 s) on the billable POST; the sandbox answers after 3 s",
        expected="no blind retry; AIHubMixPossiblyBilledError; manifest records the ambiguous attempt",
        result=f"{type(err).__name__}; manifest 'ambiguous'; the Airflow retry refused to resubmit",
        requests=1,
        billed=1,
        objects=0,
        duplicates=0,
    )


@pytest.mark.parametrize("kind", ["malformed_json", "unknown_shape"])
def test_unreadable_answer_to_a_billed_post(kind, api, sandbox, operator_factory, out_dir, report):
    sandbox.client.inject(kind=kind, count=1, path=PREDICT_PATH)
    run = TaskRunner(
        operator_factory(model=SYNC_MODEL, prompt=f"answer {kind}", hook_kwargs=fast_backoff()), retries=1
    ).run()

    err = run.errors[0]
    assert isinstance(err, AIHubMixResponseError)
    assert err.request_id and err.request_id.startswith("sbx-")
    assert f"X-Request-Id={err.request_id}" in str(err)
    assert err.body_excerpt and "body: " in str(err)
    # The gateway processed (and billed) the prediction; its answer is unreadable. The Airflow
    # retry must not buy it again.
    assert len(billed_posts(sandbox.client)) == 1
    assert len(posts(sandbox.client)) == 1
    # The answer (valid JSON, or the text of one that is not JSON) is kept beside the manifest; the
    # retry re-read it instead of buying again.
    assert isinstance(run.errors[1], AIHubMixUnreadableAnswerError)
    assert "answer.json" in str(run.errors[1]) and "Not submitting again" in str(run.errors[1])
    saved = json.loads((local_prefix(out_dir, "generate") / "answer.json").read_text())
    assert ("text" in saved) == (kind == "malformed_json") and ("body" in saved) == (kind == "unknown_shape")
    assert read_manifest(out_dir, "generate")["status"] == "ambiguous"
    api.assert_clean(*run.errors)
    report.row(
        f"api-{kind.replace('_', '-')}",
        area=AREA,
        scenario="HTTP 200 with "
        + ("half a JSON body" if kind == "malformed_json" else "JSON of no known shape"),
        expected="clear AIHubMixResponseError with X-Request-Id and a scrubbed body excerpt; not resubmitted",
        result=f"{type(err).__name__} ({err.request_id}); manifest 'ambiguous'; retry refused",
        requests=1,
        billed=1,
        objects=0,
        duplicates=0,
    )


def test_http_200_with_an_error_body(api, sandbox, operator_factory, out_dir, report):
    sandbox.client.inject(
        kind="error_200", status=400, message="size 7x7 is not supported", count=1, path=PREDICT_PATH
    )
    run = TaskRunner(
        operator_factory(model=SYNC_MODEL, prompt="error in a 200", hook_kwargs=fast_backoff())
    ).run()
    err = run.error
    assert isinstance(err, AIHubMixBadRequestError)
    assert "size 7x7 is not supported" in str(err)
    assert err.request_id and f"X-Request-Id={err.request_id}" in str(err) and err.body_excerpt
    assert len(posts(sandbox.client)) == 1 and billed_posts(sandbox.client) == []
    assert read_manifest(out_dir, "generate")["status"] == "failed"
    api.assert_clean(err)
    report.row(
        "api-error-200",
        area=AREA,
        scenario="HTTP 200 whose body is an error object (400-like)",
        expected="typed error (AIHubMixBadRequestError) with X-Request-Id and excerpt; manifest 'failed'",
        result=f"{type(err).__name__}: {err.message}",
        requests=1,
        billed=0,
        objects=0,
        duplicates=0,
    )


def test_http_200_with_a_transient_error_body_is_retried(api, sandbox, operator_factory, out_dir, report):
    sandbox.client.inject(kind="error_200", status=503, count=2, path=PREDICT_PATH)
    run = TaskRunner(
        operator_factory(model=SYNC_MODEL, prompt="transient error in a 200", hook_kwargs=fast_backoff())
    ).run()
    assert run.ok, run.error
    sent = posts(sandbox.client)
    assert len(sent) == 3 and len(billed_posts(sandbox.client)) == 1
    assert len(image_files(out_dir)) == 1
    report.row(
        "api-error-200-transient",
        area=AREA,
        scenario="HTTP 200 carrying a 503-like error body, twice",
        expected="treated like a 503: retried, paid once",
        result="success on attempt 3",
        requests=len(sent),
        billed=1,
        objects=1,
        duplicates=0,
    )
