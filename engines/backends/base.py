"""The one lifecycle every backend follows: `load -> warm_up -> run(batch) -> close`.

Tensor contract at `run`: tiles (N, in_channels, h, w) float32 numpy in [0, 1], h and w already padded to
the spec's size rules by shared code; masks (N, 1, h, w) float32 in {0, 1} for inpainting, else None.
Returns (N, out_channels, h*scale, w*scale) float32 numpy, not clamped (shared code clamps).
Backends never pad, tile or clamp, and keep no per-image state, so one backend serves concurrent calls
as far as its runtime allows (torch modules and ORT/TensorRT sessions are safe to call from threads).
A backend that runs out of device memory raises `DeviceOutOfMemory`; the caller retries smaller tiles.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from engines.loaded import LoadedModel

__all__ = ["Backend"]


class Backend(ABC):
    """Base class for backends; subclasses set `name` and implement the four lifecycle steps."""

    name: ClassVar[str]

    def __init__(self, model: LoadedModel, device: str, precision: str = "fp32") -> None:
        if precision not in model.spec.precisions:
            raise ValueError(f"{model.spec.id} does not support {precision}; it lists {model.spec.precisions}")
        self.model = model
        self.device = device
        self.precision = precision
        # Build caches consulted by load(), e.g. {"onnx": "hit", "tensorrt": "miss"}: read by the worker's
        # metrics hook (retouch_engine_cache_total) so a cold cache shows up on dashboards.
        self.cache_lookups: dict[str, str] = {}

    @abstractmethod
    def load(self) -> None:
        """Build whatever runs the model (move weights, export/compile, open a session). Called once."""

    def warm_up(self, tile_h: int, tile_w: int, batch: int = 1) -> None:
        """Run one dummy batch so lazy initialisation (kernels, allocators) is not paid by the first image."""
        spec = self.model.spec
        tiles = np.full((batch, spec.in_channels, tile_h, tile_w), 0.5, dtype=np.float32)
        masks = np.zeros((batch, 1, tile_h, tile_w), dtype=np.float32) if self.model.takes_mask else None
        self.run(tiles, masks)

    @abstractmethod
    def run(self, tiles: np.ndarray, masks: np.ndarray | None = None) -> np.ndarray:
        """Run one batch; see the module docstring for shapes, ranges and dtypes."""

    @abstractmethod
    def close(self) -> None:
        """Release device memory and sessions. Idempotent."""
