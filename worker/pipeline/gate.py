"""The quality gate: a step `auto` chose is kept only when it measurably helps.

Each check compares the analysis before and after a step (or, for tone, what the predicted transform does
to a thumbnail, before paying for full resolution). When a step would not help (the photo was already
balanced, clean) or would hurt (detail clipped, content changed), the photo goes on as it was and the
manifest says why. Steps asked for explicitly (a request, `--task`, a policy set to `always`) are never
gated: their verdict is `requested`.

Verdicts are counted in `retouch_gate_total{step, verdict, reason}`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from worker.pipeline.analyse import estimate_noise_sigma, luma

Verdict = Literal["applied", "kept"]

# Denoising that leaves this share of the noise or more has done nothing worth its artefacts.
DENOISE_MIN_NOISE_DROP = 0.15
# An upscale whose own downscale strays this far (PSNR) from the input changed the photo, not its size.
SR_MIN_CONSISTENCY_DB = 25.0
# Tone: detail (pixels in textured neighbourhoods) newly clipped to white or black, as a share of it.
TONE_MAX_CLIPPED_DETAIL = 0.02


@dataclass(frozen=True)
class GateVerdict:
    """One step's verdict, as the manifest records it."""

    step: str
    verdict: Verdict
    reason: str  # short, a metric label: requested, improves, no_visible_change, already_large, ...
    detail: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def requested(step: str) -> GateVerdict:
    return GateVerdict(step, "applied", "requested", "asked for explicitly: not gated")


def delta_e_mean(before: np.ndarray, after: np.ndarray) -> float:
    """Mean CIEDE2000 colour difference of two (H, W, 3) sRGB images in [0, 1]."""
    from skimage.color import deltaE_ciede2000, rgb2lab

    return float(deltaE_ciede2000(rgb2lab(before), rgb2lab(after)).mean())


def _textured(gray: np.ndarray, min_std: float = 0.02) -> np.ndarray:
    """Pixels whose 3x3 neighbourhood varies: product detail, not studio background."""
    padded = np.pad(gray, 1, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3))
    return windows.std(axis=(2, 3)) > min_std


def clipped_detail(before: np.ndarray, after: np.ndarray) -> float:
    """Share of the textured pixels of `before` that `after` clips to white or black in every channel."""
    detail = _textured(luma(before) / 255.0)
    if not detail.any():
        return 0.0
    newly = ((after >= 0.996).all(axis=2) & ~(before >= 0.996).all(axis=2)) | (
        (after <= 0.004).all(axis=2) & ~(before <= 0.004).all(axis=2))
    return float((newly & detail).sum() / detail.sum())


def check_tone(thumb_before: np.ndarray, thumb_after: np.ndarray, min_delta_e: float) -> GateVerdict:
    """Tone on thumbnails (H, W, 3): apply when the correction is visible and clips no detail."""
    change = delta_e_mean(thumb_before, thumb_after)
    if change < min_delta_e:
        return GateVerdict("tone", "kept", "no_visible_change",
                           f"the correction would change colours by mean dE2000 {change:.2f} < {min_delta_e}")
    clipped = clipped_detail(thumb_before, thumb_after)
    if clipped > TONE_MAX_CLIPPED_DETAIL:
        return GateVerdict("tone", "kept", "would_clip",
                           f"the correction would clip {clipped:.1%} of the detail to white or black")
    return GateVerdict("tone", "applied", "improves", f"mean dE2000 {change:.2f}; {clipped:.1%} of detail clipped")


def check_denoise(before: np.ndarray, after: np.ndarray) -> GateVerdict:
    sigma_before = estimate_noise_sigma(luma(before))
    sigma_after = estimate_noise_sigma(luma(after))
    if sigma_before <= 0 or sigma_after > (1.0 - DENOISE_MIN_NOISE_DROP) * sigma_before:
        return GateVerdict("denoise", "kept", "no_effect",
                           f"noise sigma {sigma_before:.1f} -> {sigma_after:.1f}: not worth its artefacts")
    return GateVerdict("denoise", "applied", "improves", f"noise sigma {sigma_before:.1f} -> {sigma_after:.1f}")


def check_super_resolution(before: np.ndarray, after: np.ndarray) -> GateVerdict:
    """The upscale, shrunk back (box filter), must still be the input: more detail, the same photo."""
    height, width = before.shape[:2]
    scale = after.shape[0] // height
    shrunk = after[: height * scale, : width * scale, :3].reshape(height, scale, width, scale, 3).mean(axis=(1, 3))
    mse = float(np.mean((shrunk - before[..., :3]) ** 2))
    db = 10 * np.log10(1.0 / max(mse, 1e-10))
    if db < SR_MIN_CONSISTENCY_DB:
        return GateVerdict("super_resolution", "kept", "changed_content",
                           f"shrunk back, the upscale is {db:.1f} dB from the input (< {SR_MIN_CONSISTENCY_DB})")
    return GateVerdict("super_resolution", "applied", "improves", f"x{scale}; shrunk back {db:.1f} dB from the input")
