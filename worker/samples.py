"""Sample listing photos for the demo, degraded in code: product renders first, then scikit-image's photos.

Product renders: Solidus's sample images (BSD-3-Clause), downscaled into `worker/samples/` (see its NOTICE.md).
astronaut, rocket: NASA, public domain; coffee (Rachel Michetti) and chelsea (Stefan van der Walt): CC0,
shipped by scikit-image (its data/README.txt).
"""

from __future__ import annotations

import io
from importlib.resources import files

import numpy as np
from PIL import Image

# (package, file): product photos lead because listings are what the demo shows; the rest add variety.
SAMPLES = (
    ("worker", "samples/mug_set.jpg"), ("worker", "samples/cap_red_1.jpg"), ("worker", "samples/tote.jpg"),
    ("worker", "samples/bottles_1.jpg"), ("worker", "samples/dark_tee.jpg"), ("worker", "samples/tshirt.jpg"),
    ("skimage", "data/coffee.png"), ("skimage", "data/chelsea.png"), ("skimage", "data/astronaut.png"),
    ("skimage", "data/rocket.jpg"),
)


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
    uploads = []
    for index in range(count):
        package, path = SAMPLES[index % len(SAMPLES)]
        with Image.open(io.BytesIO(files(package).joinpath(path).read_bytes())) as image:
            payload = degrade(image, short_side=short_side, noise_sigma=4.0 + index % 3 * 3,
                              jpeg_quality=55 + index % 4 * 10, seed=index)
        stem = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        uploads.append((f"{stem}-{index:02d}.jpg", payload))
    return uploads
