"""The training recipe of each shipped model: task, degradation, architecture and schedule defaults.

`retouch train <model_id>` starts from these; command-line flags override single fields, and the
model card records the exact command, so a recipe change never silently changes a shipped model.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Recipe:
    """How to train one model id.

    degradation: "bicubic" (MATLAB bicubic, 8-bit LR: the benchmark tables), "real" (random blur,
    downsampler, noise, JPEG), or "denoise" (AWGN sigma 0-50 / JPEG 30-95 at scale 1).
    patch: HR (target) patch side in pixels; LR patches are patch // scale.
    """

    model_id: str
    arch: str
    scale: int
    degradation: str
    arch_params: dict[str, int] = field(default_factory=dict)
    steps: int = 2000
    batch: int = 16
    lr: float = 1e-3
    patch: int = 96
    loss: str = "l1"
    description: str = ""


RECIPES: dict[str, Recipe] = {
    r.model_id: r
    for r in [
        Recipe("retouch-sr-x2-bicubic", "CompactSR", 2, "bicubic", {"scale": 2, "features": 48, "blocks": 8},
               patch=96, batch=16, description="x2 super-resolution for clean, bicubic-like downscaled images"),
        Recipe("retouch-sr-x4-bicubic", "CompactSR", 4, "bicubic", {"scale": 4, "features": 48, "blocks": 8},
               patch=128, batch=16, description="x4 super-resolution for clean, bicubic-like downscaled images"),
        Recipe("retouch-sr-x2-real", "CompactSR", 2, "real", {"scale": 2, "features": 48, "blocks": 8},
               patch=96, batch=16, loss="charbonnier",
               description="x2 super-resolution for real photos (blur, noise, JPEG)"),
        Recipe("retouch-sr-x4-real", "CompactSR", 4, "real", {"scale": 4, "features": 48, "blocks": 8},
               patch=128, batch=16, loss="charbonnier",
               description="x4 super-resolution for real photos (blur, noise, JPEG); the former default"),
        Recipe("retouch-denoise", "CompactDenoiser", 1, "denoise", {"features": 32, "blocks": 2},
               patch=64, batch=12, loss="charbonnier",
               description="blind colour denoiser and JPEG-artifact remover (noise sigma 0-50, JPEG 30-95)"),
    ]
}
