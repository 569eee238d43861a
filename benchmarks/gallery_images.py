"""Large test images for the gallery benchmarks: 2048x2048 PNGs of several MB (issue 25).

A Mandelbrot channel gives the thumbnails real structure; a noise channel keeps the PNG from
compressing to nothing (a generated 2K image is 3-8 MB).
"""

from __future__ import annotations

import io

SIDE = 2048


def big_png(seed: int, side: int = SIDE) -> bytes:
    """A ``side`` x ``side`` RGB PNG of about 6-7 MB at 2048 px, different for each ``seed``."""
    from PIL import Image

    spread = 1.5 + 0.1 * (seed % 7)
    fractal = Image.effect_mandelbrot((side, side), (-2.0, -spread / 1.2, 1.0, spread / 1.2), 64 + seed % 50)
    noise = Image.effect_noise((side, side), 30 + seed % 20)
    gradient = Image.linear_gradient("L").resize((side, side)).rotate(seed * 37 % 360)
    out = io.BytesIO()
    Image.merge("RGB", (fractal, noise, gradient)).save(out, "PNG", compress_level=1)
    return out.getvalue()
