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
    precision = "fp32"

    def __init__(self, model: str) -> None:
        scale = 4 if "x4" in model else 2 if "x2" in model else 1
        task = "inpaint" if "inpaint" in model else "tone" if "tone" in model else "matting" if "matte" in model else (
            "denoise" if scale == 1 else "super_resolution")
        self.spec = FakeSpec(model, task, scale)

    def tone(self, image):
        """The identity transform, or for a model named `*warm*` one that adds warmth (red up, blue down)."""
        from engines.families.tone_lut.network import identity_lut
        from engines.tone import ToneTransform, thumbnail

        assert self.spec.task == "tone"
        lut = identity_lut(17).numpy()
        if "warm" in self.spec.id:
            lut = lut + np.array([0.08, 0.0, -0.08], dtype=np.float32)[:, None, None, None]
        return ToneTransform.from_params(np.append(lut.reshape(-1), 0.0), thumbnail(image))

    def matte(self, image):
        """Product = pixels far from the top-left corner's colour (alpha 1, else 0); for a model named
        `*unsure*` alpha 0.6 there instead, a matte with no confidence."""
        from engines.matting import Matte

        assert self.spec.task == "matting"
        far = np.abs(image[..., :3] - image[0, 0, :3]).max(axis=2) > 0.1
        return Matte(np.where(far, 0.6 if "unsure" in self.spec.id else 1.0, 0.0).astype(np.float32))

    def fill(self, image, mask, progress=None):
        # Fill with the mean unmasked colour, as the engine contract composites: mask * fill + rest.
        assert self.spec.task == "inpaint" and mask.shape == image.shape[:2]
        if progress:
            progress(1, 1)
        filled = image.copy()
        filled[..., :3][mask > 0] = image[..., :3][mask == 0].mean(axis=0)
        return filled

    def process(self, image, progress=None):
        assert self.spec.task != "inpaint"
        if progress:
            progress(1, 1)
        if self.spec.task == "tone":
            rgb = self.tone(image).apply(image)
            return rgb if image.shape[2] == 3 else np.concatenate([rgb, image[..., 3:]], axis=2)
        s = self.spec.scale
        return np.repeat(np.repeat(image, s, axis=0), s, axis=1)


class FakeEngines:
    def __init__(self) -> None:
        self.loaded: list[tuple[str, str]] = []

    def get(self, model: str, backend: str) -> NearestEngine:
        self.loaded.append((model, backend))
        return NearestEngine(model)
