"""Pure tiling: pad, split into tiles within an engine's budget, and blend the outputs back.

Nothing here touches a model or keeps state; every function takes arrays and returns new ones, so the
same plan can be tested without a network and reused across images (see `Engine.process_many`).

Geometry (all in input pixels, "padded" means after the reflect padding below):
- The image is first reflect-padded by `border` on every side (context for the image edges, as
  Real-ESRGAN's `pre_pad`), then reflect-padded on the bottom/right up to `size_multiple` and `min_size`
  (and to a square when the model needs one).
- Tiles are all the same size (at most `tile_size`, shrunk to the smallest size that needs no more tiles
  than the full budget would), start on multiples of `size_multiple` (strided
  convolutions only commute with shifts by that multiple), and neighbours overlap by at least
  2 * margin + feather.
- A tile's output is trusted only `margin` pixels away from any edge where the tile was cut out of the
  padded image (margin >= the receptive-field radius, so those pixels see exactly the context they would
  see in a whole-image run); its weight is 0 in that band, then rises linearly over `feather` pixels to 1.
  With an exact receptive field the blend changes nothing; for models whose true receptive field is
  wider than the margin (attention, FFT) the ramp hides the seam instead of leaving a step.
- The weighted sum is normalised, the padding is cropped off, and the result is clamped to [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "DEFAULT_BORDER",
    "TilePlan",
    "blend_tiles",
    "extract_tiles",
    "min_tile_size",
    "pad_image",
    "plan_tiles",
    "reflect_pad",
]

# Reflect context added around the whole image. Its job is edge quality, not seam hiding (the margin does
# that), and beyond ~10-16 pixels its effect on edge pixels is below 1/255 for the models we ship (Real-
# ESRGAN uses 10); taking the full margin would grow every image by 2 * margin for nothing.
DEFAULT_BORDER = 16


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def default_feather(margin: int) -> int:
    """Blend width used when the caller does not choose one: half the margin, at least 2 pixels."""
    return max(2, margin // 2)


def min_tile_size(margin: int, multiple: int = 1, feather: int | None = None, min_size: int = 1) -> int:
    """Smallest tile side that still advances by a useful stride (>= 16 px) after margins and feather."""
    feather = default_feather(margin) if feather is None else feather
    return max(min_size, _round_up(2 * margin + feather + 16, multiple))


@dataclass(frozen=True)
class TilePlan:
    """Where the tiles of one image go. Coordinates are in padded input pixels.

    height, width: the original image size.
    pad: (top, bottom, left, right) reflect padding applied before tiling.
    tile_h, tile_w: the size of every tile (all tiles share it, so they batch together).
    origins: (y, x) of each tile's top-left corner, row-major.
    margin, feather: see the module docstring; scale: output pixels per input pixel.
    """

    height: int
    width: int
    pad: tuple[int, int, int, int]
    tile_h: int
    tile_w: int
    origins: tuple[tuple[int, int], ...]
    margin: int
    feather: int
    scale: int

    @property
    def padded_h(self) -> int:
        return self.height + self.pad[0] + self.pad[1]

    @property
    def padded_w(self) -> int:
        return self.width + self.pad[2] + self.pad[3]

    def __len__(self) -> int:
        return len(self.origins)


def _axis_origins(length: int, tile: int, margin: int, feather: int, multiple: int) -> list[int]:
    if length <= tile:
        return [0]
    stride = (tile - 2 * margin - feather) // multiple * multiple
    if stride < multiple:
        raise ValueError(f"tile {tile} leaves no stride after margin {margin} and feather {feather}")
    origins = list(range(0, length - tile, stride))
    # The last tile is flush with the far edge; length and tile are multiples of `multiple`, so it stays
    # aligned, and it overlaps its neighbour by more than the minimum (coverage holds).
    origins.append(length - tile)
    return origins


def _balanced_tile(length: int, tile: int, margin: int, feather: int, multiple: int, min_size: int) -> int:
    """The smallest tile side that covers `length` with as many tiles as the full budget would need.

    Without this a 288-px axis with a 256-px budget gets two 256-px tiles (1.8x the work); balanced, it
    gets two 164-px tiles.
    """
    if length <= tile:
        return length
    stride = (tile - 2 * margin - feather) // multiple * multiple
    if stride < multiple:
        raise ValueError(f"tile {tile} leaves no stride after margin {margin} and feather {feather}")
    count = -(-(length - tile) // stride) + 1
    # Adjacent tiles must overlap by 2 * margin + feather (+ up to multiple - 1 lost to alignment).
    balanced = _round_up(-(-(length + (count - 1) * (2 * margin + feather + multiple - 1)) // count), multiple)
    return max(min(tile, balanced), _round_up(min_size, multiple))


def plan_tiles(
    height: int,
    width: int,
    *,
    tile_size: int,
    margin: int,
    scale: int = 1,
    multiple: int = 1,
    min_size: int = 1,
    square: bool = False,
    border: int | None = None,
    feather: int | None = None,
) -> TilePlan:
    """Plan the padding and tiles for a `height` x `width` image (pixels).

    tile_size: largest tile side in input pixels (rounded down to `multiple`).
    margin: pixels discarded next to cut edges; must be >= the model's receptive-field radius.
    border: reflect padding around the image, default min(margin, DEFAULT_BORDER).
    feather: blend ramp width, default `default_feather(margin)`.
    """
    if height < 1 or width < 1:
        raise ValueError(f"empty image {height}x{width}")
    if tile_size < 1 or margin < 0 or multiple < 1:
        raise ValueError("tile_size and multiple must be >= 1 and margin >= 0")
    border = min(margin, DEFAULT_BORDER) if border is None else border
    feather = default_feather(margin) if feather is None else feather
    tile_size = tile_size // multiple * multiple
    if tile_size < min_size or tile_size < 1:
        raise ValueError(f"tile_size {tile_size} is below the model's minimum {min_size} or multiple {multiple}")

    ph = max(_round_up(height + 2 * border, multiple), _round_up(min_size, multiple))
    pw = max(_round_up(width + 2 * border, multiple), _round_up(min_size, multiple))
    tile_h = _balanced_tile(ph, tile_size, margin, feather, multiple, min_size)
    tile_w = _balanced_tile(pw, tile_size, margin, feather, multiple, min_size)
    if square:
        tile_h = tile_w = max(tile_h, tile_w)
        ph, pw = max(ph, tile_h), max(pw, tile_w)
    pad = (border, ph - height - border, border, pw - width - border)
    ys = _axis_origins(ph, tile_h, margin, feather, multiple)
    xs = _axis_origins(pw, tile_w, margin, feather, multiple)
    origins = tuple((y, x) for y in ys for x in xs)
    return TilePlan(height, width, pad, tile_h, tile_w, origins, margin, feather, scale)


def reflect_pad(image: np.ndarray, top: int, bottom: int, left: int, right: int) -> np.ndarray:
    """Reflect-pad an HxWxC (or HxW) array; pads wider than the image reflect repeatedly.

    A 1-pixel axis cannot be reflected, so it is replicated instead.
    """
    widths = [(top, bottom), (left, right)] + [(0, 0)] * (image.ndim - 2)
    if min(image.shape[0], image.shape[1]) > 1:
        return np.pad(image, widths, mode="reflect")
    return np.pad(image, widths, mode="symmetric")


def pad_to_size_rule(x, multiple: int, min_size: int = 1):
    """An NCHW torch tensor padded at the bottom and right to the size rule (H, W multiples of `multiple`
    and at least `min_size`): reflected, or replicated where an axis is too short to reflect.

    For whole-image runs of a raw network (evaluation); engines pad through their tile plan instead.
    """
    import torch.nn.functional as F

    h, w = x.shape[-2:]

    def extra(n: int) -> int:
        return max(-n % multiple, min_size - n + (-min_size % multiple)) if n < min_size else -n % multiple

    ph, pw = extra(h), extra(w)
    if not (ph or pw):
        return x
    return F.pad(x, (0, pw, 0, ph), mode="reflect" if ph < h and pw < w else "replicate")


def pad_image(image: np.ndarray, plan: TilePlan) -> np.ndarray:
    """Apply the plan's padding to an HxWxC image (any dtype); returns a new padded_h x padded_w x C array."""
    if image.shape[:2] != (plan.height, plan.width):
        raise ValueError(f"image {image.shape[:2]} does not match plan {(plan.height, plan.width)}")
    return reflect_pad(image, *plan.pad)


def extract_tiles(padded: np.ndarray, plan: TilePlan) -> np.ndarray:
    """Cut the tiles out of a padded HxWxC image: returns (N, C, tile_h, tile_w), same dtype, contiguous."""
    tiles = [padded[y : y + plan.tile_h, x : x + plan.tile_w] for y, x in plan.origins]
    return np.ascontiguousarray(np.stack(tiles).transpose(0, 3, 1, 2))


def _axis_weights(origin: int, tile: int, length: int, plan: TilePlan) -> np.ndarray:
    """1-D blend weights at output resolution for one tile along one axis."""
    s = plan.scale
    n, margin, feather = tile * s, plan.margin * s, max(1, plan.feather * s)
    # Leading-edge profile: 0 over the margin, then a half-pixel centred ramp strictly inside (0, 1), then 1.
    lead = np.ones(n, dtype=np.float32)
    lead[:margin] = 0.0
    k = max(0, min(feather, n - margin))
    lead[margin : margin + k] = (np.arange(k, dtype=np.float32) + 0.5) / feather
    w = np.ones(n, dtype=np.float32)
    if origin > 0:  # cut on the leading side
        w = np.minimum(w, lead)
    if origin + tile < length:  # cut on the trailing side
        w = np.minimum(w, lead[::-1])
    return w


def blend_tiles(outputs: np.ndarray, plan: TilePlan) -> np.ndarray:
    """Blend per-tile outputs (N, C, tile_h*scale, tile_w*scale) into the image: H*scale x W*scale x C.

    Returns float32, cropped to the original image and clamped to [0, 1].
    """
    s = plan.scale
    n, c, th, tw = outputs.shape
    if n != len(plan) or (th, tw) != (plan.tile_h * s, plan.tile_w * s):
        raise ValueError(
            f"outputs {outputs.shape} do not match plan ({len(plan)} tiles of {plan.tile_h}x{plan.tile_w} x{s})"
        )
    top, _, left, _ = plan.pad
    acc = np.zeros((c, plan.padded_h * s, plan.padded_w * s), dtype=np.float32)
    wsum = np.zeros((plan.padded_h * s, plan.padded_w * s), dtype=np.float32)
    for tile, (y, x) in zip(outputs, plan.origins, strict=True):
        wy = _axis_weights(y, plan.tile_h, plan.padded_h, plan)
        wx = _axis_weights(x, plan.tile_w, plan.padded_w, plan)
        w = wy[:, None] * wx[None, :]
        acc[:, y * s : y * s + th, x * s : x * s + tw] += tile.astype(np.float32, copy=False) * w
        wsum[y * s : y * s + th, x * s : x * s + tw] += w
    crop = (slice(None), slice(top * s, (top + plan.height) * s), slice(left * s, (left + plan.width) * s))
    result = acc[crop] / wsum[crop[1:]]
    return np.clip(result.transpose(1, 2, 0), 0.0, 1.0)
