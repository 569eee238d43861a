"""The gallery in a real api-server: what it lists, what it serves, and to whom.

One deployment (scheduler, dag-processor, triggerer, api-server with the plugin from the
package's entry point) runs ``e2e_gallery`` once against the sandbox: two mapped Seedream
tasks with their images on the moto S3 server, an Imagen task on local disk with its prompt
kept out of lineage, and a task refused by moderation. Every test then reads that run
through the api-server, as a browser or a script would.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import pytest
from PIL import Image

from airflow_provider_aihubmix.sandbox import SandboxServer
from airflow_provider_aihubmix.storage import manifest_key, task_prefix
from tests.e2e.browser import chromium, page_with_cookie
from tests.e2e.gallery_dags.e2e_gallery import PROMPTS
from tests.e2e.gallery_dags.e2e_gallery_compare import MODELS as COMPARE_MODELS
from tests.e2e.gallery_deployment import (
    COMPARE_DAG_ID,
    DAG_ID,
    REVIEW_DAG_ID,
    GalleryDeployment,
    start_gallery_deployment,
)
from tests.e2e.gallery_scale import MODELS as SCALE_MODELS
from tests.e2e.gallery_scale import SCALE_DAG_ID, big_png, seed_scale_run
from tests.e2e.harness import AirflowCluster
from tests.fixtures.s3 import MotoServer

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
__all__ = ["chromium"]  # the module-scoped browser fixture


HIDDEN_PROMPT = "a secret product launch poster"
TASKS = {("on_s3", 0), ("on_s3", 1), ("on_disk", -1), ("moderated", -1)}


@pytest.fixture(scope="module")
def gallery(
    tmp_path_factory: pytest.TempPathFactory,
    moto_server: MotoServer,
    sandbox_server: SandboxServer,
    gcs_server: str,
) -> Iterator[GalleryDeployment]:
    sandbox_server.client.reset()
    deployment = start_gallery_deployment(
        tmp_path_factory.mktemp("gallery-home"),
        tmp_path_factory.mktemp("gallery-work"),
        moto_server.endpoint_url,
        sandbox_server.base_url,
        gcs_endpoint=gcs_server,
    )
    print(f"gallery e2e home: {deployment.cluster.home} (api {deployment.base_url})")
    try:
        yield deployment
    finally:
        deployment.cluster.stop()


def q(value: str) -> str:
    return quote(value, safe="")


def api_path(gallery: GalleryDeployment, **query: Any) -> str:
    path = f"/aihubmix/api/gallery/{q(DAG_ID)}/{q(gallery.run_id)}"
    return path + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def image_path(gallery: GalleryDeployment, task_id: str, map_index: int, name: str) -> str:
    return f"/aihubmix/api/images/{q(DAG_ID)}/{q(gallery.run_id)}/{task_id}/{map_index}/{name}"


def stored_manifest(gallery: GalleryDeployment, task_id: str, map_index: int) -> dict[str, Any]:
    """The manifest as the task wrote it, read straight from its store (not through the gallery)."""
    key = manifest_key(task_prefix(DAG_ID, gallery.run_id, task_id, map_index))
    if task_id == "on_s3":
        body = gallery.s3.get_object(Bucket=gallery.bucket, Key=f"images/{key}")["Body"].read()
        return dict(json.loads(body))
    return dict(json.loads((gallery.file_dir / key).read_text()))


def gallery_page(gallery: GalleryDeployment) -> str:
    return f"/aihubmix/gallery/{q(DAG_ID)}/{q(gallery.run_id)}"


def logged_in_page(browser: Browser, gallery: GalleryDeployment, user: str) -> Page:
    """A page in a fresh context holding ``user``'s session cookie, as the Airflow UI leaves it."""
    return page_with_cookie(browser, gallery.base_url, gallery.tokens[user])


def xcom(cluster: AirflowCluster, dag_id: str, run_id: str, task_id: str, map_index: int) -> Any:
    path = f"/dags/{dag_id}/dagRuns/{q(run_id)}/taskInstances/{task_id}/xcomEntries/return_value"
    return cluster.api("GET", path, params={"deserialize": True, "map_index": map_index})["value"]


def raw_get(gallery: GalleryDeployment, path: str, user: str = "admin") -> int:
    """GET with the path sent byte for byte (no client-side normalisation of '..')."""
    url = urlsplit(gallery.base_url)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
    try:
        connection.request("GET", path, headers={"Authorization": f"Bearer {gallery.tokens[user]}"})
        return connection.getresponse().status
    finally:
        connection.close()


def test_gallery_lists_every_image_with_the_metadata_of_its_manifest(gallery: GalleryDeployment) -> None:
    response = gallery.get(api_path(gallery))
    assert response.status_code == 200, response.text
    data = response.json()
    tasks = {(t["task_id"], t["map_index"]): t for t in data["tasks"]}
    assert set(tasks) == TASKS
    assert data["summary"]["images"] == 6 and data["summary"]["failed"] == 1

    for (task_id, map_index), entry in tasks.items():
        manifest = stored_manifest(gallery, task_id, map_index)
        shown = entry["manifest"]
        assert shown["model"] == manifest["model"] and shown["status"] == manifest["status"]
        records = {r["sha256"]: r for r in manifest["records"]}
        assert len(entry["images"]) == len(records)
        # What was billed where the manifest knows it, else the estimate.
        per_image = {
            i["index"]: i["actual"] if i.get("actual") is not None else i.get("estimated")
            for i in (manifest.get("cost") or {}).get("images", [])
        }
        billed = manifest.get("actual_cost_usd")
        assert shown["cost_usd"] == (billed if billed is not None else manifest.get("estimated_cost_usd"))
        for image in entry["images"]:
            record = records[image["sha256"]]
            assert record["uri"].endswith("/" + image["name"])
            assert (image["width"], image["height"], image["content_type"]) == (
                record["width"],
                record["height"],
                record["content_type"],
            )
            assert image["seed"] == record.get("seed", manifest["input"].get("seed"))
            assert image["cost_usd"] == per_image.get(record["index"])
        if task_id == "on_s3":
            assert entry["outcome"] == "complete" and entry["output_uri"] == gallery.s3_uri
            assert shown["prompt"] == PROMPTS[map_index] == manifest["input"]["prompt"]
            assert shown["size"] == "1K" and len(entry["images"]) == 2
        elif task_id == "on_disk":
            assert entry["outcome"] == "complete" and len(entry["images"]) == 2
            assert shown["prompt"] is None and shown["prompt_hidden"] is True
            assert shown["prompt_sha256"] == hashlib.sha256(HIDDEN_PROMPT.encode()).hexdigest()
        else:
            assert entry["outcome"] == "moderated" and entry["state"] == "failed"
            assert entry["images"] == [] and "moderation" in shown["error"]
    # A task that kept its prompt out of lineage keeps it out of the gallery too.
    assert HIDDEN_PROMPT not in response.text

    one = gallery.get(api_path(gallery, task_id="on_s3", map_index=1)).json()
    assert [(t["task_id"], t["map_index"]) for t in one["tasks"]] == [("on_s3", 1)]


def test_images_are_streamed_from_each_tasks_own_store(gallery: GalleryDeployment) -> None:
    data = gallery.get(api_path(gallery)).json()
    served = 0
    for entry in data["tasks"]:
        for image in entry["images"]:
            assert image["src"] == image_path(gallery, entry["task_id"], entry["map_index"], image["name"])
            response = gallery.get(image["src"])
            assert response.status_code == 200, (image["src"], response.text)
            assert hashlib.sha256(response.content).hexdigest() == image["sha256"]
            assert response.headers["content-type"] == image["content_type"]
            assert response.headers["x-content-type-options"] == "nosniff"
            served += 1
    assert served == 6


def test_the_dag_permission_is_enforced_on_every_route(gallery: GalleryDeployment) -> None:
    page = f"/aihubmix/gallery/{q(DAG_ID)}/{q(gallery.run_id)}"
    image = image_path(gallery, "on_s3", 0, "image-000.png")
    own_run = f"/api/v2/dags/{DAG_ID}/dagRuns/{q(gallery.run_id)}"
    for path in (page, api_path(gallery), image):
        assert gallery.get(path, user="viewer").status_code == 200, path  # read-only may look
        outsider = gallery.get(path, user="outsider")
        assert outsider.status_code == 403, (path, outsider.status_code)
        assert not outsider.content.startswith(b"\x89PNG") and b"image-000" not in outsider.content
        anonymous = gallery.get(path, user=None)
        if path == page:  # a person without a session is sent to log in, and back
            assert anonymous.status_code == 303, anonymous.status_code
            assert anonymous.headers["location"].startswith("/auth/login?next=")
            back = parse_qs(urlsplit(anonymous.headers["location"]).query)["next"]
            assert back == [gallery.base_url + unquote(page)]
        else:
            assert anonymous.status_code == 401, path
    # The same verdict as Airflow's own DAG-run page API for the same user.
    assert gallery.get(own_run, user="outsider").status_code == 403
    assert gallery.get(own_run, user="viewer").status_code == 200


def test_paths_and_other_buckets_never_reach_storage(gallery: GalleryDeployment, tmp_path: Path) -> None:
    run = q(gallery.run_id)
    base = f"/aihubmix/api/images/{DAG_ID}/{run}"
    for path in (
        f"{base}/on_disk/-1/..%2Fmanifest.json",
        f"{base}/on_disk/-1/%2e%2e%2f%2e%2e%2fon_s3%2f0%2fimage-000.png",
        f"{base}/on_disk/-1/manifest.json",
        f"{base}/on_s3/0/../../on_disk/-1/image-000.png",
        f"{base}/on_s3/0/image-000.png%00.png",
        f"{base}/on_s3/0/s3:%2F%2F{gallery.bucket}%2Fimages%2Fsecret.png",
        f"{base}/on_s3/0/%2Fetc%2Fpasswd",
        f"{base}/on_s3/0/image-009.png",  # not in the manifest
        f"{base}/moderated/-1/image-000.png",  # a task with no image
        f"/aihubmix/api/images/other_dag/{run}/on_s3/0/image-000.png",
    ):
        assert raw_get(gallery, path) in (403, 404), path

    # A manifest whose records point elsewhere: another bucket, another task's prefix.
    gallery.s3.create_bucket(Bucket=f"{gallery.bucket}-other")
    png = gallery.get(image_path(gallery, "on_s3", 0, "image-000.png")).content
    gallery.s3.put_object(Bucket=f"{gallery.bucket}-other", Key="secret/image-005.png", Body=png)
    key = f"images/{manifest_key(task_prefix(DAG_ID, gallery.run_id, 'on_s3', 1))}"
    original = gallery.s3.get_object(Bucket=gallery.bucket, Key=key)["Body"].read()
    tampered = json.loads(original)
    other_task = tampered["records"][0]["uri"].replace("map_index=1", "map_index=0")
    tampered["records"] += [
        {**tampered["records"][0], "index": 5, "uri": f"s3://{gallery.bucket}-other/secret/image-005.png"},
        {**tampered["records"][0], "index": 6, "uri": other_task.replace("image-000", "image-006")},
        {**tampered["records"][0], "index": 7, "uri": tampered["records"][0]["uri"] + "/../image-007.png"},
    ]
    gallery.s3.put_object(Bucket=gallery.bucket, Key=key, Body=json.dumps(tampered).encode())
    try:
        for name in ("image-005.png", "image-006.png", "image-007.png"):
            assert gallery.get(image_path(gallery, "on_s3", 1, name)).status_code == 404, name
        listed = gallery.get(api_path(gallery, task_id="on_s3", map_index=1)).json()["tasks"][0]
        assert sorted(i["name"] for i in listed["images"]) == ["image-000.png", "image-001.png"]
        # A manifest that names another task instance is not this task's manifest.
        copied = json.loads(original)
        copied["map_index"] = 0
        gallery.s3.put_object(Bucket=gallery.bucket, Key=key, Body=json.dumps(copied).encode())
        assert gallery.get(image_path(gallery, "on_s3", 1, "image-000.png")).status_code == 404
    finally:
        gallery.s3.put_object(Bucket=gallery.bucket, Key=key, Body=original)
    assert gallery.get(image_path(gallery, "on_s3", 1, "image-000.png")).status_code == 200


def test_the_view_image_link_and_the_ui_tabs_point_at_the_gallery(gallery: GalleryDeployment) -> None:
    cluster = gallery.cluster
    for task_id, map_index in TASKS:  # the moderated task too: it recorded where it would store
        path = f"/dags/{DAG_ID}/dagRuns/{q(gallery.run_id)}/taskInstances/{task_id}/links"
        links = cluster.api("GET", path, params={"map_index": map_index} if map_index >= 0 else {})
        link = links["extra_links"]["View image"]
        expected = f"/aihubmix/gallery/{q(DAG_ID)}/{q(gallery.run_id)}?task_id={task_id}"
        assert link == gallery.base_url + expected + (f"&map_index={map_index}" if map_index >= 0 else "")
    plugins = cluster.api("GET", "/plugins")["plugins"]
    (plugin,) = [p for p in plugins if p["name"] == "aihubmix_gallery"]
    assert {v["destination"] for v in plugin["external_views"]} == {"dag_run", "task_instance"}
    assert [a["url_prefix"] for a in plugin["fastapi_apps"]] == ["/aihubmix"]


# ---------------------------------------------------------------- in a real browser


def test_the_gallery_page_shows_every_image_in_chromium(
    gallery: GalleryDeployment, chromium: Browser, tmp_path: Path
) -> None:
    page = logged_in_page(chromium, gallery, "admin")
    page.goto(gallery.base_url + gallery_page(gallery))
    page.wait_for_selector("body[data-loaded=true]", timeout=30_000)
    cards = page.locator("[data-testid=image-card][data-image]")
    assert cards.count() == 6
    # Every <img> really loaded: decoded by the browser, not a broken-image placeholder.
    page.wait_for_function(
        "[...document.querySelectorAll('img.thumb')].every(i => i.complete)", timeout=30_000
    )
    widths = page.eval_on_selector_all("img.thumb", "imgs => imgs.map(i => i.naturalWidth)")
    assert len(widths) == 6 and all(w > 0 for w in widths), widths

    for index in range(cards.count()):
        card = cards.nth(index)
        task_id, map_index = card.get_attribute("data-task"), int(card.get_attribute("data-map-index") or -1)
        assert task_id is not None
        manifest = stored_manifest(gallery, task_id, map_index)
        name = card.get_attribute("data-image")
        (record,) = [r for r in manifest["records"] if r["uri"].endswith("/" + str(name))]
        assert card.locator(".model").inner_text() == manifest["model"]
        facts = {fact.get_attribute("data-fact"): fact.inner_text() for fact in card.locator("dd").all()}
        assert facts["image"].startswith(f"#{record['index']} · {record['width']}\u00d7{record['height']}")
        if "seed" in record or "seed" in manifest["input"]:
            assert facts["seed"] == str(record.get("seed", manifest["input"].get("seed")))
        prompt = card.locator(".prompt").inner_text()
        if task_id == "on_s3":
            assert prompt == manifest["input"]["prompt"]
            assert facts["size"] == "1K"
        else:
            assert prompt.startswith("prompt hidden · sha256 ")
            assert (
                hashlib.sha256(HIDDEN_PROMPT.encode()).hexdigest().startswith(prompt.rsplit(" ", 1)[1][:-1])
            )
        # The thumbnail opens the full image.
        href = card.locator("a.full").get_attribute("href")
        assert href == image_path(gallery, task_id, map_index, str(name))
    moderated = page.locator("[data-testid=image-card][data-outcome=moderated]")
    assert moderated.count() == 1 and "moderation" in moderated.inner_text()
    assert HIDDEN_PROMPT not in page.content()

    page.set_viewport_size({"width": 1280, "height": page.evaluate("document.documentElement.scrollHeight")})
    page.evaluate("Promise.all([...document.images].map(i => i.decode()))")
    page.screenshot(path=str(tmp_path / "gallery.png"), full_page=True)
    print(f"gallery screenshot: {tmp_path / 'gallery.png'}")


def test_the_view_image_link_opens_the_tasks_gallery_in_chromium(
    gallery: GalleryDeployment, chromium: Browser
) -> None:
    path = f"/dags/{DAG_ID}/dagRuns/{q(gallery.run_id)}/taskInstances/on_s3/links"
    link = gallery.cluster.api("GET", path, params={"map_index": 1})["extra_links"]["View image"]
    page = logged_in_page(chromium, gallery, "viewer")
    response = page.goto(link)
    assert response is not None and response.status == 200
    page.wait_for_selector("body[data-loaded=true]", timeout=30_000)
    cards = page.locator("[data-testid=image-card]")
    assert cards.count() == 2
    assert {c.get_attribute("data-task") + c.get_attribute("data-map-index") for c in cards.all()} == {
        "on_s31"
    }
    assert page.locator(".prompt").first.inner_text() == PROMPTS[1]
    page.wait_for_function(
        "[...document.querySelectorAll('img.thumb')].every(i => i.complete && i.naturalWidth > 0)"
    )


def test_an_unauthorised_user_sees_no_image_in_chromium(
    gallery: GalleryDeployment, chromium: Browser
) -> None:
    page = logged_in_page(chromium, gallery, "outsider")
    response = page.goto(gallery.base_url + gallery_page(gallery))
    assert response is not None and response.status == 403
    assert page.locator("img").count() == 0
    image = page.goto(gallery.base_url + image_path(gallery, "on_s3", 0, "image-000.png"))
    assert image is not None and image.status == 403
    assert not image.body().startswith(b"\x89PNG")


# ---------------------------------------------------------------- human review before publishing


def test_a_reviewer_picks_images_in_the_review_example_and_only_those_are_published(
    gallery: GalleryDeployment,
) -> None:
    cluster, run_id = gallery.cluster, gallery.review_run_id
    observer = cluster.observe(REVIEW_DAG_ID, run_id, interval=0.5)
    # Airflow 3.3 parks the task as awaiting_input; 3.1 and 3.2 defer it to the triggerer.
    observer.wait_until(
        lambda o: o.state_of("review") in ("awaiting_input", "deferred"), 180, "the review task to ask"
    )
    details = f"/dags/{REVIEW_DAG_ID}/dagRuns/{q(run_id)}/taskInstances/review/-1/hitlDetails"
    asked = cluster.api("GET", details)
    generated = [record for i in range(3) for record in xcom(cluster, REVIEW_DAG_ID, run_id, "generate", i)]
    # The options are the images themselves; the body links to this run's gallery.
    assert len(asked["options"]) == len(generated) == 6 and asked["multiple"] is True
    gallery_link = gallery.base_url + f"/aihubmix/gallery/{REVIEW_DAG_ID}/{q(run_id)}"
    assert f"]({gallery_link})" in asked["body"]
    listed = gallery.get(f"/aihubmix/api/gallery/{REVIEW_DAG_ID}/{q(run_id)}").json()
    assert listed["summary"]["images"] == 6

    chosen = asked["options"][1:4:2]
    cluster.api("PATCH", details, json={"chosen_options": chosen, "params_input": {}})
    assert observer.wait_for_finish(timeout=180) == "success", observer.task_states

    published = cluster.get_xcom(REVIEW_DAG_ID, run_id, "publish")
    assert len(published) == 2
    keys = sorted(
        item["Key"]
        for item in gallery.s3.list_objects_v2(Bucket=gallery.bucket, Prefix="review/published/")["Contents"]
    )
    assert [f"s3://{gallery.bucket}/{key}" for key in keys] == sorted(published)
    # The bytes are the chosen images', and the Asset event lists them.
    by_place = {(r["map_index"], r["index"]): r for r in generated}
    for label in chosen:
        match = re.search(r"image (\d+) · generate\[(\d+)\]", label)
        assert match, label
        record = by_place[(int(match.group(2)), int(match.group(1)))]
        name = f"generate-{record['map_index']}-image-{record['index']:03d}"
        (key,) = [k for k in keys if name in k]
        body = gallery.s3.get_object(Bucket=gallery.bucket, Key=key)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == record["sha256"]
    events = cluster.api("GET", "/assets/events", params={"source_dag_id": REVIEW_DAG_ID})["asset_events"]
    assert [sorted(e["extra"]["images"]) for e in events] == [sorted(published)]


def test_the_gallery_shows_a_gcs_runs_images_in_chromium(
    gallery: GalleryDeployment, chromium: Browser
) -> None:
    """A run that stored on gs:// (fake-gcs-server): the api-server streams its images from the
    bucket with the task's own connection (google_cloud_default) and Chromium decodes them."""
    cluster = gallery.cluster
    run_id = cluster.trigger_dag("e2e_gallery_gcs", conf={})
    cluster.observe("e2e_gallery_gcs", run_id, interval=0.5).wait_for_finish(timeout=180)
    assert cluster.task_states("e2e_gallery_gcs", run_id) == {"on_gcs": "success"}
    records = xcom(cluster, "e2e_gallery_gcs", run_id, "on_gcs", -1)
    assert [r["uri"].split("/", 3)[:3] for r in records] == [["gs:", "", gallery.bucket]] * 2

    page = logged_in_page(chromium, gallery, "viewer")
    page.goto(f"{gallery.base_url}/aihubmix/gallery/e2e_gallery_gcs/{q(run_id)}")
    page.wait_for_selector("body[data-loaded=true]", timeout=30_000)
    assert page.locator("[data-testid=image-card][data-image]").count() == 2
    page.wait_for_function(
        "[...document.querySelectorAll('img.thumb')].every(i => i.complete)", timeout=30_000
    )
    widths = page.eval_on_selector_all("img.thumb", "imgs => imgs.map(i => i.naturalWidth)")
    assert len(widths) == 2 and all(w > 0 for w in widths), widths
    # The same authorization as any store: a user without the DAG's permission gets nothing.
    image = f"/aihubmix/api/images/e2e_gallery_gcs/{q(run_id)}/on_gcs/-1/image-000.png"
    assert gallery.get(image, user="viewer").status_code == 200
    assert gallery.get(image, user="outsider").status_code == 403


# ---------------------------------------------------------------- at campaign scale (issue 25)


def thumb_path(gallery: GalleryDeployment, task_id: str, map_index: int, name: str) -> str:
    return f"/aihubmix/api/thumbs/{q(DAG_ID)}/{q(gallery.run_id)}/{task_id}/{map_index}/{name}"


def test_thumbnails_are_made_when_stored_and_recorded_with_their_sha256(gallery: GalleryDeployment) -> None:
    data = gallery.get(api_path(gallery)).json()
    served = 0
    for entry in data["tasks"]:
        manifest = stored_manifest(gallery, entry["task_id"], entry["map_index"])
        for image in entry["images"]:
            assert image["thumb"] == thumb_path(gallery, entry["task_id"], entry["map_index"], image["name"])
            recorded = manifest["thumbnails"][str(image["index"])]
            assert image["thumb_sha256"] == recorded["sha256"]
            response = gallery.get(image["thumb"])
            assert response.status_code == 200, response.text
            assert response.headers["content-type"] == "image/webp"
            assert hashlib.sha256(response.content).hexdigest() == recorded["sha256"]
            with Image.open(io.BytesIO(response.content)) as thumb:
                assert max(thumb.size) <= 320 and thumb.size == (recorded["width"], recorded["height"])
            assert len(response.content) < image["bytes"]
            served += 1
    assert served == 6


def test_an_older_runs_thumbnail_is_made_on_first_view_and_kept(gallery: GalleryDeployment) -> None:
    prefix = task_prefix(DAG_ID, gallery.run_id, "on_disk", -1)
    manifest_file = gallery.file_dir / manifest_key(prefix)
    original = manifest_file.read_text()
    older = json.loads(original)
    older.pop("thumbnails")  # as a run stored before thumbnails existed
    manifest_file.write_text(json.dumps(older))
    thumb = gallery.file_dir / prefix / "image-001.thumb.webp"
    thumb.unlink()
    try:
        listed = gallery.get(api_path(gallery, task_id="on_disk")).json()["tasks"][0]
        image = next(i for i in listed["images"] if i["name"] == "image-001.png")
        first = gallery.get(image["thumb"])
        assert first.status_code == 200 and first.headers["content-type"] == "image/webp"
        assert thumb.read_bytes() == first.content  # kept beside the image
        assert gallery.get(image["thumb"]).content == first.content
    finally:
        manifest_file.write_text(original)


def test_thumbnails_and_pages_are_authorised_like_images(gallery: GalleryDeployment) -> None:
    thumb = thumb_path(gallery, "on_s3", 0, "image-000.png")
    paged = api_path(gallery, offset=2, limit=2, model=q(stored_manifest(gallery, "on_s3", 0)["model"]))
    for path in (thumb, paged):
        assert gallery.get(path, user="viewer").status_code == 200, path
        outsider = gallery.get(path, user="outsider")
        assert outsider.status_code == 403 and b"RIFF" not in outsider.content, path
        assert gallery.get(path, user=None).status_code == 401, path
    run = q(gallery.run_id)
    for path in (
        f"/aihubmix/api/thumbs/{COMPARE_DAG_ID}/{run}/on_s3/0/image-000.png",  # another DAG's
        f"/aihubmix/api/thumbs/{DAG_ID}/{run}/on_s3/0/image-000.thumb.webp",  # not an image name
        f"/aihubmix/api/thumbs/{DAG_ID}/{run}/on_s3/0/image-009.png",  # not in the manifest
        f"/aihubmix/api/thumbs/{DAG_ID}/{run}/on_disk/-1/..%2Fmanifest.json",
        f"/aihubmix/api/thumbs/{DAG_ID}/{run}/moderated/-1/image-000.png",
    ):
        assert raw_get(gallery, path) in (403, 404), path


def test_pages_cover_the_run_once_and_filters_count_what_they_show(gallery: GalleryDeployment) -> None:
    whole = gallery.get(api_path(gallery)).json()
    assert whole["page"]["cards"] == 7 and whole["page"]["next_offset"] is None  # 6 images + 1 failed
    seen, offset = [], 0
    while offset is not None:
        data = gallery.get(api_path(gallery, offset=offset, limit=3)).json()
        cards = [(t["task_id"], t["map_index"], i["name"]) for t in data["tasks"] for i in t["images"]]
        cards += [(t["task_id"], t["map_index"], None) for t in data["tasks"] if not t["images"]]
        assert 0 < len(cards) <= 3
        assert data["run_summary"] == whole["run_summary"]  # the totals are the run's, every page
        seen += cards
        offset = data["page"]["next_offset"]
    everything = [(t["task_id"], t["map_index"], i["name"]) for t in whole["tasks"] for i in t["images"]]
    assert sorted(c for c in seen if c[2]) == sorted(everything) and len(seen) == 7

    manifests = {(t, m): stored_manifest(gallery, t, m) for t, m in TASKS}
    by_model: dict[str, int] = {}
    for manifest in manifests.values():
        by_model[manifest["model"]] = by_model.get(manifest["model"], 0) + 1
    assert whole["counts"]["model"] == by_model
    assert whole["counts"]["state"] == {"complete": 3, "moderated": 1}
    assert whole["counts"]["task_id"] == {"moderated": 1, "on_disk": 1, "on_s3": 2}
    for state, expected in (("complete", 3), ("moderated", 1), ("failed", 0), ("ambiguous", 0)):
        data = gallery.get(api_path(gallery, state=state)).json()
        assert len(data["tasks"]) == expected and {t["outcome"] for t in data["tasks"]} <= {state}
    for model, expected in by_model.items():
        data = gallery.get(api_path(gallery, model=q(model))).json()
        assert {t["manifest"]["model"] for t in data["tasks"]} == {model} and len(data["tasks"]) == expected
        assert data["counts"]["state"] == {
            o: n
            for o, n in {
                "complete": sum(
                    1 for m in manifests.values() if m["model"] == model and m["status"] == "complete"
                ),
                "moderated": sum(
                    1 for m in manifests.values() if m["model"] == model and m["status"] == "failed"
                ),
            }.items()
            if n
        }


def test_the_grid_shows_thumbnails_and_each_filter_in_chromium(
    gallery: GalleryDeployment, chromium: Browser
) -> None:
    seedream = stored_manifest(gallery, "on_s3", 0)["model"]
    page = logged_in_page(chromium, gallery, "viewer")
    page.goto(gallery.base_url + gallery_page(gallery))
    page.wait_for_selector("body[data-loaded=true]", timeout=30_000)
    page.wait_for_function(
        "[...document.querySelectorAll('img.thumb')].every(i => i.complete && i.naturalWidth > 0)"
    )
    sources = page.eval_on_selector_all("img.thumb", "imgs => imgs.map(i => i.getAttribute('src'))")
    assert len(sources) == 6 and all("/api/thumbs/" in s for s in sources), sources
    sizes = page.eval_on_selector_all(
        "img.thumb", "imgs => imgs.map(i => Math.max(i.naturalWidth, i.naturalHeight))"
    )
    assert all(0 < s <= 320 for s in sizes), sizes
    for name, value, cards in (
        ("state", "moderated", 1),
        ("state", "complete", 6),
        ("model", seedream, 4),
        ("task_id", "on_disk", 2),
    ):
        page.select_option(f"select[name={name}]", value)
        page.wait_for_selector("body[data-loaded=true]")
        shown = page.locator("[data-testid=image-card]")
        assert shown.count() == cards, (name, value)
        option = page.locator(f"select[name={name}] option[value='{value}']")
        assert option.get_attribute("data-count") is not None
        page.select_option(f"select[name={name}]", "")
        page.wait_for_selector("body[data-loaded=true]")
    # Keyboard: the arrow keys move between cards.
    page.locator("[data-testid=image-card] a.full").first.focus()
    page.keyboard.press("ArrowRight")
    focused = page.evaluate("document.activeElement.closest('[data-testid=image-card]') !== null")
    assert focused
    labels = page.eval_on_selector_all(
        "a.full[href]", "links => links.map(l => l.getAttribute('aria-label'))"
    )
    assert all(label and label.startswith("Open the full image") for label in labels)


def test_the_compare_view_shows_every_models_image_of_a_prompt_in_chromium(
    gallery: GalleryDeployment, chromium: Browser, tmp_path: Path
) -> None:
    run_id = gallery.compare_run_id
    page = logged_in_page(chromium, gallery, "admin")
    page.goto(gallery.base_url + f"/aihubmix/gallery/{COMPARE_DAG_ID}/{q(run_id)}")
    page.wait_for_selector("body[data-loaded=true]", timeout=30_000)
    first = page.locator("[data-testid=image-card]").first
    prompt = first.locator(".prompt").inner_text()
    first.locator("button.compare").click()  # one click from the grid
    page.wait_for_selector("body.comparing[data-loaded=true]", timeout=30_000)
    page.wait_for_function(
        "[...document.querySelectorAll('img.thumb')].every(i => i.complete && i.naturalWidth > 0)"
    )
    cards = page.locator("[data-testid=image-card]")
    assert cards.count() == 3
    models = {c.locator(".model").inner_text() for c in cards.all()}
    assert len(models) == 3 and all(any(m.endswith(name) for m in models) for name in COMPARE_MODELS)
    for card in cards.all():
        assert card.locator(".prompt").inner_text() == prompt
        task_id, map_index = (
            str(card.get_attribute("data-task")),
            int(card.get_attribute("data-map-index") or -1),
        )
        key = manifest_key(task_prefix(COMPARE_DAG_ID, run_id, task_id, map_index))
        manifest = json.loads((gallery.file_dir / "compare" / key).read_text())
        (record,) = manifest["records"]
        facts = {f.get_attribute("data-fact"): f.inner_text() for f in card.locator("dd").all()}
        assert facts["image"].startswith(f"#0 · {record['width']}\u00d7{record['height']}")
        if "seed" in record or "seed" in manifest["input"]:
            assert facts["seed"] == str(record.get("seed", manifest["input"].get("seed")))
        cost = manifest["cost"]["images"][0]
        expected = cost.get("actual") if cost.get("actual") is not None else cost.get("estimated")
        assert facts["cost"].startswith(f"${expected:.4f}")
        src = card.locator("img").get_attribute("src") or ""
        assert "/api/images/" in src  # the comparison shows the full images
    page.set_viewport_size({"width": 1280, "height": page.evaluate("document.documentElement.scrollHeight")})
    page.screenshot(path=str(tmp_path / "gallery-compare.png"), full_page=True)
    print(f"compare screenshot: {tmp_path / 'gallery-compare.png'}")
    page.keyboard.press("Escape")
    page.wait_for_selector("body:not(.comparing)[data-loaded=true]")
    assert page.locator("[data-testid=image-card]").count() == 6


def test_a_thousand_image_run_pages_in_small_json_and_thumbnails_in_chromium(
    gallery: GalleryDeployment, chromium: Browser
) -> None:
    """1,000 tasks, each a 2048x2048 PNG of ~8 MB (three distinct ones, hard-linked): what a first
    look costs is counted in bytes (the timed figures are benchmarks/bench_gallery.py's)."""
    scale = seed_scale_run(gallery.cluster, gallery.file_dir, [big_png(seed) for seed in range(3)])
    print(f"seeded 1,000 tasks in {scale.seconds:.1f} s")
    api = f"/aihubmix/api/gallery/{SCALE_DAG_ID}/{q(scale.run_id)}"
    first = gallery.get(api)
    assert first.status_code == 200, first.text
    assert len(first.content) < 100_000, len(first.content)
    data = first.json()
    assert data["page"]["cards"] == 1000 and data["page"]["next_offset"] == 60
    assert data["run_summary"]["images"] == 1000 and data["run_summary"]["tasks"] == 1000
    expected_cost = sum(0.02 + 0.01 * (i % 3) for i in range(1000))
    assert abs(data["run_summary"]["cost_usd"] - expected_cost) < 1e-6
    assert data["counts"]["model"] == {m: len(range(n, 1000, 3)) for n, m in enumerate(SCALE_MODELS)}
    last = gallery.get(api + "?offset=960&limit=100").json()
    assert [t["map_index"] for t in last["tasks"]] == list(range(960, 1000))
    assert len(gallery.get(api + "?limit=200").content) < 300_000  # the largest page a request may ask

    transferred: list[int] = []
    page = logged_in_page(chromium, gallery, "viewer")
    page.on("requestfinished", lambda request: transferred.append(request.sizes()["responseBodySize"]))
    page.goto(gallery.base_url + f"/aihubmix/gallery/{SCALE_DAG_ID}/{q(scale.run_id)}")
    page.wait_for_selector("body[data-loaded=true]", timeout=60_000)
    page.wait_for_function(
        "[...document.querySelectorAll('img.thumb')].filter(i => i.loading === 'eager')"
        ".every(i => i.complete && i.naturalWidth > 0)",
        timeout=60_000,
    )
    assert page.locator("[data-testid=image-card]").count() == 60
    # Scroll the whole first page into view so every lazy thumbnail loads, then count its bytes.
    height = page.evaluate("document.documentElement.scrollHeight")
    page.set_viewport_size({"width": 1280, "height": height})
    page.wait_for_function(
        "[...document.querySelectorAll('img.thumb')].every(i => i.complete && i.naturalWidth > 0)",
        timeout=60_000,
    )
    page.wait_for_load_state("networkidle")
    assert sum(transferred) < 5_000_000, sum(transferred)
    sources = page.eval_on_selector_all("img.thumb", "imgs => imgs.map(i => i.currentSrc)")
    assert len(sources) == 60 and all("/api/thumbs/" in s for s in sources)
    page.click("[data-go=next]")
    page.wait_for_selector("body[data-loaded=true]")
    assert page.locator("[data-testid=image-card]").first.get_attribute("data-map-index") == "60"
    print(f"first page: {sum(transferred)} bytes; page JSON {len(first.content)} bytes")
