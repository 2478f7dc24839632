"""Hole windows for training the texture inpainter: a hole over the product and the photo around it.

The texture engine (`retouch-inpaint-texture`) fills each hole on a window cut around it
(`engines.masked_fill.window_around`: the hole plus half its size of photo on every side), shrunk to at
most its `crop_side`, never enlarged. This sampler cuts the same framing out of training photos held at
listing size (longest side `PHOTO_SIDE`): a window of 256-768 photo pixels, shrunk to `CROP` px, so the
model sees texture at the scales the engine will show it (1x to 3x reduction).

Where the window goes: three times in four its centre is a pixel of the product (`matte_truth.product_
matte` on the photo; photos not on white use their non-flat pixels), because that is where sellers cover
stickers and tags, and where a blur shows; otherwise anywhere.

Hole kinds (`use_mask`), the things sellers remove, with `HOLE_WEIGHTS`:
- box: an axis-aligned rectangle (the evaluated case: a sticker or label masked with a box);
- tag: a rotated rounded rectangle or an ellipse (stickers, price tags, hang tags);
- text: a line or two of text drawn with OpenCV's fonts, grown by a few px (watermarks, printed prices);
- strokes: thin random-walk brush strokes (scratches, cables, a brushed-over wire);
- clutter: a blob of overlapping ellipses (a stray object beside the product).
Every draw comes from the `numpy.random.Generator` handed in, so a seed and step reproduce a batch.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from engines.training.data import training_files
from engines.training.extras import opencv

CROP = 256
PHOTO_SIDE = 1024
WINDOW_PX = (256, 768)
ON_PRODUCT = 0.75
HOLE_KINDS = ("box", "tag", "text", "strokes", "clutter")
HOLE_WEIGHTS = (0.35, 0.2, 0.15, 0.15, 0.15)
# A hole's size as a share of the window side: the engine's window is the hole plus half its longer side
# on each side, so a box is about half the window; text and strokes are longer and thinner.
HOLE_SIDE = (0.3, 0.55)


@dataclass
class HolePhotos:
    """Training photos at listing size, with the pixels a window may be centred on."""

    photos: list[np.ndarray]  # HxWx3 uint8, longest side PHOTO_SIDE
    product_points: list[np.ndarray]  # (K, 2) int32 (y, x) on the product, may be empty


def _listing_size(path: Path) -> np.ndarray:
    from engines.training.inpaint_train import shrink_to

    return shrink_to(path, PHOTO_SIDE)


def product_region(photo: np.ndarray) -> np.ndarray:
    """(H, W) bool: the product of an HxWx3 uint8 photo on white (`matte_truth.product_matte` on a quarter-
    size copy); for photos not on white, the pixels far from the median grey (the busy parts)."""
    from engines.training.matte_truth import product_matte

    small = np.ascontiguousarray(photo[::4, ::4])
    alpha = product_matte(small)
    if alpha is None:
        grey = small.astype(np.float32).mean(axis=2)
        region = np.abs(grey - np.median(grey)) > 12
    else:
        region = alpha > 0.5
    full = np.repeat(np.repeat(region, 4, axis=0), 4, axis=1)
    return full[: photo.shape[0], : photo.shape[1]]


def _product_points(photo: np.ndarray, rng: np.random.Generator, keep: int = 4096) -> np.ndarray:
    """Up to `keep` (y, x) pixels of `product_region`, where windows are centred (module doc)."""
    ys, xs = np.nonzero(product_region(photo)[::4, ::4])
    if ys.size == 0:
        return np.zeros((0, 2), np.int32)
    pick = rng.choice(ys.size, size=min(keep, ys.size), replace=False)
    return (np.stack([ys[pick], xs[pick]], axis=1) * 4).astype(np.int32)


def load_hole_photos(folder: Path, holdout: int, log=print) -> HolePhotos:
    """Every training photo (the held-aside tail excluded) at listing size, in memory (~1.5 GB for 580)."""
    rng = np.random.default_rng(7919)
    photos, points = [], []
    files = training_files(folder, holdout)
    for i, f in enumerate(files):
        photo = _listing_size(f)
        photos.append(photo)
        points.append(_product_points(photo, rng))
        if (i + 1) % 100 == 0:
            log(f"hole photos: {i + 1}/{len(files)}")
    return HolePhotos(photos, points)


# -- masks --------------------------------------------------------------------------------------------


def _centred_box(size: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """(cy, cx, bh, bw) of a hole near the window's centre, its sides drawn from HOLE_SIDE."""
    bh, bw = (round(float(rng.uniform(*HOLE_SIDE)) * size) for _ in range(2))
    jitter = size // 10
    cy, cx = (size // 2 + int(rng.integers(-jitter, jitter + 1)) for _ in range(2))
    return cy, cx, bh, bw


def _box(size: int, rng: np.random.Generator) -> np.ndarray:
    cy, cx, bh, bw = _centred_box(size, rng)
    mask = np.zeros((size, size), np.uint8)
    mask[max(0, cy - bh // 2) : cy + (bh + 1) // 2, max(0, cx - bw // 2) : cx + (bw + 1) // 2] = 1
    return mask


def _tag(size: int, rng: np.random.Generator) -> np.ndarray:
    cv2 = opencv()
    cy, cx, bh, bw = _centred_box(size, rng)
    mask = np.zeros((size, size), np.uint8)
    angle = float(rng.uniform(-40, 40))
    if rng.random() < 0.4:
        cv2.ellipse(mask, (cx, cy), (bw // 2, bh // 2), angle, 0, 360, 1, -1)
        return mask
    corners = cv2.boxPoints(((cx, cy), (bw, bh), angle))
    cv2.fillPoly(mask, [np.round(corners).astype(np.int32)], 1)
    radius = int(rng.integers(2, max(3, min(bh, bw) // 6)))
    return cv2.dilate(cv2.erode(mask, np.ones((radius, radius), np.uint8)), np.ones((radius, radius), np.uint8))


def _text(size: int, rng: np.random.Generator) -> np.ndarray:
    cv2 = opencv()
    mask = np.zeros((size, size), np.uint8)
    fonts = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_TRIPLEX)
    lines = int(rng.integers(1, 3))
    alphabet = string.ascii_uppercase + string.digits + "$.%-"
    top = int(rng.integers(size // 4, size // 2))
    for line in range(lines):
        text = "".join(rng.choice(list(alphabet), size=int(rng.integers(3, 10))))
        font = fonts[int(rng.integers(len(fonts)))]
        thickness = int(rng.integers(2, 7))
        (tw, th), _ = cv2.getTextSize(text, font, 1.0, thickness)
        scale = float(rng.uniform(0.4, 0.85)) * size / tw
        x = int(rng.integers(0, max(1, size - round(tw * scale))))
        y = top + line * round(th * scale * 1.6) + round(th * scale)
        cv2.putText(mask, text, (x, min(size - 2, y)), font, scale, 1, max(1, round(thickness * scale)), cv2.LINE_AA)
    grow = int(rng.integers(1, 4))
    mask = cv2.dilate((mask > 0).astype(np.uint8), np.ones((2 * grow + 1, 2 * grow + 1), np.uint8))
    if rng.random() < 0.3:  # a watermark across the photo
        turn = cv2.getRotationMatrix2D((size / 2, size / 2), float(rng.uniform(-35, 35)), 1.0)
        mask = cv2.warpAffine(mask, turn, (size, size), flags=cv2.INTER_NEAREST)
    return mask


def _strokes(size: int, rng: np.random.Generator) -> np.ndarray:
    cv2 = opencv()
    mask = np.zeros((size, size), np.uint8)
    for _ in range(int(rng.integers(1, 5))):
        y, x = (float(rng.uniform(size * 0.25, size * 0.75)) for _ in range(2))
        width = int(rng.integers(3, 13))
        angle = float(rng.uniform(0, 2 * math.pi))
        for _ in range(int(rng.integers(2, 6))):
            angle += float(rng.uniform(-0.8, 0.8))
            length = float(rng.uniform(0.1, 0.35)) * size
            ny = float(np.clip(y + length * math.sin(angle), 0, size - 1))
            nx = float(np.clip(x + length * math.cos(angle), 0, size - 1))
            cv2.line(mask, (round(x), round(y)), (round(nx), round(ny)), 1, width)
            y, x = ny, nx
    return mask


def _clutter(size: int, rng: np.random.Generator) -> np.ndarray:
    cv2 = opencv()
    cy, cx, bh, bw = _centred_box(size, rng)
    mask = np.zeros((size, size), np.uint8)
    for _ in range(int(rng.integers(3, 9))):
        ey = cy + int(rng.integers(-bh // 3, bh // 3 + 1))
        ex = cx + int(rng.integers(-bw // 3, bw // 3 + 1))
        axes = (max(3, int(rng.integers(bw // 8, bw // 3 + 2))), max(3, int(rng.integers(bh // 8, bh // 3 + 2))))
        cv2.ellipse(mask, (ex, ey), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    return mask


_DRAW = {"box": _box, "tag": _tag, "text": _text, "strokes": _strokes, "clutter": _clutter}


def use_mask(size: int, rng: np.random.Generator, kind: str | None = None) -> np.ndarray:
    """(size, size) float32 {0, 1} hole of one kind (drawn with HOLE_WEIGHTS when `kind` is None)."""
    if kind is None:
        p = np.asarray(HOLE_WEIGHTS, dtype=np.float64)
        kind = HOLE_KINDS[int(rng.choice(len(p), p=p / p.sum()))]
    mask = _DRAW[kind](size, rng)
    if not mask.any():  # a text or stroke drawn off the window: fall back to the evaluated case
        mask = _box(size, rng)
    return mask.astype(np.float32)


# -- windows ------------------------------------------------------------------------------------------


def cut_window(photos: HolePhotos, rng: np.random.Generator, size: int | None = None) -> torch.Tensor:
    """(3, size, size) float [0, 1]: a window of WINDOW_PX photo pixels, shrunk (antialiased) to `size`
    (default CROP)."""
    size = size or CROP
    i = int(rng.integers(len(photos.photos)))
    photo, points = photos.photos[i], photos.product_points[i]
    h, w = photo.shape[:2]
    side = min(h, w, int(rng.integers(WINDOW_PX[0], WINDOW_PX[1] + 1)))
    if len(points) and rng.random() < ON_PRODUCT:
        cy, cx = (int(v) for v in points[int(rng.integers(len(points)))])
    else:
        cy, cx = int(rng.integers(h)), int(rng.integers(w))
    y0 = int(np.clip(cy - side // 2, 0, h - side))
    x0 = int(np.clip(cx - side // 2, 0, w - side))
    window = torch.from_numpy(photo[y0 : y0 + side, x0 : x0 + side].copy()).permute(2, 0, 1)
    window = window.float()[None] / 255
    if side != size:
        window = F.interpolate(window, size=(size, size), mode="bicubic", antialias=True, align_corners=False)
    if rng.random() < 0.5:
        window = window.flip(3)
    return window[0].clamp(0, 1)


def sample_hole_batch(photos: HolePhotos, batch: int, rng: np.random.Generator,
                      size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (N, 3, size, size) in [0, 1], masks (N, 1, size, size) in {0, 1}), all drawn from `rng`;
    `size` defaults to CROP."""
    size = size or CROP
    images = torch.stack([cut_window(photos, rng, size) for _ in range(batch)])
    masks = torch.from_numpy(np.stack([use_mask(size, rng) for _ in range(batch)]))[:, None]
    return images, masks


def hole_validation_set(folder: Path, holdout: int, n: int = 8,
                        seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Fixed (window, box) pairs from the held-aside photos: the evaluated case, on the product."""
    from engines.training.data import list_images, split_holdout

    _, held = split_holdout(list_images(folder), holdout)
    rng = np.random.default_rng([seed, 65537])
    photos = HolePhotos([], [])
    for f in held[:n]:
        photo = _listing_size(f)
        photos.photos.append(photo)
        photos.product_points.append(_product_points(photo, rng))
    pairs = []
    for i in range(len(photos.photos)):
        one = HolePhotos([photos.photos[i]], [photos.product_points[i]])
        window = cut_window(one, rng)[None]
        pairs.append((window, torch.from_numpy(use_mask(CROP, rng, "box"))[None, None]))
    return pairs
