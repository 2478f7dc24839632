"""Small synthetic listing photos for tests that run the whole pipeline on a 2-core CPU."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def listing_photo(index: int) -> bytes:
    """A distinct 64x48 JPEG per index (gradients and stripes, so every output differs)."""
    rng = np.random.default_rng(index)
    y, x = np.mgrid[0:48, 0:64]
    pixels = np.stack([x * 4, y * 5, 128 + 100 * np.sin(x / (2 + index % 5))], axis=2)
    pixels = np.clip(pixels + rng.normal(0, 3, pixels.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()
