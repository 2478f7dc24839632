"""The push-pull pyramid fill: a smooth guess for unknown pixels from the known ones (Gortler et al. 1996).

Shared by the inpainting network (its first guess, exported with it to ONNX) and the masked-engine runner
(`engines.masked_fill`: neutralising holes, matching the fill to the photo along the boundary).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Pyramid depth: H and W must be at least 2**PYRAMID_LEVELS.
PYRAMID_LEVELS = 6


def push_pull(image: torch.Tensor, known: torch.Tensor, levels: int = PYRAMID_LEVELS) -> torch.Tensor:
    """Smooth first guess for the holes: a push-pull (pyramid) fill after Gortler et al. 1996.

    Push: each coarser level holds the mean colour of the known pixels under each cell and a confidence,
    the children's summed confidence clipped to 1 (so a cell with any fully known child is fully trusted
    and carries *local* colour, not a blend with far-away content). Stride-2 average pooling in floor mode:
    an odd last row/column is dropped at that level, which only coarsens the guess. Pull: from the global
    mean of the known pixels down to full resolution, each level keeps its own colour where confident and
    takes the bilinearly upsampled coarser guess for the rest. Known pixels come out exactly as they went
    in. Needs H, W >= 2**levels.
    """
    colour, conf = image, known
    stack = [(colour, conf)]
    for _ in range(levels):
        total = 4.0 * F.avg_pool2d(conf, 2)
        colour = 4.0 * F.avg_pool2d(colour * conf, 2) / total.clamp(min=1e-6)
        conf = total.clamp(max=1.0)
        stack.append((colour, conf))
    # Global mean of the known pixels; mid grey when nothing is known (eps keeps it finite).
    guess = ((image * known).mean(dim=(2, 3), keepdim=True) + 0.5e-4) / (known.mean(dim=(2, 3), keepdim=True) + 1e-4)
    for colour, conf in reversed(stack):
        up = F.interpolate(guess, size=colour.shape[-2:], mode="bilinear", align_corners=False)
        guess = conf * colour + (1.0 - conf) * up
    return guess
