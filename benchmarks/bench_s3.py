"""Benchmark 6: storing 500 images of 2 MB to S3 (moto server) vs a plain boto3 upload loop.

The provider's path is ``S3ObjectStore.put_image`` as a download feeds it: 64 KiB chunks
hashed and sniffed into a spool, one ``PutObject`` through the amazon provider's ``S3Hook``
client with content type, metadata and the image's SHA-256 for S3 to verify; S3's answer
echoes the checksum, so no ``HEAD`` follows (a store that does not echo it gets one).
The baseline is ``boto3.client("s3").upload_fileobj(BytesIO(png), ...)`` in a loop (botocore
computes and sends its default CRC32 there); ``upload + head_object`` is what the store did
before (issue 26).

moto runs in server mode in its own process (its CPU is not ours to count, and S3 is a
network service); every loop is a fresh child process, the two interleaved per repetition,
and the objects are deleted between loops so the server does not grow.

    uv run --no-sync python benchmarks/bench_s3.py [--reps 5] [--images 500] [--mib 2]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import socket
import subprocess
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchlib as common

ACCESS_KEY, SECRET_KEY, REGION, BUCKET = "moto-access-key-id", "moto-secret-access-key", "us-east-1", "bench"
IMPLS = ("ours", "boto3", "boto3_head")
LABELS = {
    "ours": "S3ObjectStore.put_image",
    "boto3": "boto3 upload_fileobj loop",
    "boto3_head": "boto3 upload + head_object",
}


def _client(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


def _png(size: int) -> bytes:
    from airflow_provider_aihubmix.sandbox.images import huge_png_stream, render

    base = render(64, 64, "png", 1, 0)

    async def collect() -> bytes:
        return b"".join([chunk async for chunk in huge_png_stream(base, size)])

    return asyncio.run(collect())


def _chunks(data: bytes, size: int = 64 * 1024) -> Any:
    view = memoryview(data)
    for start in range(0, len(data), size):
        yield bytes(view[start : start + size])


def child(impl: str, endpoint: str, images: int, size: int) -> dict[str, Any]:
    data = _png(size)
    if impl == "ours":
        os.environ["AIRFLOW_CONN_AWS_BENCH"] = json.dumps(
            {
                "conn_type": "aws",
                "login": ACCESS_KEY,
                "password": SECRET_KEY,
                "extra": {"endpoint_url": endpoint, "region_name": REGION},
            }
        )
        from airflow_provider_aihubmix.storage import open_store

        store = open_store(f"s3://{BUCKET}/ours", aws_conn_id="aws_bench")

        def put(i: int) -> None:
            stored = store.put_image(
                f"run/image-{i:03d}",
                _chunks(data),
                metadata={"model": "bench", "index": str(i)},
                expected_size=len(data),
            )
            assert stored.bytes == len(data)

    else:
        client = _client(endpoint)
        verify = impl == "boto3_head"

        def put(i: int) -> None:
            key = f"boto3/run/image-{i:03d}.png"
            client.upload_fileobj(io.BytesIO(data), BUCKET, key, ExtraArgs={"ContentType": "image/png"})
            if verify:  # what our store adds: read the size back before reporting the image stored
                assert client.head_object(Bucket=BUCKET, Key=key)["ContentLength"] == len(data)

    put(images)  # warm: client, credentials, connection pool
    started = time.perf_counter()
    for i in range(images):
        put(i)
    return {"images_per_s": images / (time.perf_counter() - started)}


def _moto() -> tuple[subprocess.Popen[str], str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom moto.server import ThreadedMotoServer\n"
            f"s = ThreadedMotoServer(ip_address='127.0.0.1', port={port}, verbose=False)\ns.start()\n"
            "print('ready', flush=True)\nsys.stdin.read()\ns.stop()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        raise SystemExit("moto did not start")
    return proc, f"http://127.0.0.1:{port}"


def _empty(client: Any) -> None:
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=BUCKET):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=BUCKET, Delete={"Objects": keys})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--mib", type=float, default=2.0)
    parser.add_argument("--child", choices=IMPLS)
    parser.add_argument("--endpoint")
    opts = parser.parse_args()
    size = int(opts.mib * 1024 * 1024)
    if opts.child:
        common.emit(child(opts.child, opts.endpoint, opts.images, size))
        return 0

    common.print_machine()
    moto, endpoint = _moto()
    rates: dict[str, list[float]] = {impl: [] for impl in IMPLS}
    try:
        client = _client(endpoint)
        client.create_bucket(Bucket=BUCKET)
        print(
            f"{opts.images} PNG images of {opts.mib:g} MiB per loop, {opts.reps} repetitions, interleaved; "
            f"moto server in its own process"
        )
        for rep in range(opts.reps):
            for impl in random.sample(IMPLS, len(IMPLS)):
                run = common.run_child(
                    "bench_s3.py",
                    [
                        "--child",
                        impl,
                        "--endpoint",
                        endpoint,
                        "--images",
                        str(opts.images),
                        "--mib",
                        str(opts.mib),
                    ],
                )
                rates[impl].append(run["images_per_s"])
                _empty(client)
            print(
                f"  rep {rep + 1}: " + ", ".join(f"{LABELS[i]} {rates[i][-1]:.1f}/s" for i in IMPLS),
                flush=True,
            )
    finally:
        if moto.stdin:
            moto.stdin.close()
        try:
            moto.wait(timeout=20)
        except subprocess.TimeoutExpired:
            moto.kill()

    ours, boto = common.median(rates["ours"]), common.median(rates["boto3"])
    boto_head = common.median(rates["boto3_head"])
    per_rep = [o / b for o, b in zip(rates["ours"], rates["boto3"], strict=True)]
    r = common.ratio(ours, boto)
    print("\nresults (medians, images/s)")
    print(
        f"  ours {ours:.1f}/s, boto3 {boto:.1f}/s: {r:.2f}x (per repetition "
        f"{', '.join(f'{x:.2f}' for x in per_rep)}); target >= 0.95x: {common.verdict(r >= 0.95)}"
    )
    print(
        f"  boto3 + head_object {boto_head:.1f}/s: ours / that {common.ratio(ours, boto_head):.2f}x "
        f"(the verification round trip is {100 * (1 - common.ratio(boto_head, boto)):.0f}% of the plain loop)"
    )
    return 0 if r >= 0.95 else 1


if __name__ == "__main__":
    sys.exit(main())
