"""Fill a mask on a full-resolution canvas with an inpainting engine run at a working resolution.

Why not tile at full resolution: an inpainting model needs to see the whole hole and its surroundings,
and a compact network trained on whole 192 px canvases sees ~300 px around a pixel; a 1600 px photo with a
box of 20 % of its area (~700 px wide) would get a hole wider than anything the model can reason about. So:

1. replace the hole's pixels with a smooth push-pull fill of the known ones, then shrink the canvas
   (antialiased) so its longest side is `work_side` (nothing happens when it already is smaller); the
   mask is shrunk by "any coverage" and dilated by `MASK_GROW` px. Both keep the hole's original content
   (the object being removed, padding, or in evaluation the ground truth) out of the pixels the model
   sees: the shrink's resampling taps reach ~2 working pixels across the hole edge;
2. run the engine there (`process(image, mask) -> composited image`, e.g. `Engine.process`);
3. upsample the result (bicubic), correct it so it meets the full-resolution photo exactly along the
   hole's edge (the upsampled fill's error on the known pixels, interpolated into the hole by a
   push-pull pyramid and added: a smooth offset that fades inward), and composite it into the photo with
   a mask feathered `feather` px outward: pixels outside the feather band are the original's bytes.

Pure numpy + torch (resampling); no state, no model knowledge.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["DEFAULT_FEATHER", "DEFAULT_WORK_SIDE", "MASK_GROW", "feather_mask", "fill", "resize"]

DEFAULT_WORK_SIDE = 192  # the canvas side retouch-inpaint was trained at (--canvas-side 192); see its card
DEFAULT_FEATHER = 4
MASK_GROW = 1

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


def feather_mask(mask: np.ndarray, feather: int) -> np.ndarray:
    """A soft HxW mask: 1 on the hole, falling linearly to 0 over `feather` px outside it (chessboard
    distance), 0 beyond. feather 0 returns the hard mask."""
    hard = (mask > 0.5).astype(np.float32)
    soft = hard.copy()
    for r in range(1, feather + 1):
        soft = np.maximum(soft, _dilate(hard, r) * (1.0 - r / (feather + 1)))
    return soft


def _neutral_holes(image: np.ndarray, hard: np.ndarray) -> np.ndarray:
    """`image` with its hole pixels replaced by the push-pull fill of its known pixels (see module doc, 1.)."""
    from engines.archs.compact_inpainter import push_pull

    known = torch.from_numpy(1.0 - hard)[None, None]
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None] * known
    levels = max(1, min(8, int(np.log2(min(hard.shape)))))
    return push_pull(x, known, levels)[0].permute(1, 2, 0).numpy()


def _match_boundary(up: np.ndarray, image: np.ndarray, hard: np.ndarray) -> np.ndarray:
    """Add to the upsampled fill the push-pull interpolation of its error on the known pixels, so it meets
    the full-resolution photo exactly at the hole's edge and the correction fades smoothly inward (the
    membrane idea of seamless cloning, in closed form). Known pixels come out as `image` exactly."""
    from engines.archs.compact_inpainter import push_pull

    known = torch.from_numpy(1.0 - hard)[None, None]
    resid = torch.from_numpy(np.ascontiguousarray(image - up, dtype=np.float32)).permute(2, 0, 1)[None] * known
    levels = max(1, min(8, int(np.log2(min(hard.shape)))))
    corr = push_pull(resid, known, levels)[0].permute(1, 2, 0).numpy()
    return np.clip(up + corr, 0.0, 1.0)


def fill(process: Process, image: np.ndarray, mask: np.ndarray, work_side: int = DEFAULT_WORK_SIDE,
         feather: int = DEFAULT_FEATHER) -> np.ndarray:
    """Fill `mask` (HxW, 1 = generate) in `image` (HxWx3 float [0, 1]) with `process` at `work_side`.

    Returns HxWx3 float32 in [0, 1]: pixels farther than `feather` px from the hole are `image` exactly.
    """
    h, w = mask.shape
    hard = (mask > 0.5).astype(np.float32)
    if not hard.any():
        return image.astype(np.float32, copy=True)
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
        filled = process(image.astype(np.float32), hard)
    soft = feather_mask(hard, feather)[..., None]
    return (image * (1.0 - soft) + filled * soft).astype(np.float32)
