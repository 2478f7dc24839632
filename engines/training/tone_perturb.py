"""Tone and colour perturbations: how a good catalogue photo is spoiled to make the tone engine's inputs.

Self-supervised: the professional photo is the target, a randomly spoiled copy the input. Each spoil is a
global (or, for vignetting, radial) change a phone or a careless setup makes:
- white balance (temperature along blue-amber, tint along green-magenta) and exposure, as gains in
  linear light, and vignetting as a radial fall-off in linear light;
- contrast (about mid grey), gamma and saturation in sRGB, as editors apply them.
`Perturbation` records the draw, so evaluation is reproducible and the note can state the ranges.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

# The ranges drawn from (the model card and `retouch eval tone` state them).
RANGES = {
    "temperature": (-0.35, 0.35),  # log gain of red (+) against blue (-) in linear light
    "tint": (-0.15, 0.15),  # log gain of green
    "exposure_stops": (-1.3, 1.0),
    "vignetting": (0.15, 0.5),  # linear-light fall-off in the corners
    "contrast": (0.7, 1.35),
    "gamma": (0.7, 1.45),
    "saturation": (0.55, 1.5),
}
OP_PROBABILITY = 0.55  # each spoil's chance; at least one is always drawn


@dataclass(frozen=True)
class Perturbation:
    """One draw; the identity when every field is neutral."""

    temperature: float = 0.0
    tint: float = 0.0
    exposure_stops: float = 0.0
    vignetting: float = 0.0
    contrast: float = 1.0
    gamma: float = 1.0
    saturation: float = 1.0

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in asdict(self).items()}


def draw(rng: np.random.Generator, identity_share: float = 0.0) -> Perturbation:
    """A random spoil (the identity with probability `identity_share`)."""
    if rng.random() < identity_share:
        return Perturbation()
    names = list(RANGES)
    chosen = [name for name in names if rng.random() < OP_PROBABILITY]
    if not chosen:
        chosen = [names[int(rng.integers(len(names)))]]
    values: dict[str, float] = {}
    for name in chosen:
        low, high = RANGES[name]
        values[name] = float(rng.uniform(low, high))
    if "temperature" in values and "tint" not in values and rng.random() < 0.5:
        low, high = RANGES["tint"]
        values["tint"] = float(rng.uniform(low, high))
    return Perturbation(**values)


def vignetting_gain(p: Perturbation) -> float:
    """The engine's vignetting gain k that undoes `p`'s fall-off in the corners: the sRGB value there is
    about (1 - v)^(1/2.2) of the centre's, and the engine multiplies it by 1 + k."""
    return (1.0 - p.vignetting) ** (-1 / 2.2) - 1.0 if p.vignetting else 0.0


def _to_linear(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x <= 0.04045, x / 12.92, ((x.clamp(min=0.0) + 0.055) / 1.055) ** 2.4)


def _to_srgb(x: torch.Tensor) -> torch.Tensor:
    x = x.clamp(0.0, 1.0)
    return torch.where(x <= 0.0031308, x * 12.92, 1.055 * x.clamp(min=1e-8) ** (1 / 2.4) - 0.055)


def apply(image: torch.Tensor, p: Perturbation) -> torch.Tensor:
    """Spoil (N, 3, H, W) sRGB in [0, 1] by `p` (the same draw for the whole batch); clipped to [0, 1]."""
    from engines.families.tone_lut.network import radial_r2

    linear = _to_linear(image)
    gains = torch.tensor([np.exp(p.temperature), np.exp(p.tint), np.exp(-p.temperature)], dtype=image.dtype)
    gains = gains / float((gains * torch.tensor([0.2126, 0.7152, 0.0722])).sum())  # white balance keeps luminance
    linear = linear * (gains * 2.0**p.exposure_stops).view(1, 3, 1, 1).to(image.device)
    if p.vignetting:
        linear = linear * (1.0 - p.vignetting * radial_r2(image.shape[2], image.shape[3], image.device))
    x = _to_srgb(linear)
    x = (0.5 + p.contrast * (x - 0.5)).clamp(0.0, 1.0)
    x = x ** p.gamma
    luma = (x * torch.tensor([0.299, 0.587, 0.114], device=image.device).view(1, 3, 1, 1)).sum(1, keepdim=True)
    x = luma + p.saturation * (x - luma)
    return x.clamp(0.0, 1.0)


def apply_numpy(rgb: np.ndarray, p: Perturbation) -> np.ndarray:
    """`apply` for one (H, W, 3) float image; returns float32 (H, W, 3)."""
    t = torch.from_numpy(np.ascontiguousarray(rgb[..., :3], dtype=np.float32)).permute(2, 0, 1)[None]
    return apply(t, p)[0].permute(1, 2, 0).numpy()
