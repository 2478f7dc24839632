"""Product mattes taken from catalogue photos shot on white: the matting family's training truth.

Most catalogue photos sit on a studio white, so the product is what is not that white. The recipe:
1. The photo qualifies when its outer ring is almost all near-white (`ground_colour`): a model on a
   coloured set, a lifestyle scene or a product filling the frame gives no matte (such photos serve as
   backgrounds instead).
2. Distance from the ground, per pixel, the largest channel difference (0-255).
3. Background is the near-ground region connected to the frame (a flood fill from the border), so white
   parts inside a product (a label, a white sole) stay product; large enclosed patches that are exactly
   the ground colour (the white seen through a mug's handle) are background too.
4. The edge is soft: across a few pixels around the product's outline, each pixel is read as a blend of
   the ground and the product's nearby colour, so anti-aliased and slightly blurred outlines come out
   as partial alpha (for near-white products, alpha follows the distance from the ground instead).

Where it is wrong, by construction: a soft grey contact shadow darker than `_PRODUCT_ABOVE` counts as
product; a white product touching a white ground along a faint edge loses that part of its outline;
enclosed white regions of the product itself that match the ground exactly are cut out. The card says so.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["ground_colour", "product_matte"]

_RING = 0.02  # the outer ring's width, as a share of the short side
_NEAR_WHITE = 228  # every channel at least this in the ring for a white ground ...
_MAX_CHROMA = 14  # ... and channels within this of each other (grey-white, not cream or pink)
_RING_SHARE = 0.55  # share of the ring that must be near-white (a model cut by the frame covers the rest)
_GROUND_BELOW = 12  # distance from the ground under which a border-connected pixel is background
_PRODUCT_ABOVE = 28  # distance at which the soft edge reaches full opacity
_EXACT_GROUND = 3  # enclosed patches this close to the ground ...
_ENCLOSED_SHARE = 0.003  # ... and at least this share of the photo are background seen through the product
_MIN_COVERAGE, _MAX_COVERAGE = 0.02, 0.85
_SPECK_SHARE = 0.0002  # background pockets smaller than this share of the photo are closed


def ground_colour(rgb: np.ndarray) -> np.ndarray | None:
    """The studio ground's colour (3 floats, 0-255) when the photo's outer ring is near-white; else None."""
    height, width, _ = rgb.shape
    ring = max(2, int(round(min(height, width) * _RING)))
    pixels = np.concatenate([rgb[:ring].reshape(-1, 3), rgb[-ring:].reshape(-1, 3),
                             rgb[:, :ring].reshape(-1, 3), rgb[:, -ring:].reshape(-1, 3)]).astype(np.int16)
    white = (pixels.min(axis=1) >= _NEAR_WHITE) & (np.ptp(pixels, axis=1) <= _MAX_CHROMA)
    if white.mean() < _RING_SHARE:
        return None
    return np.median(pixels[white], axis=0).astype(np.float32)


def product_matte(rgb: np.ndarray) -> np.ndarray | None:
    """(H, W) float32 alpha in [0, 1] of the product in an HxWx3 uint8 photo on white; None when the photo
    is not on white or the product covers too little or too much of it to be a clean catalogue shot."""
    ground = ground_colour(rgb)
    if ground is None:
        return None
    distance = np.abs(rgb.astype(np.float32) - ground).max(axis=2)
    near = distance < _GROUND_BELOW
    labels, _ = ndimage.label(near)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    background = np.isin(labels, border[border > 0])
    # White seen through the product (handles, gaps between straps): large, enclosed, exactly the ground.
    exact, count = ndimage.label((distance < _EXACT_GROUND) & ~background)
    if count:
        sizes = ndimage.sum_labels(np.ones_like(distance), exact, index=np.arange(1, count + 1))
        big = np.flatnonzero(sizes >= _ENCLOSED_SHARE * distance.size) + 1
        background |= np.isin(exact, big)
    product = ~background
    # Specks (dust, JPEG noise on the ground) are not products; holes of a few pixels are not background.
    product = ndimage.binary_opening(product, iterations=1)
    gaps, count = ndimage.label(~product)
    if count:
        sizes = ndimage.sum_labels(np.ones_like(distance), gaps, index=np.arange(1, count + 1))
        product |= np.isin(gaps, np.flatnonzero(sizes < _SPECK_SHARE * distance.size) + 1)
    coverage = product.mean()
    if not _MIN_COVERAGE <= coverage <= _MAX_COVERAGE:
        return None
    alpha = product.astype(np.float32)
    edge = ndimage.binary_dilation(product, iterations=2) & ~ndimage.binary_erosion(product, iterations=2)
    alpha[edge] = _edge_alpha(rgb, ground, distance, product)[edge]
    return alpha


def _edge_alpha(rgb: np.ndarray, ground: np.ndarray, distance: np.ndarray, product: np.ndarray) -> np.ndarray:
    """Partial alpha along the outline: an edge pixel is taken as a blend of the ground and the product's
    nearby colour (the product's interior filled outwards), alpha being where it sits on the line between
    them. Where the product is itself near-white, that line is too short to measure on, and alpha follows
    the distance from the ground instead."""
    import torch

    from engines.push_pull import push_pull

    interior = ndimage.binary_erosion(product, iterations=3)
    image = torch.from_numpy(rgb.astype(np.float32)).permute(2, 0, 1)[None]
    known = torch.from_numpy(interior.astype(np.float32))[None, None]
    height, width = distance.shape
    padded = (-height % 64, -width % 64)  # push-pull wants sides that halve cleanly
    nearby = push_pull(torch.nn.functional.pad(image, (0, padded[1], 0, padded[0]), mode="replicate"),
                       torch.nn.functional.pad(known, (0, padded[1], 0, padded[0])))
    nearby = nearby[0, :, :height, :width].permute(1, 2, 0).numpy()
    line = nearby - ground
    length2 = (line**2).sum(axis=2)
    along = ((rgb.astype(np.float32) - ground) * line).sum(axis=2) / np.maximum(length2, 1.0)
    by_distance = (distance - _GROUND_BELOW / 2) / (_PRODUCT_ABOVE - _GROUND_BELOW / 2)
    return np.clip(np.where(length2 > (2 * _PRODUCT_ABOVE) ** 2, along, by_distance), 0.0, 1.0).astype(np.float32)
