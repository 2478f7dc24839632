"""In-memory stand-ins for unit tests of the worker (integration tests use the real engines)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FakeSpec:
    id: str
    task: str
    scale: int


class NearestEngine:
    """Upscales by pixel repetition: enough to check the pipeline's plumbing, shapes and alpha handling."""

    backend_name = "fake"
    device = "cpu"

    def __init__(self, model: str) -> None:
        scale = 4 if "x4" in model else 2 if "x2" in model else 1
        self.spec = FakeSpec(model, "denoise" if scale == 1 else "super_resolution", scale)

    def process(self, image, progress=None):
        if progress:
            progress(1, 1)
        s = self.spec.scale
        return np.repeat(np.repeat(image, s, axis=0), s, axis=1)


class FakeEngines:
    def __init__(self) -> None:
        self.loaded: list[tuple[str, str]] = []

    def get(self, model: str, backend: str) -> NearestEngine:
        self.loaded.append((model, backend))
        return NearestEngine(model)
