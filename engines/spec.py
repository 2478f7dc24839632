"""What an engine is: a model spec (task, scale, size rules, precisions, tile budget, weights reference).

Specs are plain frozen data, cheap to build and to compare; nothing here imports torch. A backend turns a
spec plus its weights into something that runs (see `engines.backends`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

__all__ = ["PRECISIONS", "ModelSpec", "Task", "WeightsRef"]

# fp32 always works; fp16 (CUDA), bf16 (CUDA and CPUs with native bf16) and int8 (ONNX Runtime on the CPU)
# only when a spec lists them (`engines.precision` decides).
PRECISIONS = ("fp32", "fp16", "bf16", "int8")


class Task(StrEnum):
    """What an engine does to an image."""

    SUPER_RESOLUTION = "super_resolution"
    DENOISE = "denoise"
    INPAINT = "inpaint"
    TONE = "tone"  # global tone and colour: sees a thumbnail of the whole photo, never tiles
    MATTING = "matting"  # the product's alpha matte: sees the whole photo at a working side, never tiles


@dataclass(frozen=True)
class WeightsRef:
    """Where an engine's weights live and what they must hash to.

    file: a file name inside the package folder `engines/weights/`, an absolute local path, or
        `s3://bucket/key`.
    sha256: lowercase hex digest of the file's bytes; None means "do not verify" (operator's choice only;
        every built-in spec pins one).
    """

    file: str
    sha256: str | None

    def __post_init__(self) -> None:
        if not self.file:
            raise ValueError("WeightsRef.file must not be empty")
        if self.sha256 is not None:
            digest = self.sha256.lower()
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise ValueError(f"WeightsRef.sha256 must be 64 hex digits, got {self.sha256!r}")
            object.__setattr__(self, "sha256", digest)

    @property
    def is_s3(self) -> bool:
        return self.file.startswith("s3://")


@dataclass(frozen=True)
class ModelSpec:
    """Everything the shared code needs to run a model without knowing its architecture.

    The tensor contract at every backend boundary: input (N, in_channels, H, W) float in [0, 1], RGB;
    output (N, out_channels, H*scale, W*scale) float (clamped to [0, 1] by shared code, not by models).

    id: registry id, e.g. "retouch-sr-x4-real".
    task: what it does; `scale` is 1 for denoise and inpaint.
    size_multiple: input H and W must be multiples of this (shared code pads, reflect, and crops).
    min_size: input H and W must be at least this, in pixels (shared code pads).
    precisions: subset of PRECISIONS the model tolerates; fp32 first by convention.
    tile_size: the largest input tile side, in input pixels, the engine is ever shown; a multiple of
        size_multiple. Larger images are tiled (see `engines.tiling`).
    tile_overlap: context margin, in input pixels, kept around each tile and discarded after; must be
        at least the model's receptive-field radius so tiled and whole-image outputs agree.
    weights: file + sha256.
    architecture: the network class name ("CompactSR", or a spandrel architecture id such as "ESRGAN").
    arch_params: constructor keyword arguments for built-in architectures (read-only mapping).
    square: the model needs square inputs (some transformer models); tiles are then square.
    work_side: masked engines only: the longest canvas side the model fills at (`Engine.fill` shrinks the
        canvas to it and composites the upsampled fill); None fills at full resolution, tiled.
    strips: masked engines only: thin side bands are filled on strips at listing resolution (a framing
        the model was trained on; see `engines.masked_fill`).
    crop_side: masked engines only: holes that fit a window (the hole plus half its size of photo around
        it) are filled on that window at up to this many px instead of on the whole canvas at `work_side`
        (a model trained on such windows; see `engines.masked_fill`).
    """

    id: str
    task: Task
    scale: int
    in_channels: int
    out_channels: int
    size_multiple: int
    min_size: int
    precisions: tuple[str, ...]
    tile_size: int
    tile_overlap: int
    weights: WeightsRef
    architecture: str
    arch_params: Mapping[str, Any] = field(default_factory=dict, hash=False)
    description: str = ""
    license: str = ""
    square: bool = False
    work_side: int | None = None
    strips: bool = False
    crop_side: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "task", Task(self.task))
        object.__setattr__(self, "arch_params", MappingProxyType(dict(self.arch_params)))
        object.__setattr__(self, "precisions", tuple(self.precisions))
        errors = []
        if not self.id:
            errors.append("id is empty")
        if self.scale < 1:
            errors.append(f"scale {self.scale} < 1")
        if self.task is not Task.SUPER_RESOLUTION and self.scale != 1:
            errors.append(f"{self.task} engines have scale 1, got {self.scale}")
        if self.in_channels < 1 or self.out_channels < 1:
            errors.append("channels must be >= 1")
        if self.size_multiple < 1:
            errors.append(f"size_multiple {self.size_multiple} < 1")
        if not self.precisions or "fp32" not in self.precisions:
            errors.append(f"precisions {self.precisions} must include fp32")
        if unknown := set(self.precisions) - set(PRECISIONS):
            errors.append(f"unknown precisions {sorted(unknown)}")
        if self.tile_overlap < 0:
            errors.append(f"tile_overlap {self.tile_overlap} < 0")
        if self.tile_size % self.size_multiple:
            errors.append(f"tile_size {self.tile_size} is not a multiple of size_multiple {self.size_multiple}")
        # A tile must keep some pixels after discarding the margin on both sides.
        if self.tile_size <= 2 * self.tile_overlap or self.tile_size < self.min_size:
            errors.append(f"tile_size {self.tile_size} too small for overlap {self.tile_overlap}/min_size")
        if self.task is not Task.INPAINT and (self.work_side is not None or self.strips or self.crop_side):
            errors.append("work_side, strips and crop_side are for masked (inpainting) engines")
        if self.crop_side is not None and (self.work_side is None or self.crop_side < self.min_size):
            errors.append(f"crop_side {self.crop_side} needs a work_side and must be >= min_size")
        if self.work_side is not None and self.work_side < self.min_size:
            errors.append(f"work_side {self.work_side} < min_size {self.min_size}")
        if errors:
            raise ValueError(f"invalid ModelSpec {self.id!r}: " + "; ".join(errors))

    @property
    def supports_half(self) -> bool:
        return "fp16" in self.precisions
