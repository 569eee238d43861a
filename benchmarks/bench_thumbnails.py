"""What a thumbnail adds to the purchase path (issue 25): storing a 2K PNG with and without it.

One 2048x2048 PNG of ~6.5 MB (``tests/e2e/gallery_scale.big_png``) is stored on a ``file://`` store
``REPS`` times each way, the two ways interleaved: ``put_image_bytes`` alone (today's path)
and ``put_image_bytes`` + ``try_thumbnail`` (the image in memory, the b64_json case) and +
``try_thumbnail`` reading the image back (the URL case: the image was streamed to storage).
Prints medians in ms and the extra per image; the thumbnail's size.

    uv run --no-sync python benchmarks/bench_thumbnails.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from airflow_provider_aihubmix.storage import LocalObjectStore
from airflow_provider_aihubmix.storage.thumbnails import try_thumbnail
from tests.e2e.gallery_scale import big_png

REPS = 9


def main() -> None:
    data = big_png(3)
    ways = ("store", "store+thumb (in memory)", "store+thumb (read back)")
    timings: dict[str, list[float]] = {way: [] for way in ways}
    thumb_bytes = 0
    with tempfile.TemporaryDirectory() as tmp:
        store = LocalObjectStore(Path(tmp).as_uri())
        for rep in range(REPS):
            for way in timings:
                stem = f"p/{way.split()[0]}{rep}/image-000"
                started = time.perf_counter()
                stored = store.put_image_bytes(stem, data, metadata={})
                if way != "store":
                    thumb = try_thumbnail(store, stored, data if "memory" in way else None)
                    assert thumb is not None
                    thumb_bytes = thumb["bytes"]
                timings[way].append((time.perf_counter() - started) * 1000)
    base = statistics.median(timings["store"])
    print(f"image: 2048x2048 PNG, {len(data) / 1e6:.1f} MB; thumbnail {thumb_bytes / 1000:.1f} KB WebP")
    for way, values in timings.items():
        med = statistics.median(values)
        print(f"{way:26s} median {med:7.1f} ms  (+{med - base:6.1f} ms per image, {med / base:.2f}x)")


if __name__ == "__main__":
    main()
