"""The gallery at campaign scale (issue 25): a 1,000-image run's first look, paged vs today's way.

A real Airflow deployment (scheduler, dag-processor, api-server with the gallery plugin) gets
a run of 1,000 tasks, each a 2048x2048 PNG of ~8 MB (``DISTINCT`` distinct ones, hard-linked)
with its thumbnail and manifest (``tests/e2e/gallery_scale.py``). Then, in headless Chromium:

* **paged** (this version): open the gallery page; time until the first page's thumbnails
  are painted (every eager thumbnail decoded, then one animation frame), and the bytes
  transferred once the whole first page (60 cards) has loaded; the first page's JSON, cold
  (the api-server has not read the run: 1,000 manifests) and warm (cached);
* **today's way** (before issue 25): one JSON document of the whole run and every full-size
  image -- the whole-run JSON is fetched as it was (every page of 200, summed), and the full
  images of the first screen (the old page's 24 eager ones) are fetched by the browser and
  timed; the rest of the run's images are counted, not fetched (8 GB).

Prints figures and their ratios; one run (``--reps`` repeats the browser part).

    uv run --no-sync python benchmarks/bench_gallery.py
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.browser import chromium_path  # noqa: E402
from tests.e2e.gallery_scale import SCALE_DAG_ID, big_png, seed_scale_run  # noqa: E402
from tests.e2e.harness import AirflowCluster  # noqa: E402

DISTINCT = 10
OLD_EAGER = 24
ALL_LOADED = "[...document.querySelectorAll('img.thumb')].every(i => i.complete && i.naturalWidth > 0)"
PAINTED = """() => {
  const eager = [...document.querySelectorAll('img.thumb')].filter(i => i.loading === 'eager');
  return document.body.dataset.loaded === 'true' && eager.length > 0
    && eager.every(i => i.complete && i.naturalWidth > 0);
}"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="bench-gallery-"))
    dags = work / "dags"
    dags.mkdir()
    shutil.copy(ROOT / "tests/e2e/gallery_dags/e2e_gallery_scale.py", dags)
    images_dir = work / "images"
    images_dir.mkdir()
    env = {"GALLERY_FILE_URI": images_dir.as_uri(), "AIRFLOW__CORE__LAZY_LOAD_PLUGINS": "False"}
    components = ("scheduler", "dag-processor", "api-server")
    cluster = AirflowCluster(dags, extra_env=env, home=work / "home", components=components)
    cluster.start()
    try:
        started = time.monotonic()
        pngs = [big_png(seed) for seed in range(DISTINCT)]
        scale = seed_scale_run(cluster, images_dir, pngs)
        seeded = time.monotonic() - started
        print(f"seeded 1,000 tasks ({scale.image_bytes / 1e9:.2f} GB of images) in {seeded:.0f} s")
        api = f"/aihubmix/api/gallery/{SCALE_DAG_ID}/{quote(scale.run_id, safe='')}"
        headers = {"Authorization": f"Bearer {cluster.token()}"}
        t0 = time.perf_counter()
        cluster.client.get(api, headers=headers)
        cold_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        warm = cluster.client.get(api, headers=headers)
        warm_s = time.perf_counter() - t0
        page_sizes = []
        whole_json = 0
        offset: int | None = 0
        t0 = time.perf_counter()
        while offset is not None:
            response = cluster.client.get(f"{api}?offset={offset}&limit=200", headers=headers)
            whole_json += len(response.content)
            offset = response.json()["page"]["next_offset"]
        whole_s = time.perf_counter() - t0
        for offset in range(0, 1000, 60):
            page_sizes.append(len(cluster.client.get(f"{api}?offset={offset}", headers=headers).content))
        data = warm.json()
        full_sizes = [i["bytes"] for t in data["tasks"] for i in t["images"]]
        url = cluster.base_url + f"/aihubmix/gallery/{SCALE_DAG_ID}/{quote(scale.run_id, safe='')}"
        painted, transferred, old_first_screen, old_bytes = [], [], [], []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True)
            for _ in range(args.reps):
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                context.add_cookies([{"name": "_token", "value": cluster.token(), "url": cluster.base_url}])
                page = context.new_page()
                sizes: list[int] = []
                page.on("requestfinished", lambda r, sizes=sizes: sizes.append(r.sizes()["responseBodySize"]))
                t0 = time.perf_counter()
                page.goto(url)
                page.wait_for_function(PAINTED, timeout=120_000, polling="raf")
                page.evaluate("new Promise(r => requestAnimationFrame(() => r()))")
                painted.append(time.perf_counter() - t0)
                page.set_viewport_size(
                    {"width": 1280, "height": page.evaluate("document.documentElement.scrollHeight")}
                )
                page.wait_for_function(ALL_LOADED, timeout=120_000)
                page.wait_for_load_state("networkidle")
                transferred.append(sum(sizes))
                # Today's way, first screen: the whole-run JSON, then the 24 eager full-size images.
                srcs = [i["src"] for t in data["tasks"] for i in t["images"]][:OLD_EAGER]
                t0 = time.perf_counter()
                got = page.evaluate(
                    """async ([pages, srcs]) => {
                      let bytes = 0;
                      for (const p of pages) bytes += (await (await fetch(p)).arrayBuffer()).byteLength;
                      const sizes = await Promise.all(srcs.map(async s => {
                        const img = new Image(); img.src = s; await img.decode();
                        return (await (await fetch(s, {cache: 'force-cache'})).arrayBuffer()).byteLength;
                      }));
                      return bytes + sizes.reduce((a, b) => a + b, 0);
                    }""",
                    [[f"{api}?offset={o}&limit=200" for o in range(0, 1000, 200)], srcs],
                )
                old_first_screen.append(time.perf_counter() - t0)
                old_bytes.append(got)
                context.close()
            browser.close()
        image_bytes = scale.image_bytes
        old_run_bytes = whole_json + image_bytes
        report = {
            "first_page_json_bytes": len(warm.content),
            "page_json_bytes_max": max(page_sizes),
            "first_page_json_cold_s": round(cold_s, 3),
            "first_page_json_warm_s": round(warm_s, 3),
            "whole_run_json_bytes": whole_json,
            "whole_run_json_s": round(whole_s, 3),
            "thumbnails_painted_s": [round(v, 2) for v in painted],
            "first_page_transfer_bytes": transferred,
            "old_first_screen_s": [round(v, 2) for v in old_first_screen],
            "old_first_screen_bytes": old_bytes,
            "old_whole_run_bytes": old_run_bytes,
            "full_image_bytes_median": statistics.median(full_sizes),
        }
        print(json.dumps(report, indent=2))
        paint, moved = statistics.median(painted), statistics.median(transferred)
        old_time, old_moved = statistics.median(old_first_screen), statistics.median(old_bytes)
        first_json = len(warm.content)
        lines = [
            f"first page of thumbnails painted: {paint:.2f} s (target < 2 s);",
            f"  today's first screen (whole-run JSON + {OLD_EAGER} full images) {old_time:.2f} s",
            f"  -> {paint / old_time:.3f}x",
            f"first page transfer: {moved / 1e6:.2f} MB (target < 5 MB);",
            f"  today's first screen {old_moved / 1e6:.0f} MB -> {moved / old_moved:.4f}x;",
            f"  today's whole run {old_run_bytes / 1e9:.2f} GB -> {moved / old_run_bytes:.6f}x",
            f"JSON per page: {first_json / 1e3:.1f} KB (max {max(page_sizes) / 1e3:.1f} KB; < 100 KB);",
            f"  whole-run JSON {whole_json / 1e3:.0f} KB -> {first_json / whole_json:.3f}x",
            f"first page JSON: cold {cold_s:.2f} s (1,000 manifests read), warm {warm_s:.3f} s (cached)",
        ]
        print("\n".join(lines))
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
