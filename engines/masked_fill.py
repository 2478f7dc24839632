"""Fill a mask on a full-resolution canvas with an inpainting engine run at a working resolution.

Why not tile at full resolution: an inpainting model needs to see the whole hole and its surroundings,
and a compact network trained on whole 192 px canvases sees ~300 px around a pixel; a 1600 px photo with a
box of 20 % of its area (~700 px wide) would get a hole wider than anything the model can reason about. So:

1. replace the hole's pixels with a smooth push-pull fill of the known ones (on every path), then shrink
   the canvas (antialiased) so its longest side is `work_side` (nothing happens when it already is
   smaller); the mask is shrunk by "any coverage" and dilated by `MASK_GROW` px. Both keep the hole's
   original content (the object being removed, padding, or in evaluation the ground truth) out of the
   pixels the model sees: the shrink's resampling taps reach ~2 working pixels across the hole edge;
2. run the engine there (`process(image, mask) -> composited image`: `Engine.fill` hands its `process`);
3. upsample the result (bicubic), correct it so it meets the full-resolution photo exactly along the
   hole's edge (the upsampled fill's error on the known pixels, interpolated into the hole by a
   push-pull pyramid and added: a smooth offset that fades inward), and composite it into the photo:
   every known pixel keeps the original's bytes;
4. feather the seam inward: the first `feather` px inside the hole are blended, linearly by depth,
   towards the boundary's own continuation (each ring of the hole, peeled from the outside, takes the
   mean of its already-set 3x3 neighbours), so the fill meets the photo without a step where the photo
   is textured and the fill is smooth (`retouch eval inpaint` measures that step: `boundary_step_error`).

Thin side bands (a 3:4 photo outpainted to 4:5: ~25 px a side on a 1,024 px canvas, ~5 px at the working
side, a blur there) take a second path when `strips` is on: each band is filled on a strip of the canvas,
the band plus context to `STRIP_WIDTH` px, run at `STRIP_SCALE` (the canvas shrunk so its longest side is
1,024 px: a listing canvas, where the shipped model was also trained on border strips, see
`engines/training/inpaint_strips.py`), with the same shrink / boundary-match / feather steps.

Holes that fit a window (`hole_windows`: each hole, or each group of holes close together, plus
`context` x its size of photo on every side) take a third path when the engine sets `crop_side` (for a
model trained on such windows; `engines.training.inpaint_holes` cuts them the same way): each window is cut
out of the full-resolution photo and filled by steps 1-4 at up to `crop_side` px, so a 5 % box on a 1,024
px listing (about 230 px) is filled at about 1.5x reduction instead of 5x. Resolution alone does not
bring texture: the shipped retouch-inpaint (trained on whole 192 px canvases) on windows at 384 px scored
texture 0.36 of the truth's against 0.30 on the whole canvas, and 12.61 against 14.25 dB (12 held-aside
product boxes), so it keeps the whole-canvas path. Bands and holes whose window is most of the photo stay
on the whole-canvas path.

Pure numpy + torch (resampling); no state, no model knowledge.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["DEFAULT_FEATHER", "DEFAULT_WORK_SIDE", "HOLE_CONTEXT", "MASK_GROW", "MAX_WINDOW_SHARE", "STRIP_MAX_BAND",
           "STRIP_SCALE", "STRIP_WIDTH", "boundary_continuation", "fill", "hole_windows", "resize",
           "side_band_widths", "window_around"]

# The fallback working side (retouch-inpaint's); engines pass their own `spec.work_side` (`Engine.fill`).
DEFAULT_WORK_SIDE = 192
DEFAULT_FEATHER = 4
MASK_GROW = 1
# Strip path for thin side bands: canvas scale (longest side, px), strip width and the widest band it
# takes, both in px at that scale (wider bands go to the whole-canvas path, where they are >= 9 px).
STRIP_SCALE = 1024
STRIP_WIDTH = 128
STRIP_MAX_BAND = 48
# Hole windows (module doc): photo kept on every side of a hole, as a fraction of the hole's longer side
# (at least HOLE_MIN_CONTEXT px), and the largest window, as a share of the photo's area, worth cutting.
HOLE_CONTEXT = 0.5
HOLE_MIN_CONTEXT = 32
MAX_WINDOW_SHARE = 0.6

Process = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""process(image HxWx3 float32 [0, 1], mask HxW {0, 1}) -> HxWx3 float32 [0, 1], holes filled."""


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize an HxWxC float32 array: antialiased bicubic when shrinking, bicubic when enlarging; clamped."""
    if image.shape[:2] == (height, width):
        return image.astype(np.float32, copy=True)
    t = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]
    shrinking = height < image.shape[0] or width < image.shape[1]
    out = F.interpolate(t, size=(height, width), mode="bicubic", align_corners=False, antialias=shrinking)
    return out[0].permute(1, 2, 0).clamp_(0.0, 1.0).numpy()


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    if radius <= 0:
        return mask
    t = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None, None]
    return F.max_pool2d(t, 2 * radius + 1, stride=1, padding=radius)[0, 0].numpy()


def boundary_continuation(image: np.ndarray, hard: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """The photo continued `depth` px into the hole by peeling: ring k (the hole pixels with a ring-(k-1)
    or known pixel among their 3x3 neighbours) takes the mean of those neighbours. Returns (HxWx3 values,
    HxW ring number: 0 on known pixels and beyond `depth`)."""
    known = torch.from_numpy(1.0 - hard)[None, None]
    values = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None] * known
    ring = torch.zeros_like(known)
    done = known.clone()
    for k in range(1, depth + 1):
        total = F.avg_pool2d(values * done, 3, stride=1, padding=1, count_include_pad=False)
        count = F.avg_pool2d(done, 3, stride=1, padding=1, count_include_pad=False)
        new = (count > 0) & (done == 0)
        values = torch.where(new, total / count.clamp(min=1e-6), values)
        ring = torch.where(new, torch.full_like(ring, k), ring)
        done = done + new.float()
    return values[0].permute(1, 2, 0).numpy(), ring[0, 0].numpy()


def _push_pull_known(values: np.ndarray, hard: np.ndarray) -> np.ndarray:
    """HxWx3 `values` on the known pixels, extended into the hole by the push-pull pyramid (smooth)."""
    from engines.push_pull import push_pull

    known = torch.from_numpy(1.0 - hard)[None, None]
    x = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32)).permute(2, 0, 1)[None] * known
    levels = max(1, min(8, int(np.log2(min(hard.shape)))))
    return push_pull(x, known, levels)[0].permute(1, 2, 0).numpy()


def _neutral_holes(image: np.ndarray, hard: np.ndarray) -> np.ndarray:
    """`image` with its hole pixels replaced by the push-pull fill of its known pixels (see module doc, 1.)."""
    return _push_pull_known(image, hard)


def _match_boundary(up: np.ndarray, image: np.ndarray, hard: np.ndarray) -> np.ndarray:
    """Add to the upsampled fill the push-pull interpolation of its error on the known pixels, so it meets
    the full-resolution photo exactly at the hole's edge and the correction fades smoothly inward (the
    membrane idea of seamless cloning, in closed form). Known pixels come out as `image` exactly."""
    return np.clip(up + _push_pull_known(image - up, hard), 0.0, 1.0)


def side_band_widths(hard: np.ndarray) -> tuple[int, int] | None:
    """(left, right) widths in px when the hole is exactly full-height bands along the left and/or right
    edges (an outpainted canvas wider than its photo), else None."""
    full = hard.all(axis=0)
    if not full.any() or not np.array_equal(full, hard.any(axis=0)):
        return None
    left = int(np.argmin(full)) if not full.all() else full.size
    right = int(np.argmin(full[::-1]))
    return (left, right) if left + right == int(full.sum()) else None


def _fill_side_strips(process: Process, image: np.ndarray, hard: np.ndarray, bands: tuple[int, int],
                      scale: float, feather: int) -> np.ndarray:
    """Each side band filled on its own strip of the canvas at `scale` (see module doc)."""
    h, w = hard.shape
    out = image.astype(np.float32, copy=True)
    cols = min(w, math.ceil(STRIP_WIDTH / scale))
    for band, strip in ((bands[0], slice(0, cols)), (bands[1], slice(w - cols, w))):
        if band:
            out[:, strip] = fill(process, image[:, strip], hard[:, strip], work_side=round(max(h, cols) * scale),
                                 feather=feather, strips=False)
    return out


Box = tuple[int, int, int, int]
"""(y0, y1, x0, x1), end-exclusive."""


def window_around(box: Box, shape: tuple[int, int], context: float = HOLE_CONTEXT) -> Box:
    """`box` grown by `context` x its longer side (at least HOLE_MIN_CONTEXT px) on every side, clipped to
    `shape` (H, W). Training cuts its samples the same way (`engines.training.inpaint_holes`)."""
    y0, y1, x0, x1 = box
    margin = max(HOLE_MIN_CONTEXT, round(context * max(y1 - y0, x1 - x0)))
    h, w = shape
    return max(0, y0 - margin), min(h, y1 + margin), max(0, x0 - margin), min(w, x1 + margin)


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3]


def hole_windows(hard: np.ndarray, context: float = HOLE_CONTEXT) -> list[Box]:
    """Windows that each hold whole holes with `context` around them: every hole's window, merged with any
    window it overlaps until none overlap (a hole touching a window is then inside it, never cut)."""
    from scipy import ndimage

    labels, count = ndimage.label(hard > 0.5, structure=np.ones((3, 3)))
    pending = [window_around((s[0].start, s[0].stop, s[1].start, s[1].stop), hard.shape, context)
               for s in ndimage.find_objects(labels)[:count]]
    done: list[Box] = []
    while pending:
        window = pending.pop()
        touching = [d for d in done if _overlap(window, d)]
        if not touching:
            done.append(window)
            continue
        # The union may now touch other finished windows: it goes back to be checked again.
        done = [d for d in done if d not in touching]
        every = [window, *touching]
        pending.append((min(b[0] for b in every), max(b[1] for b in every),
                        min(b[2] for b in every), max(b[3] for b in every)))
    return done


def _fill_windows(process: Process, image: np.ndarray, hard: np.ndarray, windows: list[Box], crop_side: int,
                  feather: int) -> np.ndarray:
    """Each window filled on its own at up to `crop_side` px (module doc); windows never overlap."""
    out = image.astype(np.float32, copy=True)
    for y0, y1, x0, x1 in windows:
        out[y0:y1, x0:x1] = fill(process, image[y0:y1, x0:x1], hard[y0:y1, x0:x1], work_side=crop_side,
                                 feather=feather, strips=False)
    return out


def fill(process: Process, image: np.ndarray, mask: np.ndarray, work_side: int = DEFAULT_WORK_SIDE,
         feather: int = DEFAULT_FEATHER, strips: bool = True, crop_side: int | None = None) -> np.ndarray:
    """Fill `mask` (HxW, 1 = generate) in `image` (HxWx3 float [0, 1]) with `process` at `work_side`;
    with `strips`, thin side bands on canvases of at least `STRIP_SCALE` px on strips instead; with
    `crop_side`, holes that fit a window on windows around them at up to `crop_side` px (module doc).

    Returns HxWx3 float32 in [0, 1]: the known pixels are `image` exactly; `feather` px of the hole's
    edge are blended towards the photo's continuation (module doc, 4.).
    """
    h, w = mask.shape
    hard = (mask > 0.5).astype(np.float32)
    if not hard.any():
        return image.astype(np.float32, copy=True)
    bands = side_band_widths(hard) if strips else None
    strip_scale = STRIP_SCALE / max(h, w)
    # Strips only where they are what the model was trained on: canvases shrunk (never enlarged) to the
    # strip scale, bands no wider than trained, and room for the two strips side by side.
    if bands and strip_scale <= 1 and max(bands) * strip_scale <= STRIP_MAX_BAND and w * strip_scale >= 3 * STRIP_WIDTH:
        return _fill_side_strips(process, image, hard, bands, strip_scale, feather)
    if crop_side and bands is None:
        windows = hole_windows(hard)
        if sum((y1 - y0) * (x1 - x0) for y0, y1, x0, x1 in windows) <= MAX_WINDOW_SHARE * h * w:
            return _fill_windows(process, image, hard, windows, crop_side, feather)
    scale = min(1.0, work_side / max(h, w))
    if scale < 1.0:
        sh, sw = max(8, round(h * scale)), max(8, round(w * scale))
        small = resize(_neutral_holes(image, hard), sh, sw)
        # "Any coverage" shrink of the mask (area average > 0), then a safety margin for the resampling taps.
        t = torch.from_numpy(hard)[None, None]
        covered = F.interpolate(t, size=(sh, sw), mode="area")[0, 0].numpy() > 1e-4
        small_mask = _dilate(covered.astype(np.float32), MASK_GROW)
        filled = _match_boundary(resize(process(small, small_mask), h, w), image, hard)
    else:
        filled = process(_neutral_holes(image, hard), hard)
    out = np.where(hard[..., None] > 0.5, filled, image).astype(np.float32)
    if feather > 0:
        seam, ring = boundary_continuation(image, hard, feather)
        weight = np.where(ring > 0, 1.0 - ring / (feather + 1), 0.0).astype(np.float32)[..., None]
        out = out * (1.0 - weight) + seam * weight
    return out
