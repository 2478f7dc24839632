"""The quality gate: a step `auto` chose is kept only when it measurably helps.

Each check compares the analysis before and after a step (or, for tone, what the predicted transform does
to a thumbnail, before paying for full resolution). When a step would not help (the photo was already
balanced, clean) or would hurt (detail flattened, content changed), the photo goes on as it was and the
manifest says why. Steps asked for explicitly (a request, `--task`, a policy set to `always`) are never
gated: their verdict is `requested`. The background step is the exception: it is only ever asked for, and
always checked (`worker.pipeline.background.decide`: an unsure matte keeps the photo as it was).

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
# Tone: detail (pixels in textured neighbourhoods) the correction flattens, as a share of it.
TONE_MAX_FLATTENED_DETAIL = 0.05


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


def _local_std(gray: np.ndarray) -> np.ndarray:
    """Standard deviation of each pixel's 3x3 neighbourhood: how much detail is there."""
    padded = np.pad(gray, 1, mode="edge")
    return np.lib.stride_tricks.sliding_window_view(padded, (3, 3)).std(axis=(2, 3))


def flattened_detail(before: np.ndarray, after: np.ndarray, min_std: float = 0.02) -> float:
    """Share of the detailed pixels of `before` (3x3 std above `min_std`: product texture, not studio
    background) whose detail `after` all but erases (std below a quarter): what blowing out a white
    shirt or crushing a black one does. A correct exposure or colour change keeps that detail."""
    std_before = _local_std(luma(before) / 255.0)
    detail = std_before > min_std
    if not detail.any():
        return 0.0
    std_after = _local_std(luma(after) / 255.0)
    return float((detail & (std_after < 0.25 * std_before)).sum() / detail.sum())


def check_tone(thumb_before: np.ndarray, thumb_after: np.ndarray, change: float, min_delta_e: float) -> GateVerdict:
    """Tone on thumbnails (H, W, 3) whose mean CIEDE2000 difference is `change`: apply when the
    correction is visible and flattens no detail."""
    if change < min_delta_e:
        return GateVerdict("tone", "kept", "no_visible_change",
                           f"the correction would change colours by mean dE2000 {change:.2f} < {min_delta_e}")
    flattened = flattened_detail(thumb_before, thumb_after)
    if flattened > TONE_MAX_FLATTENED_DETAIL:
        return GateVerdict("tone", "kept", "would_flatten_detail",
                           f"the correction would flatten {flattened:.1%} of the detail (clipped or crushed)")
    return GateVerdict("tone", "applied", "improves",
                       f"mean dE2000 {change:.2f}; {flattened:.1%} of the detail flattened")


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
