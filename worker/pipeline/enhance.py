"""enhance: apply the planned engines in order (inpaint, tone, look, background, denoise, canvas, super-resolve)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from worker.errors import InvalidRequest, from_engine_error
from worker.pipeline import background, gate
from worker.pipeline import canvas as canvas_ops
from worker.pipeline.canvas import Canvas
from worker.pipeline.cost import CostMeter
from worker.pipeline.job import DecodedImage, EngineRun, EngineStep, Job
from worker.pipeline.looks import apply_look, load_look
from worker.pipeline.runner import Step

Progress = Callable[[str, int, int], None]  # (engine id, tiles done, tiles total)


class EngineLike(Protocol):
    """The part of `engines.session.Engine` the pipeline uses."""

    spec: object
    backend_name: str
    device: str
    precision: str

    def process(self, image: np.ndarray, progress: Callable[[int, int], None] | None = None) -> np.ndarray: ...

    def fill(self, image: np.ndarray, mask: np.ndarray,
             progress: Callable[[int, int], None] | None = None) -> np.ndarray: ...

    def tone(self, image: np.ndarray) -> Any: ...

    def matte(self, image: np.ndarray) -> Any: ...


class EngineProvider(Protocol):
    def get(self, model: str, backend: str) -> EngineLike:
        """An open engine for a registry id, path or s3:// URI, loaded once per process."""
        ...


EXPECTED_ENGINE_TASK = {"super_resolution": "super_resolution", "denoise": "denoise", "inpaint": "inpaint",
                        "outpaint": "inpaint", "tone": "tone", "background": "matting"}


def grow_canvas(pixels: np.ndarray, canvas: Canvas, fill: str) -> np.ndarray:
    """The `canvas` step without an engine: solid border colour or blurred edges."""
    return canvas_ops.pad(pixels, canvas) if fill == "pad" else canvas_ops.blur_extend(pixels, canvas)


def outpaint_input(pixels: np.ndarray, canvas: Canvas) -> tuple[np.ndarray, np.ndarray]:
    """The photo on the grown canvas (bands start as the border colour, transparent where there is alpha),
    and the band mask the inpainting engine fills."""
    height, width, channels = pixels.shape
    fill = canvas_ops.border_colour(pixels)
    if channels == 4:
        fill[3] = 0.0  # a cut-out stays a cut-out: generated bands get colour, not opacity
    return canvas_ops.place(pixels, canvas, fill), canvas.band_mask(height, width)


def apply_engines(job: Job, provider: EngineProvider, progress: Progress | None = None) -> DecodedImage:
    """Run the plan's steps in order over the decoded pixels (RGB, or RGBA with alpha kept apart)."""
    from engines.errors import EngineError

    assert job.image is not None and job.plan is not None
    image = job.image
    pixels = image.rgb if image.alpha is None else np.concatenate([image.rgb, image.alpha[..., None]], axis=2)
    backend = job.request.backend or job.policy.backend
    job.gate = list(job.plan.skipped)
    for step in job.plan.engines:
        if step.task == "canvas":
            assert job.plan.canvas is not None
            pixels = grow_canvas(pixels, job.plan.canvas, step.model)
            continue
        if step.task == "look":
            pixels = apply_look(pixels, load_look(step.model))
            continue
        mask = job.mask if step.task == "inpaint" else None
        if step.task == "outpaint":
            assert job.plan.canvas is not None
            pixels, mask = outpaint_input(pixels, job.plan.canvas)
        tiles = [0]

        def on_tiles(done: int, total: int, _model: str = step.model, _tiles: list[int] = tiles) -> None:
            _tiles[0] = total
            if progress is not None:
                progress(_model, done, total)

        started = time.perf_counter()
        try:
            engine = provider.get(step.model, backend)
            task = str(getattr(engine.spec, "task", step.task))
            if task != EXPECTED_ENGINE_TASK[step.task]:
                raise InvalidRequest(f"model {step.model!r} is a {task} engine; {step.task} needs another")
            before = pixels
            verdict = None
            meter = CostMeter(engine.device)  # around the call only: a first use's model load is not per image
            if step.task == "tone":
                pixels, verdict = _tone_step(job, engine, step, pixels)
            elif step.task == "background":
                pixels, verdict = _background_step(job, engine, pixels)
            else:
                # Masked engines own their working resolution and the composite (alpha passes through).
                pixels = engine.fill(pixels, mask, on_tiles) if mask is not None else engine.process(pixels, on_tiles)
            cost = meter.stop()
            if step.task in GATED_CHECKS:
                verdict = GATED_CHECKS[step.task](before, pixels) if step.gated else gate.requested(step.task)
            if verdict is not None:
                job.gate.append(verdict)
                if verdict.verdict == "kept":
                    pixels = before
        except EngineError as error:
            raise from_engine_error(error) from error
        job.engine_runs.append(
            EngineRun(
                engine=str(getattr(engine.spec, "id", step.model)),
                backend=engine.backend_name,
                device=engine.device,
                seconds=time.perf_counter() - started,
                tiles=tiles[0],
                precision=engine.precision,
                cpu_seconds=cost.cpu_seconds,
                gpu_seconds=cost.gpu_seconds,
                applied=verdict is None or verdict.verdict == "applied",
            )
        )
    rgb = np.clip(pixels[..., :3], 0.0, 1.0)
    alpha = np.clip(pixels[..., 3], 0.0, 1.0) if pixels.shape[2] == 4 else None
    return DecodedImage(
        rgb=rgb, alpha=alpha, source_format=image.source_format, source_mode=image.source_mode,
        grayscale=image.grayscale, bits=image.bits, had_icc_profile=image.had_icc_profile, exif=image.exif,
    )


GATED_CHECKS = {"denoise": gate.check_denoise, "super_resolution": gate.check_super_resolution}


def _tone_step(job: Job, engine: EngineLike, step: EngineStep,
               pixels: np.ndarray) -> tuple[np.ndarray, gate.GateVerdict]:
    """Predict the photo's correction from its thumbnail; under `auto`, apply it only when the gate, looking
    at the corrected thumbnail, finds it visible and harmless (full resolution is paid for only then)."""
    from engines import tone

    quantised = tone.to_uint8(pixels)  # read twice below (thumbnail, lookup), converted once
    transform = engine.tone(quantised)
    small, corrected = transform.preview()
    estimates = tone.estimates(small, corrected, transform.gain)
    job.tone = estimates.as_dict()
    if step.gated:
        verdict = gate.check_tone(small, corrected, estimates.mean_delta_e, job.policy.tone_min_delta_e)
    else:
        verdict = gate.requested("tone")
    if verdict.verdict == "kept":
        return pixels, verdict
    rgb = transform.apply(pixels, quantised)
    return (rgb if pixels.shape[2] == 3 else np.concatenate([rgb, pixels[..., 3:]], axis=2)), verdict


def _background_step(job: Job, engine: EngineLike, pixels: np.ndarray) -> tuple[np.ndarray, gate.GateVerdict]:
    """Matte the product; when the matte finds one it is sure of and that does not fill the frame, put it on
    white or cut it out (`worker.pipeline.background`). Checked even when asked for: an unsure matte keeps
    the photo as it was, with the reason in the manifest."""
    from engines.matting import background_colours

    assert job.plan is not None
    policy = job.policy
    matte = engine.matte(pixels)
    report = matte.report()
    verdict = background.decide(report, policy.background_min_confidence)
    job.background = background.record(job.plan.background, verdict, report, policy.background_shadow)
    if verdict.verdict == "kept":
        return pixels, verdict
    rgb = pixels[..., :3]
    alpha = matte.full(rgb)
    shadow = None
    if job.plan.background == "white" and policy.background_shadow:
        shadow = background.contact_shadow(matte.alpha, rgb.shape[0], rgb.shape[1])
    return background.replace(pixels, alpha, background_colours(rgb, alpha), job.plan.background, shadow), verdict


def enhance_step(provider: EngineProvider, progress: Progress | None = None) -> Step:
    def run(job: Job) -> None:
        job.result = apply_engines(job, provider, progress)

    return Step("enhance", run)
