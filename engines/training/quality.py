"""PSNR and SSIM as the super-resolution and denoising literature computes them.

Images are (3, H, W) float tensors in [0, 1] (RGB). Both metrics are computed in [0, 255] after rounding
to the 8-bit grid (results are saved as 8-bit images in the papers), optionally on the Y channel of
ITU-R BT.601 YCbCr (16-235 "studio" range, as MATLAB's rgb2ycbcr), with `crop` border pixels removed.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def rgb_to_y(img: torch.Tensor) -> torch.Tensor:
    """BT.601 luma in [16, 235] from a (3, H, W) RGB tensor in [0, 255]; returns (H, W)."""
    r, g, b = img[0], img[1], img[2]
    return 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0


def _prepare(img: torch.Tensor, crop: int, y_channel: bool) -> torch.Tensor:
    x = (img.detach().double().clamp(0, 1) * 255).round()
    if y_channel:
        x = rgb_to_y(x)[None]
    if crop > 0:
        x = x[..., crop:-crop, crop:-crop]
    return x


def psnr(pred: torch.Tensor, target: torch.Tensor, crop: int = 0, y_channel: bool = False) -> float:
    """Peak signal-to-noise ratio in dB (peak 255) of two (3, H, W) [0, 1] images; inf when identical."""
    if pred.shape != target.shape:
        raise ValueError(f"shape mismatch {tuple(pred.shape)} vs {tuple(target.shape)}")
    a, b = _prepare(pred, crop, y_channel), _prepare(target, crop, y_channel)
    mse = float(((a - b) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def _gaussian_1d(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def _filter(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    # The 2-D Gaussian window is separable: two 1-D passes cost 22 instead of 121 multiply-adds per pixel.
    k = g.numel()
    return F.conv2d(F.conv2d(x, g.view(1, 1, k, 1)), g.view(1, 1, 1, k))


def ssim(pred: torch.Tensor, target: torch.Tensor, crop: int = 0, y_channel: bool = False) -> float:
    """Structural similarity (Wang et al. 2004): 11x11 Gaussian window sigma 1.5, valid region only,
    K1=0.01, K2=0.03, L=255; averaged over channels when not `y_channel`. 1.0 when identical."""
    if pred.shape != target.shape:
        raise ValueError(f"shape mismatch {tuple(pred.shape)} vs {tuple(target.shape)}")
    a, b = _prepare(pred, crop, y_channel)[:, None], _prepare(target, crop, y_channel)[:, None]
    g = _gaussian_1d()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = _filter(a, g), _filter(b, g)
    saa = _filter(a * a, g) - mu_a**2
    sbb = _filter(b * b, g) - mu_b**2
    sab = _filter(a * b, g) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * sab + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (saa + sbb + c2)
    return float((num / den).mean())
