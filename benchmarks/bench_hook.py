"""Benchmark 2: images per second through AIHubMixHook + storage vs a minimal raw httpx loop.

The provider's path is what an operator runs for a sync model: ``hook.predict`` (validation,
request, retries policy, response normalisation) then ``ImageCollector.store_image`` (stream
the image or decode base64, hash, sniff, write to ``file://`` atomically with fsync). The
baseline is the loop a user would write by hand with httpx: POST, ``.json()``, GET the URL
(or ``b64decode``), write the file. Also shown: the raw loop with the same durability
(temporary file, fsync, rename), to separate what durability costs from what our code costs.

The sandbox runs as its own process at zero latency (images cached after the first request,
so the server is as cheap as it gets); each measurement is a fresh child process, the three
loops interleaved per repetition. Throughput is images per wall-clock second of the loop.

    uv run --no-sync python benchmarks/bench_hook.py [--reps 5] [--images 200]
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchlib as common

IMPLS = ("ours", "ours_dir_fsync", "raw", "raw_fsync")
LABELS = {
    "ours": "AIHubMixHook + store",
    "ours_dir_fsync": "same + directory fsync per image (before issue 26)",
    "raw": "raw httpx loop",
    "raw_fsync": "raw httpx + fsync/rename",
}
CASES = {
    # URL answer: the image is downloaded from the sandbox's storage host.
    "qwen-image (URL, 1024 px PNG)": (
        "qwen-image",
        "/v1/models/qianfan/qwen-image/predictions",
        {"prompt": "bench", "seed": 7},
    ),
    # base64 answer: the image is inside the JSON.
    "gpt-image-1 (b64, 1024 px PNG)": (
        "gpt-image-1",
        "/v1/models/openai/gpt-image-1/predictions",
        {"prompt": "bench", "size": "1024x1024", "output_format": "png"},
    ),
}


def _ours(base_url: str, model: str, params: dict[str, Any], n: int, out_dir: str) -> float:
    from airflow_provider_aihubmix.engine.run import ImageCollector, TaskIdentity
    from airflow_provider_aihubmix.hooks.aihubmix import AIHubMixHook
    from airflow_provider_aihubmix.storage import open_store

    hook = AIHubMixHook(api_key=common.API_KEY, base_url=base_url, tasks_base_url=base_url)
    store = open_store(f"file://{out_dir}")
    identity = TaskIdentity(dag_id="bench", run_id="run", task_id="generate", map_index=-1, try_number=1)
    collector = ImageCollector(hook=hook, store=store, model=model, identity=identity)

    def once() -> None:
        result = hook.predict(model, params)
        for index, image in enumerate(result.images):
            collector.store_image(index, image, None)

    once()  # warm: connection, imports, the sandbox's image cache
    started = time.perf_counter()
    for _ in range(n):
        once()
    return n / (time.perf_counter() - started)


def _raw(base_url: str, path: str, params: dict[str, Any], n: int, out_dir: str, durable: bool) -> float:
    import httpx

    api = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {common.API_KEY}"}, timeout=60)
    images = httpx.Client(timeout=60)  # no credentials for the image host

    def write(name: str, chunks: Any) -> None:
        final = os.path.join(out_dir, name)
        target = final + ".part" if durable else final
        with open(target, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        if durable:
            os.replace(target, final)

    def once() -> None:
        response = api.post(path, json={"input": params})
        response.raise_for_status()
        output = response.json()["output"]
        if isinstance(output, dict):  # OpenAI family: base64 inside the JSON
            for index, item in enumerate(output["b64_json"]):
                write(f"image-{index}.png", [base64.b64decode(item["bytesBase64"])])
        else:
            for index, item in enumerate(output):
                with images.stream("GET", item["url"]) as download:
                    download.raise_for_status()
                    write(f"image-{index}.png", download.iter_bytes(64 * 1024))

    once()
    started = time.perf_counter()
    for _ in range(n):
        once()
    return n / (time.perf_counter() - started)


def child(opts: argparse.Namespace) -> None:
    model, path, params = CASES[opts.case]
    with tempfile.TemporaryDirectory(prefix="bench-hook-") as out_dir:
        if opts.impl.startswith("ours"):
            if opts.impl == "ours_dir_fsync":
                # Baseline: the per-image directory fsync the store did before issue 26 (the
                # manifest's, written after the images in the same directory, now covers it).
                from airflow_provider_aihubmix.storage import local

                put_image = local.LocalObjectStore.put_image

                def put_image_dir_fsync(self: Any, key_stem: str, *args: Any, **kwargs: Any) -> Any:
                    stored = put_image(self, key_stem, *args, **kwargs)
                    local._fsync_dir(os.path.dirname(self.path_for(key_stem)))
                    return stored

                local.LocalObjectStore.put_image = put_image_dir_fsync  # type: ignore[method-assign]
            rate = _ours(opts.base_url, model, params, opts.images, out_dir)
        else:
            rate = _raw(opts.base_url, path, params, opts.images, out_dir, durable=opts.impl == "raw_fsync")
    common.emit({"images_per_s": rate})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--images", type=int, default=200, help="images per measured loop")
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--impl", choices=IMPLS)
    parser.add_argument("--case", choices=sorted(CASES))
    parser.add_argument("--base-url")
    opts = parser.parse_args()
    if opts.child:
        child(opts)
        return 0

    common.print_machine()
    rates: dict[str, dict[str, list[float]]] = {case: {impl: [] for impl in IMPLS} for case in CASES}
    with common.sandbox_process() as sandbox:
        print(
            f"{opts.images} images per loop, {opts.reps} repetitions, loops interleaved, "
            "sandbox at zero latency"
        )
        for rep in range(opts.reps):
            for case in CASES:
                for impl in random.sample(IMPLS, len(IMPLS)):
                    run = common.run_child(
                        "bench_hook.py",
                        [
                            "--child",
                            "--impl",
                            impl,
                            "--case",
                            case,
                            "--base-url",
                            sandbox.base_url,
                            "--images",
                            str(opts.images),
                        ],
                    )
                    rates[case][impl].append(run["images_per_s"])
                print(
                    f"  rep {rep + 1} {case:32s} "
                    + ", ".join(f"{LABELS[i]} {rates[case][i][-1]:.0f}/s" for i in IMPLS),
                    flush=True,
                )

    print("\nresults (medians, images/s)")
    ok = True
    for case in CASES:
        med = {impl: common.median(rates[case][impl]) for impl in IMPLS}
        vs_raw = common.ratio(med["ours"], med["raw"])
        vs_durable = common.ratio(med["ours"], med["raw_fsync"])
        ok = ok and vs_raw >= 0.9
        print(
            f"  {case:32s} ours {med['ours']:.0f}/s, raw {med['raw']:.0f}/s, "
            f"raw+fsync {med['raw_fsync']:.0f}/s; "
            f"ours/raw {vs_raw:.2f}x (target >= 0.9x: {common.verdict(vs_raw >= 0.9)}), "
            f"ours/raw+fsync {vs_durable:.2f}x"
        )
        print(
            f"  {'':32s} with the old per-image directory fsync: {med['ours_dir_fsync']:.0f}/s "
            f"({common.ratio(med['ours_dir_fsync'], med['raw']):.2f}x raw, "
            f"{common.ratio(med['ours_dir_fsync'], med['raw_fsync']):.2f}x raw+fsync); "
            f"ours / old {common.ratio(med['ours'], med['ours_dir_fsync']):.2f}x"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
