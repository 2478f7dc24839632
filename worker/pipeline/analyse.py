"""analyse: measure what the planner needs — size, noise, sharpness and JPEG quality."""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image

from worker.pipeline.job import Analysis, DecodedImage, Job

# The IJG (libjpeg) luminance table at quality 50; encoders scale it by quality.
_IJG_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
], dtype=np.float64)


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma on the 0-255 scale, (H, W) float64."""
    return (rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114) * 255.0


def estimate_noise_sigma(gray: np.ndarray) -> float:
    """Gaussian noise sigma (0-255 scale) by Immerkaer's method (1996).

    Convolves with a mask that cancels locally linear structure, so what remains is mostly noise;
    robust enough to separate "clean" (<2) from "visibly noisy" (>6) photos, which is all the planner needs.
    """
    if gray.shape[0] < 3 or gray.shape[1] < 3:
        return 0.0
    g = gray
    response = (
        g[:-2, :-2] - 2 * g[:-2, 1:-1] + g[:-2, 2:]
        - 2 * g[1:-1, :-2] + 4 * g[1:-1, 1:-1] - 2 * g[1:-1, 2:]
        + g[2:, :-2] - 2 * g[2:, 1:-1] + g[2:, 2:]
    )
    h, w = gray.shape
    return float(math.sqrt(math.pi / 2) * np.abs(response).sum() / (6.0 * (w - 2) * (h - 2)))


def estimate_sharpness(gray: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian: a cheap blur indicator."""
    if gray.shape[0] < 3 or gray.shape[1] < 3:
        return 0.0
    lap = gray[1:-1, :-2] + gray[1:-1, 2:] + gray[:-2, 1:-1] + gray[2:, 1:-1] - 4 * gray[1:-1, 1:-1]
    return float(lap.var())


def estimate_jpeg_quality(data: bytes) -> int | None:
    """The IJG quality whose scaled luminance table best matches the file's; None if not a JPEG."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            tables = getattr(image, "quantization", None)
            if image.format != "JPEG" or not tables:
                return None
            table = np.asarray(tables[0], dtype=np.float64)
    except OSError:
        return None
    # Sums are independent of zigzag/natural ordering, which differs across Pillow versions.
    scale = 100.0 * table.sum() / _IJG_LUMA.sum()
    quality = 5000.0 / scale if scale >= 100 else (200.0 - scale) / 2.0
    return int(round(min(100.0, max(1.0, quality))))


def analyse_image(image: DecodedImage, data: bytes | None) -> Analysis:
    gray = luma(image.rgb)
    return Analysis(
        width=image.width,
        height=image.height,
        megapixels=image.width * image.height / 1e6,
        noise_sigma=round(estimate_noise_sigma(gray), 3),
        sharpness=round(estimate_sharpness(gray), 3),
        jpeg_quality=estimate_jpeg_quality(data) if data and image.source_format == "jpeg" else None,
    )


def analyse(job: Job) -> None:
    assert job.image is not None
    job.analysis = analyse_image(job.image, job.data)
