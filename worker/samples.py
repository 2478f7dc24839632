"""Sample listing photos for the demo: public-domain / CC0 images that scikit-image ships, degraded in code.

astronaut, rocket, hubble_deep_field: NASA, public domain; coffee (Rachel Michetti) and chelsea
(Stefan van der Walt): CC0. See scikit-image's data/README.txt.
"""

from __future__ import annotations

import io
from importlib.resources import files

import numpy as np
from PIL import Image

SAMPLES = ("coffee.png", "chelsea.png", "astronaut.png", "rocket.jpg", "hubble_deep_field.jpg", "motorcycle_left.png")


def degrade(image: Image.Image, *, short_side: int, noise_sigma: float, jpeg_quality: int, seed: int) -> bytes:
    """A small, noisy, JPEG-compressed copy: what a seller's old phone upload looks like."""
    rgb = image.convert("RGB")
    scale = short_side / min(rgb.size)
    small = rgb.resize((max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale))), Image.Resampling.BICUBIC)
    pixels = np.asarray(small, dtype=np.float32)
    pixels += np.random.default_rng(seed).normal(0.0, noise_sigma, pixels.shape).astype(np.float32)
    noisy = Image.fromarray(np.clip(np.round(pixels), 0, 255).astype(np.uint8), "RGB")
    buffer = io.BytesIO()
    noisy.save(buffer, format="JPEG", quality=jpeg_quality)
    return buffer.getvalue()


def sample_uploads(count: int, *, short_side: int = 192) -> list[tuple[str, bytes]]:
    """(file name, JPEG bytes) for `count` degraded samples, cycling through the shipped images."""
    data_dir = files("skimage") / "data"
    uploads = []
    for index in range(count):
        name = SAMPLES[index % len(SAMPLES)]
        with Image.open(io.BytesIO((data_dir / name).read_bytes())) as image:
            payload = degrade(image, short_side=short_side, noise_sigma=4.0 + index % 3 * 3,
                              jpeg_quality=55 + index % 4 * 10, seed=index)
        stem = name.rsplit(".", 1)[0]
        uploads.append((f"{stem}-{index:02d}.jpg", payload))
    return uploads
