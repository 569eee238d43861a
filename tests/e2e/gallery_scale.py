"""Seed a 1,000-image run for the gallery (issue 25): manifests, images, thumbnails, locations.

The run's mapped tasks wait in a pool without slots (``gallery_dags/e2e_gallery_scale.py``);
this writes for each what a finished purchase leaves: the image (one of a few distinct large
PNGs, hard-linked), its thumbnail, the manifest recording both, and the location XCom the
gallery finds it by (through Airflow's REST API). Then the run is marked a success, as the
purchases would have left it. Used by the e2e test and by ``benchmarks/bench_gallery.py``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from airflow_provider_aihubmix.gallery.location import OUTPUT_LOCATION_XCOM_KEY
from airflow_provider_aihubmix.storage import manifest_key, task_prefix
from airflow_provider_aihubmix.storage.thumbnails import make_thumbnail
from tests.e2e.gallery_dags.e2e_gallery_scale import POOL, TASKS
from tests.e2e.harness import AirflowCluster, HarnessError

SCALE_DAG_ID = "e2e_gallery_scale"
MODELS = ("google/imagen-4.0-fast-generate-001", "doubao/doubao-seedream-4-5", "openai/gpt-image-1")


@dataclass(frozen=True)
class ScaleRun:
    run_id: str
    root: Path  # the store's directory
    image_bytes: int  # every image's size, summed
    seconds: float  # seeding time


def big_png(seed: int, side: int = 2048) -> bytes:
    """A ``side`` x ``side`` RGB PNG of about 6-7 MB at 2048 px (a generated 2K image is 3-8 MB).

    A Mandelbrot channel and a coarse texture give thumbnails real detail (~15 KB as WebP); a fine
    noise channel keeps the PNG from compressing to nothing. Different for each ``seed``.
    """
    from PIL import Image

    spread = 1.5 + 0.1 * (seed % 7)
    fractal = Image.effect_mandelbrot((side, side), (-2.0, -spread / 1.2, 1.0, spread / 1.2), 64 + seed % 50)
    noise = Image.effect_noise((side, side), 30 + seed % 20)
    texture = Image.effect_noise((side // 12, side // 12), 64 + seed % 30).resize((side, side), Image.BICUBIC)
    out = io.BytesIO()
    Image.merge("RGB", (fractal, noise, texture)).save(out, "PNG", compress_level=1)
    return out.getvalue()


def _describe(data: bytes) -> dict[str, Any]:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        width, height, kind = image.width, image.height, (image.format or "png").lower()
    return {
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "width": width,
        "height": height,
        "content_type": f"image/{kind}",
    }


def seed_scale_run(
    cluster: AirflowCluster, file_dir: Path, images: list[bytes], *, tasks: int = TASKS
) -> ScaleRun:
    """Trigger the scale DAG and write ``tasks`` finished purchases into it (images cycle ``images``)."""
    started = time.monotonic()
    root = file_dir / "scale"
    cluster.api("POST", "/pools", json={"name": POOL, "slots": 0, "include_deferred": False})
    run_id = cluster.trigger_dag(SCALE_DAG_ID, conf={})
    deadline = time.monotonic() + 120
    sql = "select count(*) as n from task_instance where dag_id = ? and run_id = ?"
    while cluster.query_db(sql, (SCALE_DAG_ID, run_id))[0]["n"] < tasks:
        if time.monotonic() > deadline:
            raise AssertionError("the scheduler did not expand the scale run's tasks in 120 s")
        time.sleep(0.5)
    # As the purchases would have left it: the run and every task done (the scheduler stops looking).
    cluster.api("PATCH", f"/dags/{SCALE_DAG_ID}/dagRuns/{quote(run_id, safe='')}", json={"state": "success"})
    sources, thumbs = [], []
    for n, data in enumerate(images):
        source = root / f"source-{n}.png"
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_bytes(data)
        thumb = make_thumbnail(data)
        (root / f"source-{n}.thumb.webp").write_bytes(thumb)
        sources.append((source, _describe(data)))
        thumbs.append((root / f"source-{n}.thumb.webp", _describe(thumb)))
    total = 0
    for i in range(tasks):
        prefix = task_prefix(SCALE_DAG_ID, run_id, "gen", i)
        folder = root / prefix
        folder.mkdir(parents=True, exist_ok=True)
        (source, image), (thumb_file, thumb) = sources[i % len(sources)], thumbs[i % len(thumbs)]
        os.link(source, folder / "image-000.png")
        os.link(thumb_file, folder / "image-000.thumb.webp")
        total += image["bytes"]
        model = MODELS[i % len(MODELS)]
        cost = 0.02 + 0.01 * (i % len(MODELS))
        manifest = {
            "version": 1,
            "status": "complete",
            "model": model,
            "family": "imagen",
            "fingerprint": f"scale-{i}",
            "input": {"prompt": f"campaign asset {i // len(MODELS)}", "seed": i},
            "dag_id": SCALE_DAG_ID,
            "run_id": run_id,
            "task_id": "gen",
            "map_index": i,
            "try_number": 1,
            "records": [{"uri": (folder / "image-000.png").as_uri(), "index": 0, "map_index": i, **image}],
            "thumbnails": {"0": {"uri": (folder / "image-000.thumb.webp").as_uri(), **thumb}},
            "actual_cost_usd": cost,
            "cost": {"actual": cost, "images": [{"index": 0, "actual": cost}]},
        }
        (root / manifest_key(prefix)).write_text(json.dumps(manifest))
    location = {"output_uri": root.as_uri(), "conn_id": None, "show_prompt": True}
    path = f"/dags/{SCALE_DAG_ID}/dagRuns/{quote(run_id, safe='')}/taskInstances/gen/xcomEntries"

    for i in range(tasks):  # one at a time: SQLite has one writer
        body = {"key": OUTPUT_LOCATION_XCOM_KEY, "value": location, "map_index": i}
        for attempt in range(3):
            try:
                cluster.api("POST", path, json=body)
                break
            except HarnessError:
                if attempt == 2:
                    raise
                time.sleep(1)
    return ScaleRun(run_id=run_id, root=root, image_bytes=total, seconds=time.monotonic() - started)
