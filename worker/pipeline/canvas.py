"""Marketplace canvases: fit a photo into a fixed aspect ratio (1:1, 4:5, 3:4 ...).

Pure functions over the engines' pixel contract (HxWxC float32 in [0, 1]). The photo is never cropped
or scaled here: the canvas grows around it, and the new bands are filled by the inpainting engine
(`outpaint`), a solid colour sampled from the photo's border (`pad`), or a blurred stretch of the
photo's edges (`blur`).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

FITS = ("outpaint", "pad", "blur")


@dataclass(frozen=True)
class Canvas:
    width: int
    height: int
    left: int  # where the photo's top-left corner lands
    top: int
    aspect: str
    fit: str

    def band_mask(self, photo_height: int, photo_width: int) -> np.ndarray:
        """(H, W) float32: 1 on the added bands, 0 where the photo is."""
        mask = np.ones((self.height, self.width), dtype=np.float32)
        mask[self.top : self.top + photo_height, self.left : self.left + photo_width] = 0.0
        return mask


def parse_aspect(text: str) -> Fraction:
    """'4:5' -> 4/5 (width / height)."""
    try:
        width, height = (int(part) for part in text.split(":"))
        if width <= 0 or height <= 0:
            raise ValueError
    except ValueError as error:
        raise ValueError(f"aspect must look like '1:1' or '4:5', got {text!r}") from error
    return Fraction(width, height)


def plan_canvas(width: int, height: int, aspect: str, fit: str) -> Canvas | None:
    """The smallest canvas of `aspect` that contains the photo, centred; None when it already fits."""
    ratio = parse_aspect(aspect)
    if Fraction(width, height) == ratio:
        return None
    if Fraction(width, height) > ratio:  # too wide: add bands above and below
        new_width, new_height = width, int(np.ceil(width / ratio))
    else:  # too tall: add bands left and right
        new_width, new_height = int(np.ceil(height * ratio)), height
    if new_width == width and new_height == height:
        return None
    return Canvas(new_width, new_height, (new_width - width) // 2, (new_height - height) // 2, aspect, fit)


def place(image: np.ndarray, canvas: Canvas, fill: np.ndarray | float = 0.0) -> np.ndarray:
    """The photo on the canvas, bands set to `fill` (a scalar or a per-channel colour)."""
    height, width, channels = image.shape
    out = np.empty((canvas.height, canvas.width, channels), dtype=np.float32)
    out[...] = fill
    out[canvas.top : canvas.top + height, canvas.left : canvas.left + width] = image
    return out


def border_colour(image: np.ndarray, width: int = 4) -> np.ndarray:
    """Median colour of the photo's outer ring: catalogue photos usually sit on a plain background."""
    ring = np.concatenate([
        image[:width].reshape(-1, image.shape[2]), image[-width:].reshape(-1, image.shape[2]),
        image[:, :width].reshape(-1, image.shape[2]), image[:, -width:].reshape(-1, image.shape[2]),
    ])
    return np.median(ring, axis=0).astype(np.float32)


def pad(image: np.ndarray, canvas: Canvas) -> np.ndarray:
    colour = border_colour(image)
    if image.shape[2] == 4:
        colour[3] = 1.0  # the new bands are opaque background
    return place(image, canvas, colour)


def blur_extend(image: np.ndarray, canvas: Canvas, passes: int = 4) -> np.ndarray:
    """Stretch the edge pixels outwards, then blur only the bands so they read as soft background."""
    height, width, _ = image.shape
    rows = np.clip(np.arange(canvas.height) - canvas.top, 0, height - 1)
    cols = np.clip(np.arange(canvas.width) - canvas.left, 0, width - 1)
    stretched = image[rows][:, cols].astype(np.float32)
    mask = canvas.band_mask(height, width)[..., None]
    blurred = stretched
    radius = max(3, min(canvas.width, canvas.height) // 40)
    for _ in range(passes):  # repeated box blurs approximate a Gaussian, cheaply and without SciPy
        blurred = _box_blur(blurred, radius)
    return blurred * mask + stretched * (1.0 - mask)


def _box_blur(image: np.ndarray, radius: int) -> np.ndarray:
    out = image
    for axis in (0, 1):
        padded = np.concatenate([np.repeat(out.take([0], axis), radius, axis), out,
                                 np.repeat(out.take([-1], axis), radius, axis)], axis=axis)
        summed = np.cumsum(padded, axis=axis, dtype=np.float64)
        summed = np.concatenate([np.zeros_like(summed.take([0], axis)), summed], axis=axis)
        size = 2 * radius + 1
        upper = summed.take(np.arange(size, summed.shape[axis]), axis)
        lower = summed.take(np.arange(0, summed.shape[axis] - size), axis)
        out = ((upper - lower) / size).astype(np.float32)
    return out
