"""PSNR / SSIM follow the literature's definitions."""

from __future__ import annotations

import math

import numpy as np
import torch

from engines.training.quality import psnr, rgb_to_y, ssim


def _img(seed: int, h: int = 24, w: int = 24) -> torch.Tensor:
    return torch.rand(3, h, w, generator=torch.Generator().manual_seed(seed))


def test_identical_images() -> None:
    x = _img(0)
    assert psnr(x, x) == math.inf
    assert psnr(x, x, crop=2, y_channel=True) == math.inf
    assert ssim(x, x) == 1.0


def test_psnr_known_value_one_grey_level() -> None:
    x = torch.full((3, 8, 8), 100 / 255)
    y = torch.full((3, 8, 8), 101 / 255)
    # MSE = 1 on the [0, 255] scale -> 20 log10(255)
    assert abs(psnr(x, y) - 20 * math.log10(255)) < 1e-9


def test_y_channel_is_bt601_studio_range() -> None:
    assert abs(float(rgb_to_y(torch.zeros(3, 1, 1) + 0)[0, 0]) - 16) < 1e-9
    assert abs(float(rgb_to_y(torch.full((3, 1, 1), 255.0))[0, 0]) - 235) < 1e-3


def test_crop_removes_border() -> None:
    x = _img(1)
    y = x.clone()
    y[:, :2, :] = 0  # only the border differs
    assert psnr(x, y, crop=2) == math.inf


def _ssim_reference(a: np.ndarray, b: np.ndarray) -> float:
    """Direct per-window SSIM (Wang et al.), Gaussian 11x11 sigma 1.5, valid windows, L = 255."""
    g = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    vals = []
    for i in range(a.shape[0] - 10):
        for j in range(a.shape[1] - 10):
            pa, pb = a[i : i + 11, j : j + 11], b[i : i + 11, j : j + 11]
            ma, mb = (w * pa).sum(), (w * pb).sum()
            va, vb = (w * (pa - ma) ** 2).sum(), (w * (pb - mb) ** 2).sum()
            cov = (w * (pa - ma) * (pb - mb)).sum()
            vals.append(((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2)))
    return float(np.mean(vals))


def test_ssim_matches_direct_reference_on_tiny_case() -> None:
    x = _img(2, 16, 18)
    y = (x + 0.1 * _img(3, 16, 18)).clamp(0, 1)
    ya = rgb_to_y((x.double() * 255).round()).numpy()
    yb = rgb_to_y((y.double() * 255).round()).numpy()
    assert abs(ssim(x, y, y_channel=True) - _ssim_reference(ya, yb)) < 1e-9
    assert 0 < ssim(x, y) < 1
