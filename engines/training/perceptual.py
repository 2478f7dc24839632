"""Full-reference measures of what people see, beside PSNR (which rewards blur).

- GMSD, gradient magnitude similarity deviation (Xue, Zhang, Mou & Bovik, IEEE TIP 2014): the standard
  deviation over the image of the per-pixel similarity of the two gradient magnitudes. 0 when the
  gradients agree everywhere; a blurred or haloed result scores higher. Computed as the paper's reference
  code does: luma in [0, 255], 2x2 mean filter and 2x subsampling, 3x3 Prewitt filters (/3), T = 170.
- Gradient sharpness relative to the truth: mean Sobel gradient magnitude of the result over that of the
  truth. 1 is the truth's sharpness; below 1 is soft, above 1 is over-sharpened or noisy. It says nothing
  about where the edges are (GMSD does), only how much edge there is.

Both take (3, H, W) RGB tensors in [0, 1], on the 8-bit grid like `quality.psnr`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from engines.training.quality import rgb_to_y

GMSD_T = 170.0  # the paper's constant for 8-bit luma

_PREWITT_X = torch.tensor([[1.0, 0.0, -1.0]] * 3, dtype=torch.float64) / 3.0
SOBEL_X = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]], dtype=torch.float64)


def _luma(img: torch.Tensor, crop: int) -> torch.Tensor:
    """(1, 1, H, W) float64 BT.601 luma on the 8-bit grid, `crop` border pixels removed."""
    y = rgb_to_y((img.detach().double().clamp(0, 1) * 255).round())
    if crop > 0:
        y = y[crop:-crop, crop:-crop]
    return y[None, None]


def gradient_magnitude(y: torch.Tensor, kernel_x: torch.Tensor, padding: int = 0,
                       eps: float = 0.0) -> torch.Tensor:
    """|grad| of (N, 1, H, W) `y` with a 3x3 x-kernel and its transpose; `eps` keeps the square root
    differentiable at flat pixels (training losses)."""
    kx = kernel_x.to(y).view(1, 1, 3, 3)
    gx = F.conv2d(y, kx, padding=padding)
    gy = F.conv2d(y, kx.transpose(2, 3), padding=padding)
    return torch.sqrt(gx * gx + gy * gy + eps)


def gmsd(pred: torch.Tensor, target: torch.Tensor, crop: int = 0) -> float:
    """GMSD of `pred` against `target` (lower is better; 0 when identical)."""
    if pred.shape != target.shape:
        raise ValueError(f"shape mismatch {tuple(pred.shape)} vs {tuple(target.shape)}")
    a, b = _luma(pred, crop), _luma(target, crop)
    a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
    ga, gb = gradient_magnitude(a, _PREWITT_X), gradient_magnitude(b, _PREWITT_X)
    similarity = (2 * ga * gb + GMSD_T) / (ga * ga + gb * gb + GMSD_T)
    return float(similarity.std(unbiased=False))


def sharpness_ratio(pred: torch.Tensor, target: torch.Tensor, crop: int = 0) -> float:
    """Mean gradient magnitude of `pred` over that of `target` (1 = as sharp as the truth)."""
    if pred.shape != target.shape:
        raise ValueError(f"shape mismatch {tuple(pred.shape)} vs {tuple(target.shape)}")
    ga = gradient_magnitude(_luma(pred, crop), SOBEL_X).mean()
    gb = gradient_magnitude(_luma(target, crop), SOBEL_X).mean()
    return float(ga / gb.clamp(min=1e-9))


def masked_sharpness_ratio(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                           min_truth: float = 1e-9) -> float:
    """`sharpness_ratio` over the pixels where `mask` (H, W) is set: the texture a fill has, relative to the
    truth's (an inpainted hole's blur reads as a ratio well below 1). Sobel on the whole image, so the
    hole's first ring sees its seam too. NaN when the truth's mean gradient there (8-bit luma levels) is
    below `min_truth`: a ratio to a flat white band says nothing."""
    if pred.shape != target.shape:
        raise ValueError(f"shape mismatch {tuple(pred.shape)} vs {tuple(target.shape)}")
    inside = torch.as_tensor(mask)[None, None, 1:-1, 1:-1] > 0.5
    ga = gradient_magnitude(_luma(pred, 0), SOBEL_X)[inside].mean()
    gb = gradient_magnitude(_luma(target, 0), SOBEL_X)[inside].mean()
    return math.nan if float(gb) < min_truth else float(ga / gb)
