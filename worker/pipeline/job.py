"""The state one image carries through the pipeline, and the request that shaped it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from worker.pipeline.canvas import Canvas
from worker.settings import LimitSettings, PolicySettings

if TYPE_CHECKING:  # gate imports analyse, which imports this module
    from worker.pipeline.gate import GateVerdict

TaskName = Literal["auto", "super_resolution", "denoise", "tone"]


@dataclass(frozen=True)
class Request:
    """What the caller asks for; `auto` lets the planner decide from the analysis."""

    task: TaskName = "auto"
    scale: int | None = None  # None: the planner picks 2 or 4 from the target size
    model: str | None = None  # registry id, path or s3:// URI; None: the registry default
    backend: str | None = None  # None: the policy's backend
    background: Literal["keep", "white", "transparent"] | None = None  # None: the policy's background


@dataclass(frozen=True)
class Header:
    """What the container says before any pixel is decoded."""

    format: str
    width: int
    height: int
    frames: int
    mode: str


@dataclass(frozen=True)
class DecodedImage:
    """Pixels in the engines' contract: RGB float32 in [0, 1], alpha kept apart.

    rgb: (H, W, 3) float32; alpha: (H, W) float32 or None. `grayscale` remembers that the input had one
    channel so the output can go back to one; `bits` is the source bit depth per channel (8 or 16).
    """

    rgb: np.ndarray
    alpha: np.ndarray | None
    source_format: str
    source_mode: str
    grayscale: bool
    bits: int
    had_icc_profile: bool
    exif: bytes | None

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])


@dataclass(frozen=True)
class Analysis:
    width: int
    height: int
    megapixels: float
    noise_sigma: float  # estimated Gaussian sigma on the 0-255 scale
    sharpness: float  # variance of the Laplacian on the 0-255 scale; low means blurry
    jpeg_quality: int | None  # estimated from the quantisation tables; None for other formats


@dataclass(frozen=True)
class EngineStep:
    """One operation on the pixels. `inpaint` fills the request's mask; `outpaint` grows the canvas and
    generates its bands; `canvas` grows it without an engine (`model` names the fill: pad or blur);
    `tone` corrects light and colour; `look` moves the colours towards a named look (`model` is the look);
    `background` mattes the product and puts it on white or cuts it out (`Plan.background` says which).

    gated: `auto` chose this step, so the quality gate keeps it only when it helps (`worker.pipeline.gate`);
    a step asked for explicitly always runs."""

    task: Literal["super_resolution", "denoise", "inpaint", "outpaint", "canvas", "tone", "look", "background"]
    model: str
    scale: int
    gated: bool = False


@dataclass(frozen=True)
class Plan:
    engines: tuple[EngineStep, ...]
    output_format: str  # jpeg | webp | png | avif
    quality: int
    decisions: tuple[str, ...]  # one human-readable line per decision, copied into the manifest
    canvas: Canvas | None = None
    skipped: tuple[GateVerdict, ...] = ()  # engines `auto` did not plan, and why (the gate's pre-checks)
    background: Literal["keep", "white", "transparent"] = "keep"  # what the background step does, if planned

    @property
    def scale(self) -> int:
        total = 1
        for step in self.engines:
            total *= step.scale
        return total


@dataclass(frozen=True)
class EngineRun:
    """One engine applied to one image: what the manifest and the metrics report."""

    engine: str
    backend: str
    device: str
    seconds: float
    tiles: int
    precision: str = "fp32"  # what the backend really ran (engines/precision.py decides it)
    cpu_seconds: float = 0.0  # process CPU time of the engine call, every thread (worker/pipeline/cost.py)
    gpu_seconds: float | None = None  # CUDA-event time of the call; None off CUDA
    applied: bool = True  # False when the quality gate kept the photo as it was (the engine's cost still counts)


@dataclass
class Job:
    """Mutable state handed from step to step. Steps read what earlier steps set and set their own part."""

    limits: LimitSettings
    policy: PolicySettings
    request: Request = field(default_factory=Request)
    data: bytes | None = None
    source_etag: str | None = None
    source_metadata: dict[str, str] = field(default_factory=dict)
    mask_data: bytes | None = None  # a sidecar mask's bytes, when one was uploaded
    mask: np.ndarray | None = None  # (H, W) float32, 1 = inpaint; built by the mask step
    header: Header | None = None
    image: DecodedImage | None = None
    analysis: Analysis | None = None
    plan: Plan | None = None
    result: DecodedImage | None = None
    engine_runs: list[EngineRun] = field(default_factory=list)
    gate: list[GateVerdict] = field(default_factory=list)  # one verdict per engine `auto` considered
    tone: dict[str, Any] | None = None  # what the tone engine estimated (exposure, cast), for the manifest
    background: dict[str, Any] | None = None  # the background step's decision and matte report, for the manifest
    encoded: bytes | None = None
    content_type: str | None = None
    extension: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    done: bool = False  # set by a step that finds the work already done: later steps are skipped
    outputs: dict[str, Any] = field(default_factory=dict)  # where the result went (bucket/key/etag or path)
