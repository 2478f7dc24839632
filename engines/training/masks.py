"""Seeded hole masks for inpainting training and evaluation: free-form strokes, boxes, border bands.

Every function takes an explicit `numpy.random.Generator` and returns an (H, W) float32 array in {0, 1}
(1 = pixels to generate), so the same generator state always yields the same mask.
"""

from __future__ import annotations

import math

import numpy as np

from engines.training.extras import opencv

__all__ = ["BOX_AREA", "band_mask", "box_mask", "outpaint_mask", "random_mask", "stroke_mask"]

# Issue 5: box holes cover 5-20 % of the image.
BOX_AREA = (0.05, 0.20)


def box_mask(h: int, w: int, rng: np.random.Generator, area: tuple[float, float] = BOX_AREA,
             aspect: tuple[float, float] = (0.5, 2.0)) -> np.ndarray:
    """One axis-aligned rectangle covering a fraction of h*w drawn uniformly from `area`.

    The aspect ratio (width / height) is log-uniform in `aspect`, shrunk where the image is too narrow;
    the rectangle's pixel area is within one row/column of the target, and always inside the image.
    """
    target = float(rng.uniform(*area)) * h * w
    ratio = math.exp(rng.uniform(math.log(aspect[0]), math.log(aspect[1])))
    bh = min(h, max(1, round(math.sqrt(target / ratio))))
    bw = min(w, max(1, round(target / bh)))
    bh = min(h, max(1, round(target / bw)))  # re-balance when the width was clipped
    y = int(rng.integers(0, h - bh + 1))
    x = int(rng.integers(0, w - bw + 1))
    mask = np.zeros((h, w), np.float32)
    mask[y : y + bh, x : x + bw] = 1.0
    return mask


def stroke_mask(h: int, w: int, rng: np.random.Generator, max_area: float = 0.35,
                strokes: tuple[int, int] = (1, 5)) -> np.ndarray:
    """Free-form brush strokes (random walks drawn with round caps, as DeepFill v2's irregular masks).

    Widths and lengths scale with the image side; strokes are added until the next would push the
    covered fraction over `max_area` (the first stroke is always kept, clipped to the budget).
    """
    side = min(h, w)
    mask = np.zeros((h, w), np.uint8)
    for i in range(int(rng.integers(strokes[0], strokes[1] + 1))):
        layer = np.zeros_like(mask)
        y, x = float(rng.uniform(0, h)), float(rng.uniform(0, w))
        width = max(2, round(rng.uniform(0.03, 0.12) * side))
        angle = rng.uniform(0, 2 * math.pi)
        for _ in range(int(rng.integers(3, 9))):
            angle += rng.uniform(-1.2, 1.2)
            length = rng.uniform(0.05, 0.3) * side
            ny = float(np.clip(y + length * math.sin(angle), 0, h - 1))
            nx = float(np.clip(x + length * math.cos(angle), 0, w - 1))
            opencv().line(layer, (round(x), round(y)), (round(nx), round(ny)), 1, width)
            y, x = ny, nx
        merged = np.maximum(mask, layer)
        if i > 0 and merged.mean() > max_area:
            break
        mask = merged
    return mask.astype(np.float32)


def band_mask(h: int, w: int, top: int = 0, bottom: int = 0, left: int = 0, right: int = 0) -> np.ndarray:
    """Border bands of the given widths in pixels (outpainting: the canvas grown around a photo)."""
    mask = np.zeros((h, w), np.float32)
    if top:
        mask[:top] = 1.0
    if bottom:
        mask[h - bottom :] = 1.0
    if left:
        mask[:, :left] = 1.0
    if right:
        mask[:, w - right :] = 1.0
    return mask


def outpaint_mask(h: int, w: int, rng: np.random.Generator, width: tuple[float, float] = (0.02, 0.3)) -> np.ndarray:
    """Random border bands: both sides of one axis (a canvas widened or heightened symmetrically), one
    side only, or all four; each band's width is a fraction of that axis drawn from `width`."""

    def frac(n: int) -> int:
        return max(1, round(rng.uniform(*width) * n))

    kind = int(rng.integers(0, 4))
    if kind == 0:  # wider canvas, photo centred
        b = frac(w) // 2 or 1
        return band_mask(h, w, left=b, right=b + int(rng.integers(0, 2)))
    if kind == 1:  # taller canvas
        b = frac(h) // 2 or 1
        return band_mask(h, w, top=b, bottom=b + int(rng.integers(0, 2)))
    if kind == 2:  # one side (photo pushed to an edge)
        side = int(rng.integers(0, 4))
        widths = [0, 0, 0, 0]
        widths[side] = frac(h if side < 2 else w)
        return band_mask(h, w, *widths)
    return band_mask(h, w, frac(h) // 2, frac(h) // 2, frac(w) // 2, frac(w) // 2)


def random_mask(h: int, w: int, rng: np.random.Generator, box_area: tuple[float, float] = BOX_AREA,
                weights: tuple[float, float, float] = (0.35, 0.35, 0.3)) -> np.ndarray:
    """Training mix: strokes, a box (sometimes two), or outpainting bands, with probabilities `weights`."""
    p = np.asarray(weights, dtype=np.float64)
    kind = int(rng.choice(3, p=p / p.sum()))
    if kind == 0:
        return stroke_mask(h, w, rng)
    if kind == 1:
        mask = box_mask(h, w, rng, box_area)
        if rng.random() < 0.2:
            mask = np.maximum(mask, box_mask(h, w, rng, (box_area[0] / 2, box_area[1] / 2)))
        return mask
    return outpaint_mask(h, w, rng)
