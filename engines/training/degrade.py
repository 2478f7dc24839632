"""Degradations that turn clean images into training/evaluation inputs, seeded and reproducible.

All functions take and return float tensors in [0, 1] shaped (C, H, W) or (N, C, H, W) unless stated,
and draw randomness only from the `numpy.random.Generator` they are given, so a (seed, step) pair
fixes every pixel of a batch.

- `imresize`: MATLAB-compatible bicubic resize (antialiased when shrinking), the operator the
  super-resolution benchmarks used to make their LR images.
- blur (isotropic / anisotropic Gaussian), other downsamplers, Gaussian and Poisson noise, JPEG at a
  random quality, applied in a random order (`degrade_real`), after BSRGAN / Real-ESRGAN's observation
  that real photos went through these in no fixed order.
"""

from __future__ import annotations

import io
import math
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

# ---------------------------------------------------------------------------------------------------------
# MATLAB imresize (bicubic, a = -0.5, antialiasing on shrink, symmetric border)


def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    return (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))


@lru_cache(maxsize=64)
def _resize_matrix(in_len: int, out_len: int, scale: float) -> np.ndarray:
    """Dense (out_len, in_len) float64 matrix equal to MATLAB's imresize along one axis."""
    kernel_width = 4.0
    antialias = scale < 1
    if antialias:
        kernel_width /= scale  # widen the kernel so shrinking low-passes first (MATLAB's antialiasing)
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)  # output pixel centre in 1-based input coordinates
    left = np.floor(u - kernel_width / 2)
    taps = int(math.ceil(kernel_width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]
    dist = u[:, None] - idx
    w = scale * _cubic(dist * scale) if antialias else _cubic(dist)
    w = w / w.sum(axis=1, keepdims=True)
    # MATLAB pads by mirroring including the edge sample ("symmetric"): ... 2 1 | 1 2 ... L | L L-1 ...
    zero_based = (idx - 1).astype(np.int64) % (2 * in_len)
    zero_based = np.where(zero_based < in_len, zero_based, 2 * in_len - 1 - zero_based)
    mat = np.zeros((out_len, in_len), dtype=np.float64)
    np.add.at(mat, (np.repeat(np.arange(out_len), taps), zero_based.ravel()), w.ravel())
    return mat


def imresize(img: torch.Tensor, scale: float | None = None, size: tuple[int, int] | None = None) -> torch.Tensor:
    """MATLAB-compatible bicubic `imresize` of (..., H, W) float tensors (any range; no clamping).

    Give `scale` (output = ceil(H*scale) x ceil(W*scale)) or `size` = (out_h, out_w). The same scale is
    used for the kernel on both axes as MATLAB does when called with a scalar. Computed as two dense
    matrix products in the tensor's dtype (float64 matrices cast down), exact to MATLAB up to float error.
    """
    h, w = img.shape[-2:]
    if size is None:
        if scale is None:
            raise ValueError("give scale or size")
        out_h, out_w = math.ceil(h * scale), math.ceil(w * scale)
        sh = sw = scale
    else:
        out_h, out_w = size
        sh, sw = out_h / h, out_w / w
    mh = torch.from_numpy(_resize_matrix(h, out_h, sh)).to(img.dtype).to(img.device)
    mw = torch.from_numpy(_resize_matrix(w, out_w, sw)).to(img.dtype).to(img.device)
    return mh @ img @ mw.T


def quantize(img: torch.Tensor) -> torch.Tensor:
    """Round to the 8-bit grid, as saving to PNG does (benchmark LR images are uint8)."""
    return (img.clamp(0, 1) * 255).round() / 255


def bicubic_lr(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """The benchmarks' degradation of (..., H, W) images in [0, 1]: MATLAB bicubic x1/scale on uint8.

    MATLAB resizes a uint8 image one axis at a time (rows first when the scales are equal) and rounds
    to uint8 after each pass; doing the same reproduces the published LR images almost bit-exactly
    (mean abs error ~0.01/255 on Set5, against ~0.15/255 without the intermediate rounding).
    """
    h, w = hr.shape[-2:]
    mh = torch.from_numpy(_resize_matrix(h, math.ceil(h / scale), 1 / scale)).to(hr.dtype)
    mw = torch.from_numpy(_resize_matrix(w, math.ceil(w / scale), 1 / scale)).to(hr.dtype)
    return quantize(quantize(mh @ hr) @ mw.T)


# ---------------------------------------------------------------------------------------------------------
# Building blocks of the real-world degradation


def gaussian_kernel(size: int, sigma_x: float, sigma_y: float, theta: float) -> torch.Tensor:
    """(size, size) float32 anisotropic Gaussian kernel, sums to 1; theta in radians."""
    r = (size - 1) / 2
    ys, xs = np.mgrid[-r : r + 1, -r : r + 1]
    c, s = math.cos(theta), math.sin(theta)
    xr, yr = c * xs + s * ys, -s * xs + c * ys
    k = np.exp(-0.5 * ((xr / sigma_x) ** 2 + (yr / sigma_y) ** 2))
    return torch.from_numpy((k / k.sum()).astype(np.float32))


def blur(img: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Convolve a (C, H, W) image with a (k, k) kernel per channel, reflect-padded."""
    c = img.shape[0]
    k = kernel.shape[-1]
    x = F.pad(img[None], (k // 2,) * 4, mode="reflect")
    return F.conv2d(x, kernel.to(img.dtype).expand(c, 1, k, k), groups=c)[0]


def random_blur(img: torch.Tensor, rng: np.random.Generator, sigma: tuple[float, float] = (0.2, 3.0)) -> torch.Tensor:
    """Isotropic (half the time) or anisotropic Gaussian blur with sigmas drawn from `sigma` (pixels)."""
    sx = rng.uniform(*sigma)
    if rng.random() < 0.5:
        sy, theta = sx, 0.0
    else:
        sy, theta = rng.uniform(*sigma), rng.uniform(0, math.pi)
    size = min(2 * math.ceil(3 * max(sx, sy)) + 1, 21)
    size = min(size, 2 * (min(img.shape[-2:]) // 2) - 1)  # reflect padding needs kernel < image
    return blur(img, gaussian_kernel(size, sx, sy, theta))


def resize_random(img: torch.Tensor, size: tuple[int, int], rng: np.random.Generator) -> torch.Tensor:
    """Resize (C, H, W) to `size` with a randomly chosen kernel: MATLAB bicubic, bilinear, area."""
    mode = rng.choice(["matlab", "bilinear", "area", "bicubic"])
    if mode == "matlab":
        return imresize(img, size=size)
    if mode == "area" and (size[0] > img.shape[-2] or size[1] > img.shape[-1]):
        mode = "bilinear"
    kwargs = {} if mode == "area" else {"align_corners": False, "antialias": True}
    return F.interpolate(img[None], size=size, mode=str(mode), **kwargs)[0]


def add_gaussian_noise(img: torch.Tensor, sigma: float, rng: np.random.Generator, gray: bool = False) -> torch.Tensor:
    """Add N(0, sigma) noise (sigma in [0, 1] units); `gray` uses one noise field for all channels."""
    shape = (1, *img.shape[1:]) if gray else tuple(img.shape)
    noise = torch.from_numpy(rng.standard_normal(shape).astype(np.float32)) * sigma
    return img + noise.to(img.dtype)


def add_poisson_noise(img: torch.Tensor, scale: float, rng: np.random.Generator) -> torch.Tensor:
    """Shot noise: counts ~ Poisson(img * peak) with peak = 10**(2..4) * scale-like strength in [0, 1]."""
    peak = 10 ** (2 + 2 * (1 - scale))  # scale 1 -> peak 100 (strong), scale 0 -> peak 10000 (weak)
    x = img.clamp(0, 1).numpy().astype(np.float64)
    noisy = rng.poisson(x * peak) / peak
    return torch.from_numpy(noisy.astype(np.float32)).to(img.dtype)


def jpeg(img: torch.Tensor, quality: int, subsampling: str = "4:2:0") -> torch.Tensor:
    """Round-trip a (3, H, W) image through PIL's JPEG encoder at `quality`.

    `subsampling` "4:2:0" (chroma at half resolution both ways: what phones and most uploads write, and what
    smears a red zip's edge into its black jacket) or "4:4:4".
    """
    arr = (img.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=int(quality), subsampling=subsampling)
    buf.seek(0)
    out = np.asarray(Image.open(buf).convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(out).permute(2, 0, 1).contiguous()


# ---------------------------------------------------------------------------------------------------------
# Pipelines


def degrade_real(hr: torch.Tensor, scale: int, rng: np.random.Generator) -> torch.Tensor:
    """Real-world degradation of one (3, H, W) HR image to (3, H/scale, W/scale), H and W divisible.

    Blur, downscale (random kernel, sometimes via a random intermediate size), and noise (Gaussian colour,
    Gaussian grey or Poisson) are applied in a random order; JPEG (quality 30-95, 90 % of the time) comes
    last because uploads are encoded last. Output is on the 8-bit grid.
    """
    h, w = hr.shape[-2:]
    target = (h // scale, w // scale)
    x = hr
    steps = ["blur", "down", "noise"]
    rng.shuffle(steps)
    downscaled = False
    for step in steps:
        if step == "blur" and rng.random() < 0.8:
            # Blur before downscaling is measured in HR pixels, after it in LR pixels: keep LR blur milder.
            x = random_blur(x, rng, (0.2, 3.0) if not downscaled else (0.2, 1.5))
        elif step == "down":
            if scale > 1 and rng.random() < 0.3:
                mid = rng.uniform(1.0 / scale, 1.0)
                x = resize_random(x, (max(int(h * mid), 1), max(int(w * mid), 1)), rng)
            x = resize_random(x, target, rng)
            downscaled = True
        elif step == "noise" and rng.random() < 0.8:
            if rng.random() < 0.7:
                x = add_gaussian_noise(x, rng.uniform(1, 25) / 255, rng, gray=rng.random() < 0.4)
            else:
                x = add_poisson_noise(x, rng.uniform(0, 1), rng)
    if x.shape[-2:] != target:
        x = resize_random(x, target, rng)
    if rng.random() < 0.9:
        x = jpeg(x, int(rng.integers(30, 96)))
    return quantize(x)


def degrade_listing(hr: torch.Tensor, scale: int, rng: np.random.Generator) -> torch.Tensor:
    """What a seller's upload went through, for one (3, H, W) HR image -> (3, H/scale, W/scale).

    Milder and more JPEG-heavy than `degrade_real` (listing photos are phone or studio shots, not old
    scans): sometimes a slight HR blur (lens, focus); a downscale with a random kernel; a slight LR blur
    (sigma 0.2-1.8 LR pixels, 70 %); noise (85 %: Gaussian colour or grey sigma 1-12, or mild Poisson);
    then JPEG quality 45-95 (95 %), with 4:2:0 chroma subsampling 85 % of the time, re-saved at a second
    quality 20 % of the time (marketplaces and messengers recompress). Output is on the 8-bit grid.
    """
    h, w = hr.shape[-2:]
    x = hr
    if rng.random() < 0.4:
        x = random_blur(x, rng, (0.2, 0.5 * scale))
    x = resize_random(x, (h // scale, w // scale), rng)
    if rng.random() < 0.7:
        s = rng.uniform(0.2, 1.8)
        x = blur(x, gaussian_kernel(min(2 * math.ceil(3 * s) + 1, 2 * (min(x.shape[-2:]) // 2) - 1), s, s, 0.0))
    if rng.random() < 0.85:
        if rng.random() < 0.85:
            x = add_gaussian_noise(x, rng.uniform(1, 12) / 255, rng, gray=rng.random() < 0.3)
        else:
            x = add_poisson_noise(x, rng.uniform(0, 0.6), rng)
    if rng.random() < 0.95:
        subsampling = "4:2:0" if rng.random() < 0.85 else "4:4:4"
        x = jpeg(x, int(rng.integers(45, 96)), subsampling)
        if rng.random() < 0.2:
            x = jpeg(x, int(rng.integers(60, 96)))
    return quantize(x)


def degrade_denoise(clean: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Blind denoising input for one (3, H, W) image: AWGN sigma 0-50 (of 255), JPEG 30-95, or both.

    Mostly plain Gaussian noise (the benchmark degradation, left un-clipped half the time as the
    benchmarks do), then JPEG-only and noise+JPEG for compressed uploads.
    """
    r = rng.random()
    if r < 0.7:
        x = add_gaussian_noise(clean, rng.uniform(0, 55) / 255, rng, gray=rng.random() < 0.15)
        return x.clamp(0, 1) if rng.random() < 0.5 else x
    if r < 0.85:
        return jpeg(clean, int(rng.integers(30, 96)))
    x = add_gaussian_noise(clean, rng.uniform(0, 25) / 255, rng)
    return jpeg(x, int(rng.integers(30, 96)))


def degrade_real_eval(hr: torch.Tensor, scale: int, rng: np.random.Generator) -> torch.Tensor:
    """The fixed evaluation degradation for held-aside product photos (milder than training's range).

    MATLAB bicubic x1/scale, Gaussian blur sigma 0.4-1.0 LR pixels, Gaussian noise sigma 1-10 (of 255),
    JPEG quality 60-90; returns (3, H/scale, W/scale) on the 8-bit grid.
    """
    h, w = hr.shape[-2:]
    x = imresize(hr, size=(h // scale, w // scale))
    s = rng.uniform(0.4, 1.0)
    x = blur(x, gaussian_kernel(2 * math.ceil(3 * s) + 1, s, s, 0.0))
    x = add_gaussian_noise(x, rng.uniform(1, 10) / 255, rng)
    x = jpeg(x, int(rng.integers(60, 91)))
    return quantize(x)
