"""Benchmark 3: peak memory while storing one large image, from a URL and from base64.

Each case runs in a fresh child process: it imports everything, stores one small image to
warm every code path up, then records ``ru_maxrss`` (the peak so far) and stores one image
of 8, 64 or 256 MB to ``file://``. The figure is the rise of the peak over that baseline.

* URL: a ``qwen-image`` prediction answers a URL; the sandbox's ``huge`` storage fault serves
  a valid PNG padded to exactly the size. The download streams to the file: the target is
  that it adds < 32 MB whatever the size.
* base64: an ``openai/gpt-image-1`` answer carrying the PNG as base64 in the JSON. The
  sandbox has no knob for a 256 MB base64 answer, so a tiny loopback server in its own
  process serves that body (built with the sandbox's own huge-PNG generator). The JSON text
  alone is 1.33x the image; the target is <= 1.5x the image in total. The answer is read with
  the streamed reader (``responses.answer_stream``: each image decoded in chunks); the same run
  measures the whole-body path beside it (``b64-whole``: the answer parsed in memory, as every
  answer was before and as answers <= 1 MiB still are), the baseline, and the well-kept
  streaming parser the issue named (``b64-ijson``: ijson's C backend, yajl2_c, reading the same
  answer from a file, each base64 string decoded in slices into a file -- its best case, no store).
  ijson hands a string value over whole, so it cannot go below the string itself (1.33x).

The targets are the answer's path: ``--no-thumbnails`` (``[aihubmix] store_thumbnails = False``).
With thumbnails (the default) Pillow also keeps the stand-in PNG's padding -- a private ancillary
chunk -- in memory when it opens the image (``PngImageFile.private_chunks``): +1x that a real
image does not have; a real image's thumbnail costs its decoded pixels instead (BENCHMARKS.md 3).

    uv run --no-sync python benchmarks/bench_memory.py [--sizes 8,64,256] [--reps 3] [--no-thumbnails]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchlib as common

MIB = 1024 * 1024
URL_TARGET_MIB = 32
B64_TARGET_X = 1.5


def _peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


# --------------------------------------------------------------------------------------------
# a loopback server answering one base64 prediction of a given size (runs in its own process)
# --------------------------------------------------------------------------------------------


def _png_of(size: int) -> bytes:
    from airflow_provider_aihubmix.sandbox.images import huge_png_stream, render

    base = render(64, 64, "png", 1, 0)

    async def collect() -> bytes:
        return b"".join([chunk async for chunk in huge_png_stream(base, size)])

    return asyncio.run(collect())


def serve_b64() -> None:
    bodies: dict[int, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            size = int(self.headers["X-Bench-Size"])
            if size not in bodies:
                bodies.clear()
                encoded = base64.b64encode(_png_of(size)).decode()
                bodies[size] = json.dumps(
                    {"output": {"b64_json": [{"bytesBase64": encoded, "mimeType": "png"}], "urls": []}}
                ).encode()
            body = bodies[size]
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdin.read()  # until the parent closes our stdin


# --------------------------------------------------------------------------------------------
# the measured child
# --------------------------------------------------------------------------------------------


def ijson_child(size: int, base_url: str) -> dict[str, Any]:
    """The answer saved to a file, then read by ijson (yajl2_c), each image decoded into a file."""
    import binascii

    import httpx
    import ijson

    def fetch(n: int, path: str) -> None:
        url, headers = f"{base_url}/v1/images/generations", {"X-Bench-Size": str(n)}
        with httpx.stream("POST", url, headers=headers) as r, open(path, "wb") as sink:
            for chunk in r.iter_bytes(1 << 16):
                sink.write(chunk)

    def parse(path: str, out: str) -> int:
        written = 0
        with open(path, "rb") as source, open(out, "wb") as sink:
            for text in ijson.items(source, "output.b64_json.item.bytesBase64"):
                for start in range(0, len(text), 1 << 16):
                    written += sink.write(binascii.a2b_base64(text[start : start + (1 << 16)]))
        return written

    with tempfile.TemporaryDirectory(prefix="bench-mem-ijson-") as tmp:
        body, out = os.path.join(tmp, "answer.json"), os.path.join(tmp, "image.png")
        fetch(64 * 1024, body)
        parse(body, out)  # warm: imports, the backend
        fetch(size, body)
        baseline_peak, baseline_rss = _peak_bytes(), common.rss_bytes()
        written = parse(body, out)
        peak = _peak_bytes()
    if written != size:
        raise RuntimeError(f"decoded {written} bytes, expected {size} ({ijson.backend})")
    return {"added_peak": peak - baseline_peak, "baseline_rss": baseline_rss, "baseline_peak": baseline_peak}


def child(kind: str, size: int, base_url: str, thumbnails: bool = True) -> dict[str, Any]:
    from airflow_provider_aihubmix.engine.run import ImageCollector, TaskIdentity
    from airflow_provider_aihubmix.hooks.aihubmix import AIHubMixHook
    from airflow_provider_aihubmix.storage import open_store

    model = "qwen-image" if kind == "url" else "gpt-image-1"
    if not thumbnails:
        os.environ["AIRFLOW__AIHUBMIX__STORE_THUMBNAILS"] = "False"  # the gallery makes them later
    hook = AIHubMixHook(api_key=common.API_KEY, base_url=base_url, tasks_base_url=base_url)
    if kind == "b64-whole":
        from airflow_provider_aihubmix.http import sends

        sends.STREAMED_ANSWER_BYTES = sys.maxsize  # every answer parsed whole: the old path
    if kind.startswith("b64"):
        # Which size the stand-in server answers with; the warm-up below asks for a small one.
        hook.get_conn().headers["X-Bench-Size"] = str(64 * 1024)
    with tempfile.TemporaryDirectory(prefix="bench-mem-") as out_dir:
        store = open_store(f"file://{out_dir}")
        identity = TaskIdentity(dag_id="bench", run_id="run", task_id="store", map_index=-1, try_number=1)
        collector = ImageCollector(hook=hook, store=store, model=model, identity=identity)

        def once() -> dict[str, Any]:
            result = hook.predict(model, {"prompt": "memory", **({"seed": 1} if kind == "url" else {})})
            return collector.store_image(0, result.images[0], None)

        once()  # warm: imports, connections, every code path on a small image
        if kind == "url":
            from airflow_provider_aihubmix.sandbox import SandboxClient

            with SandboxClient(base_url) as control:
                control.inject(kind="huge", size_bytes=size, count=1)
        else:
            hook.get_conn().headers["X-Bench-Size"] = str(size)
        baseline_peak, baseline_rss = _peak_bytes(), common.rss_bytes()
        record = once()
        peak = _peak_bytes()
    if record["bytes"] != size:
        raise RuntimeError(f"stored {record['bytes']} bytes, expected {size}")
    return {"added_peak": peak - baseline_peak, "baseline_rss": baseline_rss, "baseline_peak": baseline_peak}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="8,64,256", help="image sizes in MiB")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--child", choices=("url", "b64", "b64-whole", "b64-ijson"))
    parser.add_argument("--size", type=int)
    parser.add_argument("--base-url")
    parser.add_argument("--serve-b64", action="store_true")
    parser.add_argument(
        "--no-thumbnails",
        action="store_true",
        help="[aihubmix] store_thumbnails = False: no thumbnail while storing (made on first view)",
    )
    opts = parser.parse_args()
    if opts.serve_b64:
        serve_b64()
        return 0
    if opts.child == "b64-ijson":
        common.emit(ijson_child(opts.size, opts.base_url))
        return 0
    if opts.child:
        common.emit(child(opts.child, opts.size, opts.base_url, not opts.no_thumbnails))
        return 0

    common.print_machine()
    sizes = [int(s) for s in opts.sizes.split(",")]
    b64_server = subprocess.Popen(
        [sys.executable, __file__, "--serve-b64"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=common.ROOT,
    )
    results: dict[tuple[str, int], list[float]] = {}
    ok = True
    try:
        assert b64_server.stdout is not None
        b64_url = b64_server.stdout.readline().strip()
        with common.sandbox_process("--max-side", "256") as sandbox:
            print(
                f"one image stored to file:// per fresh process; {opts.reps} repetitions; "
                "peak RSS (ru_maxrss) rise over the warmed-up baseline"
            )
            for rep in range(opts.reps):
                for size in sizes:
                    for kind, url in (
                        ("url", sandbox.base_url),
                        ("b64", b64_url),
                        ("b64-whole", b64_url),
                        ("b64-ijson", b64_url),
                    ):
                        run = common.run_child(
                            "bench_memory.py",
                            ["--child", kind, "--size", str(size * MIB), "--base-url", url]
                            + (["--no-thumbnails"] if opts.no_thumbnails else []),
                        )
                        results.setdefault((kind, size), []).append(run["added_peak"])
                        print(
                            f"  rep {rep + 1} {kind:9s} {size:4d} MiB: "
                            f"+{run['added_peak'] / MIB:7.1f} MiB peak "
                            f"(baseline RSS {run['baseline_rss'] / MIB:.0f} MiB)",
                            flush=True,
                        )
    finally:
        if b64_server.stdin:
            b64_server.stdin.close()
        b64_server.wait(timeout=20)

    print("\nresults (medians of the peak rise)")
    for size in sizes:
        url_added = common.median(results[("url", size)]) / MIB
        b64_added = common.median(results[("b64", size)]) / MIB
        whole_added = common.median(results[("b64-whole", size)]) / MIB
        ijson_added = common.median(results[("b64-ijson", size)]) / MIB
        url_ok, b64_ok = url_added < URL_TARGET_MIB, b64_added <= B64_TARGET_X * size
        ok = ok and url_ok and b64_ok
        print(
            f"  {size:4d} MiB image: URL +{url_added:6.1f} MiB (target < {URL_TARGET_MIB} MiB: "
            f"{common.verdict(url_ok)}); base64 +{b64_added:6.1f} MiB = {b64_added / size:.2f}x the image "
            f"(target <= {B64_TARGET_X:.1f}x: {common.verdict(b64_ok)}); whole-body baseline "
            f"+{whole_added:6.1f} MiB = {whole_added / size:.2f}x; ijson (parse only) "
            f"+{ijson_added:6.1f} MiB = {ijson_added / size:.2f}x"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
