"""The project's own compact network architectures (plain torch, ONNX-exportable).

Both follow the engines' tensor contract: input NCHW, RGB, float in [0, 1]; output un-clamped float
(callers clamp). `ARCHS` maps the safetensors metadata name ("arch") to the class, so a loader can
rebuild a network from `arch` + `arch_params` without importing anything by dotted string.
"""

from __future__ import annotations

from torch import nn

from engines.archs.compact_denoiser import CompactDenoiser
from engines.archs.compact_inpainter import CompactInpainter
from engines.archs.compact_sr import CompactSR

ARCHS: dict[str, type[nn.Module]] = {
    "CompactSR": CompactSR, "CompactDenoiser": CompactDenoiser, "CompactInpainter": CompactInpainter,
}

__all__ = ["ARCHS", "CompactDenoiser", "CompactInpainter", "CompactSR"]
