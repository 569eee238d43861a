"""A paid image is never stranded: each image of an answer is stored on its own, and a retry
fetches only what is missing -- never buys again."""

from __future__ import annotations

import json

import pytest

from airflow_provider_aihubmix.exceptions import AIHubMixDownloadError, StoredImagesMissingError
from tests.reliability.helpers import (
    TaskRunner,
    api_requests,
    billed_posts,
    fast_backoff,
    image_files,
    posts,
    read_manifest,
)

AREA = "Stranded"
MODEL = "qwen-image"  # its answer carries signed URLs on the sandbox storage host
FIRST_IMAGE = r"^/images/.*-0\.[a-z]+$"  # the sandbox names images <w>x<h>-<seed>-<index>.<ext>


def _downloads(sandbox, path: str = r"^/images/") -> list[dict]:
    return sandbox.client.requests(host="storage", path=path)


def test_one_dead_link_does_not_keep_the_other_images(api, sandbox, operator_factory, out_dir, report):
    sandbox.client.inject(kind="expired", status=404, path=FIRST_IMAGE)
    run = TaskRunner(
        operator_factory(model=MODEL, prompt="two, first dead", n=2, hook_kwargs=fast_backoff()), retries=1
    ).run()

    assert not run.ok and run.tries == 2
    err = run.errors[0]
    assert isinstance(err, AIHubMixDownloadError) and err.status_code == 404
    assert "1 of 2 image(s)" in str(err) and "image 0 (http" in str(err) and "Signature" not in str(err)
    # The second image, paid for and downloadable all along, is stored and recorded.
    (stored,) = image_files(out_dir)
    manifest = read_manifest(out_dir, "generate")
    assert manifest["status"] == "received" and [r["index"] for r in manifest["records"]] == [1]
    assert stored.name.startswith("image-001")
    # Bought once; the retry fetched only the missing image, not the stored one.
    assert len(posts(sandbox.client)) == 1
    first_image, second_image = _downloads(sandbox, FIRST_IMAGE), _downloads(sandbox, r"-1\.[a-z]+$")
    assert len(first_image) == 2 and len(second_image) == 1
    api.assert_clean(*run.errors)
    report.row(
        "stranded-one-dead-link",
        area=AREA,
        scenario="n=2, image 0's URL answers 404 on every try, image 1's works",
        expected="image 1 stored and recorded; the error names image 0 and its URL; the retry "
        "fetches only image 0; no re-purchase",
        result=f"{type(err).__name__}; image 1 stored; image 0 fetched {len(first_image)}x, "
        f"image 1 {len(second_image)}x",
        requests=len(api_requests(sandbox.client)) + len(_downloads(sandbox)),
        billed=len(billed_posts(sandbox.client)),
        objects=1,
        duplicates=0,
    )


def test_a_retry_fetches_only_the_missing_image(api, sandbox, operator_factory, out_dir, report):
    sandbox.client.inject(kind="expired", status=404, path=FIRST_IMAGE, count=1)
    run = TaskRunner(
        operator_factory(model=MODEL, prompt="two, first dead once", n=2, hook_kwargs=fast_backoff()),
        retries=1,
    ).run()

    assert run.ok and run.tries == 2, run.errors
    assert sorted(r["index"] for r in run.records) == [0, 1]
    assert len(image_files(out_dir)) == 2
    assert read_manifest(out_dir, "generate")["status"] == "complete"
    assert len(posts(sandbox.client)) == 1
    assert len(_downloads(sandbox, FIRST_IMAGE)) == 2 and len(_downloads(sandbox, r"-1\.[a-z]+$")) == 1
    report.row(
        "stranded-retry-fetches-missing",
        area=AREA,
        scenario="n=2, image 0's URL answers 404 once",
        expected="the retry downloads image 0 only and completes; bought once",
        result="success on try 2; 2 images; 1 POST",
        requests=len(api_requests(sandbox.client)) + len(_downloads(sandbox)),
        billed=len(billed_posts(sandbox.client)),
        objects=2,
        duplicates=0,
    )


def test_reuse_refuses_when_the_stored_images_were_deleted(api, sandbox, operator_factory, out_dir, report):
    build = operator_factory(model=MODEL, prompt="stored, then deleted", n=2)
    first = TaskRunner(build).run()
    assert first.ok, first.error
    for path in image_files(out_dir):
        path.unlink()

    again = TaskRunner(build).run(first_try=2)

    err = again.error
    assert isinstance(err, StoredImagesMissingError) and not again.ok
    assert "2 of 2 image(s)" in str(err) and "regenerate=True" in str(err) and "image-000" in str(err)
    assert len(posts(sandbox.client)) == 1  # nothing bought again, and no success pointing at a 404
    assert read_manifest(out_dir, "generate")["status"] == "complete"
    api.assert_clean(err)
    report.row(
        "stranded-reuse-deleted",
        area=AREA,
        scenario="a complete task's stored images are deleted, then the task runs again",
        expected="refused naming the missing objects and what to do (restore, or regenerate=True); "
        "no request; never 'reusing' images that are gone",
        result=f"{type(err).__name__}; 1 POST in all",
        requests=len(api_requests(sandbox.client)),
        billed=len(billed_posts(sandbox.client)),
        objects=0,
        duplicates=0,
    )


def test_fewer_images_than_asked_are_recorded_as_such(
    api, sandbox, operator_factory, out_dir, report, caplog
):
    # Imagen's safety filter answers fewer images than sampleCount, without an error.
    run = TaskRunner(
        operator_factory(model="imagen-4.0-generate-001", prompt="four asked sandbox:images=1", n=4)
    ).run()

    assert run.ok, run.error
    assert len(run.records) == 1
    manifest = read_manifest(out_dir, "generate")
    assert manifest["images_asked"] == 4 and len(manifest["records"]) == 1
    assert "returned 1 image(s)" in caplog.text and "asked for 4" in caplog.text
    assert len(posts(sandbox.client)) == 1
    report.row(
        "count-fewer",
        area=AREA,
        scenario="Imagen n=4 answered with 1 image",
        expected="success with a warning; the manifest records 4 asked, 1 stored; cost follows the 1",
        result=f"1 stored; images_asked={manifest['images_asked']}; actual ${manifest['actual_cost_usd']}",
        requests=1,
        billed=1,
        objects=1,
        duplicates=0,
    )


def test_more_images_than_asked_flag_a_cost_over_the_cap(
    api, sandbox, operator_factory, out_dir, report, caplog
):
    from airflow_provider_aihubmix.catalog import resolve_model
    from airflow_provider_aihubmix.pricing.cost import estimate_request

    one = estimate_request(resolve_model("imagen-4.0-generate-001"), {"prompt": "x", "sampleCount": 1})
    assert one.total_usd is not None
    cap = round(one.total_usd * 1.5, 6)
    run = TaskRunner(
        operator_factory(
            model="imagen-4.0-generate-001", prompt="one asked sandbox:images=2", n=1, max_cost_usd=cap
        )
    ).run()

    assert run.ok, run.error
    assert len(run.records) == 2 and len(image_files(out_dir)) == 2
    manifest = read_manifest(out_dir, "generate")
    assert manifest["images_asked"] == 1
    assert manifest["cost"]["over_cap"] is True and manifest["cost"]["cap_usd"] == cap
    assert manifest["actual_cost_usd"] > cap
    assert "over its max_cost_usd" in caplog.text
    report.row(
        "count-more-over-cap",
        area=AREA,
        scenario="n=1 answered with 2 images, the actual cost passing max_cost_usd",
        expected="both stored; the manifest and lineage say 1 asked and that the cost passed the cap",
        result=f"2 stored; actual ${manifest['actual_cost_usd']} > cap ${cap}; over_cap flagged",
        requests=1,
        billed=1,
        objects=2,
        duplicates=0,
    )


def test_an_object_storage_path_is_an_output_uri(api, sandbox, operator_factory, out_dir, report):
    from airflow.sdk import ObjectStoragePath

    run = TaskRunner(
        operator_factory(
            model=MODEL, prompt="to an ObjectStoragePath", output_uri=ObjectStoragePath(out_dir.as_uri())
        )
    ).run()

    assert run.ok, run.error
    (stored,) = image_files(out_dir)
    assert run.records[0]["uri"].startswith(out_dir.as_uri()) and stored.name.startswith("image-000")
    assert len(posts(sandbox.client)) == 1


def test_an_output_uri_of_another_type_is_refused_when_the_dag_is_parsed(operator_factory):
    from airflow_provider_aihubmix.exceptions import InvalidOutputURIError

    with pytest.raises(InvalidOutputURIError, match="'output_uri' must be a string"):
        operator_factory(model=MODEL, prompt="x", output_uri=42)()


def test_a_changed_request_keeps_the_earlier_purchase(api, sandbox, operator_factory, out_dir, report):
    from airflow_provider_aihubmix.engine.budget import run_spend
    from airflow_provider_aihubmix.storage import open_store
    from tests.reliability.helpers import DAG_ID, RUN_ID, local_prefix

    first = TaskRunner(operator_factory(model=MODEL, prompt="first wording", n=2)).run()
    assert first.ok, first.error
    earlier_bytes = sorted(p.read_bytes() for p in image_files(out_dir))

    second = TaskRunner(operator_factory(model=MODEL, prompt="second wording")).run(first_try=2)

    assert second.ok, second.error
    prefix = local_prefix(out_dir, "generate")
    (kept,) = (prefix / "earlier").iterdir()
    kept_manifest = json.loads((kept / "manifest.json").read_text())
    assert kept_manifest["status"] == "complete" and len(kept_manifest["records"]) == 2
    assert (
        sorted(p.read_bytes() for p in kept.glob("image-*") if not p.name.endswith(".thumb.webp"))
        == earlier_bytes
    )
    assert all(f"/earlier/{kept.name}/image-" in r["uri"] for r in kept_manifest["records"])
    # The task's own keys hold the new purchase; both purchases count for the run.
    current = read_manifest(out_dir, "generate")
    assert current["input"]["prompt"] == "second wording"
    # The new manifest names the earlier purchase, so the gallery shows and counts it.
    (earlier,) = current["earlier"]
    assert earlier["images"] == 2 and earlier["manifest"].endswith(f"earlier/{kept.name}/manifest.json")
    from airflow_provider_aihubmix.gallery.manifests import earlier_purchases

    assert earlier_purchases(current) == [{"images": 2, "cost_usd": kept_manifest["actual_cost_usd"]}]
    spend = run_spend(open_store(out_dir.as_uri()), DAG_ID, RUN_ID)
    assert len(spend.tasks) == 2 and all(t.status == "complete" for t in spend.tasks)
    assert len(posts(sandbox.client)) == 2
    report.row(
        "stranded-changed-request",
        area=AREA,
        scenario="a task re-run in the same run with a changed prompt and n",
        expected="the earlier, paid images and their manifest are kept under earlier/; the budget and "
        "the run's cost count both purchases",
        result=f"2 earlier images kept; run spend reads {len(spend.tasks)} manifests; 2 POSTs",
        requests=2,
        billed=2,
        objects=3,
        duplicates=0,
    )
