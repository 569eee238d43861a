"""Image downloads from the vendor's storage host: expired, truncated, mislabelled, oversized.
A short or foreign file is never stored, and a retry never buys the image again."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from airflow_provider_aihubmix.exceptions import AIHubMixDownloadError
from tests.reliability.helpers import (
    TaskRunner,
    api_requests,
    billed_posts,
    fast_backoff,
    image_files,
    posts,
    read_manifest,
)

AREA = "Download"
MODEL = "qwen-image"  # its answer carries a signed URL on the sandbox storage host
MIB = 1024 * 1024


def _downloads(sandbox) -> list[dict]:
    return sandbox.client.requests(host="storage", path=r"^/images/")


@pytest.mark.parametrize("status", [403, 404])
def test_expired_url(status, api, sandbox, operator_factory, out_dir, report):
    sandbox.client.inject(kind="expired", status=status)
    run = TaskRunner(
        operator_factory(model=MODEL, prompt=f"expired {status}", hook_kwargs=fast_backoff()), retries=1
    ).run()

    err = run.errors[0]
    assert isinstance(err, AIHubMixDownloadError) and err.status_code == status
    assert "expired or missing" in str(err) and "Signature" not in str(err)  # no signed query shown
    assert not run.ok and run.tries == 2
    # The retry did not buy the image again: it tried the recorded URL once more.
    assert len(posts(sandbox.client)) == 1
    assert len(_downloads(sandbox)) == 2
    assert image_files(out_dir) == []
    manifest = read_manifest(out_dir, "generate")
    assert manifest["status"] != "complete"
    api.assert_clean(*run.errors)
    report.row(
        f"download-expired-{status}",
        area=AREA,
        scenario=f"the signed image URL answers {status} (expired), on every try",
        expected="clear AIHubMixDownloadError (URL shown without its signature); nothing stored; "
        "no re-purchase",
        result=f"{type(err).__name__} HTTP {status}; manifest '{manifest['status']}'; "
        "the retry re-downloaded only",
        requests=len(api_requests(sandbox.client)) + len(_downloads(sandbox)),
        billed=len(billed_posts(sandbox.client)),
        objects=0,
        duplicates=0,
    )


def test_truncated_body_is_downloaded_again(api, sandbox, operator_factory, out_dir, report):
    sandbox.client.inject(kind="truncated", count=1)
    run = TaskRunner(operator_factory(model=MODEL, prompt="truncated once", hook_kwargs=fast_backoff())).run()

    assert run.ok, run.error
    gets = _downloads(sandbox)
    assert [g["fault"] for g in gets] == ["truncated", None]
    (stored,) = image_files(out_dir)
    with Image.open(io.BytesIO(stored.read_bytes())) as image:
        image.load()  # a short file would not decode
    assert stored.stat().st_size == run.records[0]["bytes"]
    assert len(posts(sandbox.client)) == 1
    report.row(
        "download-truncated-once",
        area=AREA,
        scenario="image body cut at half its Content-Length, once",
        expected="the download is retried; the stored file is whole (decodes, size matches)",
        result=f"success after {len(gets)} GETs; {stored.stat().st_size} bytes stored",
        requests=len(api_requests(sandbox.client)) + len(gets),
        billed=1,
        objects=1,
        duplicates=0,
    )


def test_truncated_body_every_time_stores_nothing(api, sandbox, operator_factory, out_dir, report):
    sandbox.client.inject(kind="truncated")
    run = TaskRunner(
        operator_factory(model=MODEL, prompt="always truncated", hook_kwargs=fast_backoff())
    ).run()

    err = run.error
    assert isinstance(err, AIHubMixDownloadError) and "truncated" in str(err)
    assert image_files(out_dir) == []
    assert not any(p.name.startswith(".") or p.suffix == ".part" for p in out_dir.rglob("*") if p.is_file())
    gets = _downloads(sandbox)
    assert len(gets) >= 2 and all(g["fault"] == "truncated" for g in gets)
    report.row(
        "download-truncated-always",
        area=AREA,
        scenario="image body truncated on every download",
        expected="fails after the download attempts; never a short file stored",
        result=f"{type(err).__name__} after {len(gets)} GETs; 0 files",
        requests=len(api_requests(sandbox.client)) + len(gets),
        billed=1,
        objects=0,
        duplicates=0,
    )


def test_wrong_content_type_html_page(api, sandbox, operator_factory, out_dir, report):
    sandbox.client.inject(kind="wrong_content_type")
    run = TaskRunner(operator_factory(model=MODEL, prompt="an html page")).run()

    err = run.error
    assert isinstance(err, AIHubMixDownloadError)
    # Which image, from where (without the signed query): not just the bytes' signature.
    assert "Image 0" in str(err) and "/images/" in str(err) and "Signature" not in str(err)
    assert image_files(out_dir) == []
    api.assert_clean(err)
    report.row(
        "download-wrong-type-html",
        area=AREA,
        scenario="the image URL serves an HTML page (text/html)",
        expected="refused by content sniffing: clear error, nothing stored under an image name",
        result=f"{type(err).__name__}: {err.message}",
        requests=len(api_requests(sandbox.client)) + len(_downloads(sandbox)),
        billed=1,
        objects=0,
        duplicates=0,
    )


def test_wrong_content_type_label_on_real_image(api, sandbox, operator_factory, out_dir, report):
    sandbox.client.inject(kind="wrong_content_type", content_type="application/octet-stream")
    run = TaskRunner(operator_factory(model=MODEL, prompt="a mislabelled png")).run()

    assert run.ok, run.error
    (record,) = run.records
    (stored,) = image_files(out_dir)
    assert record["content_type"].startswith("image/") and stored.suffix in (".png", ".jpg", ".webp")
    report.row(
        "download-wrong-type-label",
        area=AREA,
        scenario="a real image labelled application/octet-stream",
        expected="stored under the sniffed type, not the label",
        result=f"stored as {record['content_type']} ({stored.suffix})",
        requests=len(api_requests(sandbox.client)) + len(_downloads(sandbox)),
        billed=1,
        objects=1,
        duplicates=0,
    )


def test_image_over_the_size_cap(api, sandbox, operator_factory, out_dir, report):
    sandbox.client.inject(kind="huge", size_bytes=3 * MIB)
    run = TaskRunner(operator_factory(model=MODEL, prompt="a huge image", max_image_bytes=1 * MIB)).run()

    err = run.error
    assert isinstance(err, AIHubMixDownloadError)
    assert "over the limit" in str(err) or "exceeds the limit" in str(err)
    assert image_files(out_dir) == []
    report.row(
        "download-over-cap",
        area=AREA,
        scenario="a 3 MiB image with the operator's max_image_bytes = 1 MiB",
        expected="refused before (or while) reading: clear error, nothing stored",
        result=f"{type(err).__name__}: {err.message}",
        requests=len(api_requests(sandbox.client)) + len(_downloads(sandbox)),
        billed=1,
        objects=0,
        duplicates=0,
    )


def test_image_under_the_size_cap_is_stored(api, sandbox, operator_factory, out_dir):
    sandbox.client.inject(kind="huge", size_bytes=MIB // 2)
    run = TaskRunner(operator_factory(model=MODEL, prompt="a big image", max_image_bytes=1 * MIB)).run()
    assert run.ok, run.error
    assert run.records[0]["bytes"] == MIB // 2
