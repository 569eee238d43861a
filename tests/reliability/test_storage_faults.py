"""S3 (the moto server behind a TCP proxy) unreachable while a task stores what it bought."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_aihubmix.exceptions import AIHubMixPossiblyBilledError
from airflow_provider_aihubmix.storage import AIHubMixStorageError
from tests.fixtures.s3 import aws_connection_json
from tests.reliability.helpers import (
    TaskRunner,
    billed_posts,
    posts,
    s3_image_keys,
    s3_manifest,
)

AREA = "Storage"
MODEL = "qwen-image"
PREFIX = "reliability"
OUTAGE_S = 2.0


@pytest.fixture
def s3_via_proxy(s3_bucket, outage_proxy, monkeypatch):
    # boto3's own retries kept small so the store's retry budget is what is measured.
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_DEFAULT",
        aws_connection_json(
            outage_proxy.endpoint_url,
            config_kwargs={"retries": {"max_attempts": 2, "mode": "standard"}, "connect_timeout": 2},
        ),
    )
    return s3_bucket, outage_proxy


def _builder(
    operator_factory: Callable[..., Callable[[], Any]],
    bucket: Any,
    *,
    prompt: str,
    store_options: dict[str, Any] | None = None,
    after_predict: Callable[[], None] | None = None,
    before_upload: Callable[[], None] | None = None,
) -> Callable[[], Any]:
    build = operator_factory(model=MODEL, prompt=prompt, output_uri=f"s3://{bucket.name}/{PREFIX}")

    def make() -> Any:
        operator = build()
        if store_options:
            from airflow_provider_aihubmix.storage import open_store

            operator.open_store = lambda: open_store(
                operator.resolve_output_uri(), aws_conn_id=operator.output_conn_id, **store_options
            )
        if after_predict is not None:
            predict = operator.hook.send

            def predict_then(*args: Any, **kwargs: Any) -> Any:
                result = predict(*args, **kwargs)
                after_predict()
                return result

            operator.hook.send = predict_then
        if before_upload is not None:
            open_plain = operator.open_store

            def open_with_trap() -> Any:
                store = open_plain()
                put_image = store.put_image

                def trapped(*args: Any, **kwargs: Any) -> Any:
                    before_upload()
                    return put_image(*args, **kwargs)

                store.put_image = trapped
                return store

            operator.open_store = open_with_trap
        return operator

    return make


def test_s3_unavailable_for_a_few_seconds_during_upload(s3_via_proxy, api, sandbox, operator_factory, report):
    bucket, proxy = s3_via_proxy
    timers: list[threading.Timer] = []

    def outage() -> None:
        proxy.down = True
        timer = threading.Timer(OUTAGE_S, lambda: setattr(proxy, "down", False))
        timers.append(timer)
        timer.start()

    run = TaskRunner(
        _builder(operator_factory, bucket, prompt="stored through an outage", after_predict=outage)
    ).run()
    for timer in timers:
        timer.join()

    assert run.ok, run.error
    assert proxy.dropped > 0  # S3 really refused connections during the task
    keys = s3_image_keys(bucket)
    assert len(keys) == 1 and run.records[0]["uri"].endswith(keys[0])
    assert s3_manifest(bucket, PREFIX, "generate")["status"] == "complete"
    assert len(posts(sandbox.client)) == 1 and len(billed_posts(sandbox.client)) == 1
    report.row(
        "storage-outage-short",
        area=AREA,
        scenario=f"S3 refuses every connection for {OUTAGE_S:.0f} s right after the image was bought",
        expected="writes retried within the task; image stored once; not paid twice",
        result=f"success; {proxy.dropped} S3 connections refused and retried",
        requests=len(posts(sandbox.client)),
        billed=1,
        objects=len(keys),
        duplicates=0,
    )


FAST_STORE = {"max_attempts": 3, "retry_base_delay": 0.1, "retry_max_delay": 0.2}


def test_s3_down_past_the_budget_during_upload_then_back(
    s3_via_proxy, api, sandbox, operator_factory, report
):
    bucket, proxy = s3_via_proxy

    def down() -> None:
        proxy.down = True

    def heal(try_number: int) -> None:
        if try_number == 2:
            proxy.down = False

    build = _builder(
        operator_factory, bucket, prompt="upload fails for good", store_options=FAST_STORE, before_upload=down
    )
    first = TaskRunner(build, before_try=heal).run()
    err = first.error
    assert isinstance(err, AIHubMixStorageError) and "after 3 attempts" in str(err)
    proxy.down = False
    # No partial object, and no manifest claiming success.
    assert s3_image_keys(bucket) == []
    assert bucket.client.list_multipart_uploads(Bucket=bucket.name).get("Uploads", []) == []
    status_after_failure = s3_manifest(bucket, PREFIX, "generate")["status"]
    assert status_after_failure != "complete"

    # S3 is back: the Airflow retry stores the image it already bought, without buying it again.
    retry = TaskRunner(
        _builder(operator_factory, bucket, prompt="upload fails for good", store_options=FAST_STORE)
    ).run(first_try=2)
    assert retry.ok, retry.error
    assert len(s3_image_keys(bucket)) == 1
    assert s3_manifest(bucket, PREFIX, "generate")["status"] == "complete"
    assert len(posts(sandbox.client)) == 1
    api.assert_clean(err)
    report.row(
        "storage-outage-past-budget",
        area=AREA,
        scenario="S3 down from the first image upload past the store's retry budget (scaled: 3 tries)",
        expected="clear AIHubMixStorageError; no partial object; manifest not 'complete'; "
        "the retry stores the paid image without buying it again",
        result=f"try 1: {type(err).__name__}, manifest '{status_after_failure}'; "
        "try 2: stored, 1 POST in all",
        requests=len(posts(sandbox.client)),
        billed=1,
        objects=1,
        duplicates=0,
    )


def test_s3_down_right_after_the_answer(s3_via_proxy, api, sandbox, operator_factory, report):
    bucket, proxy = s3_via_proxy

    def down() -> None:
        proxy.down = True

    build = _builder(
        operator_factory, bucket, prompt="answer never recorded", store_options=FAST_STORE, after_predict=down
    )
    first = TaskRunner(build).run()
    assert isinstance(first.error, AIHubMixStorageError)
    proxy.down = False
    assert s3_image_keys(bucket) == []
    manifest = s3_manifest(bucket, PREFIX, "generate")
    assert manifest["status"] == "submitting"  # the last write that reached S3

    retry = TaskRunner(
        _builder(operator_factory, bucket, prompt="answer never recorded", store_options=FAST_STORE)
    ).run(first_try=2)
    assert isinstance(retry.error, AIHubMixPossiblyBilledError)
    assert len(posts(sandbox.client)) == 1
    report.row(
        "storage-outage-before-record",
        area=AREA,
        scenario="S3 down from the moment the answer arrives (nothing about it can be recorded)",
        expected="clear failure; no partial object; the retry refuses to buy again (possibly billed)",
        result=f"try 1: {type(first.error).__name__}; try 2: {type(retry.error).__name__}; 1 POST",
        requests=len(posts(sandbox.client)),
        billed=1,
        objects=0,
        duplicates=0,
    )
