"""plan: turn the analysis, the request and the policy into a list of engine steps and an output format."""

from __future__ import annotations

from worker.errors import InvalidRequest
from worker.pipeline.canvas import plan_canvas
from worker.pipeline.gate import GateVerdict
from worker.pipeline.job import Analysis, EngineStep, Job, Plan, Request
from worker.settings import LimitSettings, PolicySettings


def default_model(task: str, scale: int = 1) -> str:
    """The engines registry's default for a task and scale; a request or the policy can name others."""
    from engines.registry import builtin_registry

    return builtin_registry().default_for(task, scale).id

_FORMAT_BY_SOURCE = {"jpeg": "jpeg", "webp": "webp", "png": "png", "avif": "avif"}


def choose_scale(short_side: int, long_side: int, policy: PolicySettings, limits: LimitSettings,
                 pixels: int) -> int:
    """The smallest of x2/x4 that brings the short side to the target, within max_scale and the output cap."""
    if short_side >= policy.target_short_side:
        return 1
    for scale in (2, 4):
        if scale > policy.max_scale:
            break
        if pixels * scale * scale > limits.max_output_pixels:
            return scale // 2 if scale > 2 else 1
        if short_side * scale >= policy.target_short_side:
            return scale
    return min(policy.max_scale, 4)


def output_format(source_format: str, has_alpha: bool, policy: PolicySettings) -> str:
    if policy.output_format != "auto":
        if has_alpha and policy.output_format == "jpeg":
            return "png"  # JPEG cannot carry alpha; never silently flatten a cut-out product
        return policy.output_format
    if has_alpha:
        return "png" if source_format not in {"webp", "avif"} else source_format
    return _FORMAT_BY_SOURCE.get(source_format, "png")


def make_plan(analysis: Analysis, request: Request, policy: PolicySettings, limits: LimitSettings,
              source_format: str, has_alpha: bool, mask_pixels: int = 0) -> Plan:
    """Order: inpaint the requested mask, correct tone and colour (then the look), replace the background
    (when asked), denoise, grow the canvas (outpaint/pad/blur), super-resolve. The sticker or watermark goes
    first so that it cannot sway the tone engine's view of the photo's colours; every later engine sees
    corrected colours. Engines `auto` chose are gated (`worker.pipeline.gate`); those it did not choose are
    listed in `Plan.skipped` with why. The background step is always checked (`worker.pipeline.background`)."""
    decisions: list[str] = []
    steps: list[EngineStep] = []
    skipped: list[GateVerdict] = []
    inpaint_model = policy.inpaint_model or default_model("inpaint")
    if mask_pixels:
        decisions.append(f"inpaint {mask_pixels} masked pixels with {inpaint_model}")
        steps.append(EngineStep("inpaint", inpaint_model, 1))
    steps.extend(_tone_steps(request, policy, decisions))
    background = _background(request, policy)
    if background != "keep":
        # After tone and look (the matte sees corrected colours), before denoise, canvas and upscale,
        # which carry the alpha of a cut-out along with the photo.
        model = policy.background_model or default_model("matting")
        steps.append(EngineStep("background", model, 1))
        if background == "white":
            how = "put on white" + (" with a contact shadow" if policy.background_shadow else "")
        else:
            how = "cut out"
        decisions.append(f"background {background}: product {how} with {model} when the matte finds a product "
                         f"that does not fill the frame, with confidence >= {policy.background_min_confidence}")

    canvas = None
    if policy.canvas_aspect:
        canvas = plan_canvas(analysis.width, analysis.height, policy.canvas_aspect, policy.canvas_fit)
        if canvas is None:
            decisions.append(f"already {policy.canvas_aspect}: canvas kept")
    width, height = (canvas.width, canvas.height) if canvas else (analysis.width, analysis.height)
    short, long = sorted((width, height))
    pixels = width * height

    wants_denoise = request.task == "denoise" or (
        request.task == "auto"
        and (
            analysis.noise_sigma > policy.denoise_sigma_threshold
            or (analysis.jpeg_quality is not None and analysis.jpeg_quality < policy.denoise_jpeg_quality_below)
        )
    )
    if request.task == "super_resolution":
        scale = request.scale or max(2, choose_scale(short, long, policy, limits, pixels))
        decisions.append(f"super-resolution x{scale} requested")
    elif request.task in ("denoise", "tone"):
        scale = 1
    else:
        scale = request.scale or choose_scale(short, long, policy, limits, pixels)
        if scale > 1:
            decisions.append(f"short side {short}px < target {policy.target_short_side}px: upscale x{scale}")
        elif short >= policy.target_short_side:
            decisions.append(f"short side {short}px >= target {policy.target_short_side}px: no upscale")
            skipped.append(GateVerdict("super_resolution", "kept", "already_large",
                                       f"short side {short}px >= target {policy.target_short_side}px"))
        else:
            decisions.append(f"x2 would exceed {limits.max_output_pixels} output pixels: no upscale")
            skipped.append(GateVerdict("super_resolution", "kept", "output_limit",
                                       f"x2 would exceed {limits.max_output_pixels} output pixels"))
    if scale not in (1, 2, 4):
        raise InvalidRequest(f"scale must be 2 or 4, got {scale}")
    if pixels * scale * scale > limits.max_output_pixels:
        raise InvalidRequest(f"x{scale} output would exceed {limits.max_output_pixels} pixels")

    # The real-world SR models were trained on noise and JPEG artefacts, so an upscale also cleans;
    # a separate denoise pass runs only when no upscale happens, or when explicitly requested.
    if wants_denoise and (scale == 1 or request.task == "denoise"):
        model = request.model if request.task == "denoise" and request.model else (
            policy.denoise_model or default_model("denoise"))
        reason = "requested" if request.task == "denoise" else (
            f"noise sigma {analysis.noise_sigma:.1f} / JPEG quality {analysis.jpeg_quality}")
        decisions.append(f"denoise ({reason}) with {model}")
        steps.append(EngineStep("denoise", model, 1, gated=request.task == "auto"))
    elif wants_denoise:
        decisions.append("noise/compression handled by the real-world super-resolution model")
    elif request.task == "auto":
        skipped.append(GateVerdict("denoise", "kept", "already_clean",
                                   f"noise sigma {analysis.noise_sigma:.1f} <= {policy.denoise_sigma_threshold}, "
                                   f"JPEG quality {analysis.jpeg_quality}"))
    if canvas is not None:
        if canvas.fit == "outpaint":
            steps.append(EngineStep("outpaint", inpaint_model, 1))
            how = f"bands generated with {inpaint_model}"
        else:
            steps.append(EngineStep("canvas", canvas.fit, 1))
            how = "bands padded with the border colour" if canvas.fit == "pad" else "bands blur-extended"
        decisions.append(f"canvas {canvas.aspect}: {analysis.width}x{analysis.height} placed on "
                         f"{canvas.width}x{canvas.height} at ({canvas.left},{canvas.top}), {how}")
    if scale > 1:
        model = request.model or policy.sr_model or default_model("super_resolution", scale)
        steps.append(EngineStep("super_resolution", model, scale, gated=request.task == "auto" and not request.scale))
        decisions.append(f"super-resolution x{scale} with {model}")

    # A cut-out needs a format with alpha (decided now, so a bucket's outputs keep one extension even when a
    # photo's background is kept); on white the output is opaque, but a source's alpha stays if the matte is unsure.
    fmt = output_format(source_format, has_alpha or background == "transparent", policy)
    decisions.append(f"encode as {fmt} quality {policy.output_quality}")
    return Plan(engines=tuple(steps), output_format=fmt, quality=policy.output_quality, decisions=tuple(decisions),
                canvas=canvas, skipped=tuple(skipped), background=background)


BACKGROUNDS = ("keep", "white", "transparent")


def _background(request: Request, policy: PolicySettings) -> str:
    """The request's background, else the policy's. `keep` (the default) plans no step and loads no matting
    engine: `auto` never removes a background unless the policy or the request asks."""
    background = request.background or policy.background
    if background not in BACKGROUNDS:
        raise InvalidRequest(f"background must be one of {', '.join(BACKGROUNDS)}, got {background!r}")
    return background


def _tone_steps(request: Request, policy: PolicySettings, decisions: list[str]) -> list[EngineStep]:
    """Tone before the other engines (after a requested inpaint), so they see corrected colours; then the
    policy's look, if any.

    `--task tone` or a policy `tone: always` runs it as asked; under `auto` it is gated: applied only
    when the correction is visible (the engine's estimates go to the manifest)."""
    steps: list[EngineStep] = []
    model = (request.model if request.task == "tone" else None) or policy.tone_model or default_model("tone")
    if request.task == "tone":
        steps.append(EngineStep("tone", model, 1))
        decisions.append(f"tone and colour correction requested with {model}")
    elif policy.tone == "always" or (policy.tone == "auto" and request.task == "auto"):
        gated = policy.tone == "auto"
        steps.append(EngineStep("tone", model, 1, gated=gated))
        decisions.append(f"tone and colour with {model}" + (", if the correction is visible" if gated else " (policy)"))
    if policy.look != "neutral" and request.task in ("auto", "tone"):
        steps.append(EngineStep("look", policy.look, 1))
        decisions.append(f"look {policy.look!r} (policy)")
    return steps


def plan(job: Job) -> None:
    assert job.analysis is not None and job.image is not None
    mask_pixels = 0 if job.mask is None else int(job.mask.sum())
    job.plan = make_plan(job.analysis, job.request, job.policy, job.limits, job.image.source_format,
                         job.image.alpha is not None, mask_pixels)
