"""Planning the background step: only when asked, after tone and look, before denoise, canvas and upscale."""

from __future__ import annotations

import pytest

from worker.cli import build_parser
from worker.errors import InvalidRequest
from worker.pipeline.job import Analysis, Request
from worker.pipeline.plan import make_plan
from worker.settings import LimitSettings, PolicySettings, SettingsError, load_settings

SMALL = Analysis(width=400, height=300, megapixels=0.12, noise_sigma=1.0, sharpness=100.0, jpeg_quality=92)


def plan(request: Request | None = None, source_format: str = "jpeg", has_alpha: bool = False, **policy):
    return make_plan(SMALL, request or Request(), PolicySettings(**policy), LimitSettings(), source_format,
                     has_alpha)


def test_keep_is_the_default_and_plans_no_matting():
    planned = plan()
    assert planned.background == "keep"
    assert "background" not in [step.task for step in planned.engines]
    assert not any("background" in line for line in planned.decisions)
    assert planned.output_format == "jpeg"


@pytest.mark.parametrize("mode", ["white", "transparent"])
def test_a_background_step_follows_tone_and_look_and_precedes_canvas_and_upscale(mode):
    planned = plan(background=mode, look="bright", canvas_aspect="1:1", canvas_fit="pad")
    assert [step.task for step in planned.engines] == ["tone", "look", "background", "canvas", "super_resolution"]
    step = planned.engines[2]
    assert (step.model, step.scale) == ("retouch-matte", 1)  # the registry's default matting engine
    assert planned.background == mode
    assert any(line.startswith(f"background {mode}: ") and "retouch-matte" in line for line in planned.decisions)


def test_the_background_step_precedes_denoise_too():
    noisy = Analysis(width=2000, height=1500, megapixels=3.0, noise_sigma=20.0, sharpness=100.0, jpeg_quality=40)
    planned = make_plan(noisy, Request(), PolicySettings(background="white", tone="never"), LimitSettings(),
                        "jpeg", False)
    assert [step.task for step in planned.engines] == ["background", "denoise"]


def test_transparent_forces_a_format_with_alpha_and_white_keeps_the_sources():
    assert plan(background="transparent").output_format == "png"  # a JPEG source: never JPEG
    assert plan(background="transparent", output_format="jpeg").output_format == "png"
    assert plan(background="transparent", source_format="webp").output_format == "webp"
    assert plan(background="transparent", output_format="avif").output_format == "avif"
    assert plan(background="white").output_format == "jpeg"  # opaque on white


def test_the_request_overrides_the_policy_both_ways():
    assert plan(Request(background="keep"), background="white").engines[-1].task != "background"
    assert plan(Request(background="keep"), background="white").background == "keep"
    asked = plan(Request(background="transparent"))
    assert asked.background == "transparent" and "background" in [step.task for step in asked.engines]
    assert asked.output_format == "png"


def test_the_policy_names_the_matting_model_and_the_shadow():
    planned = plan(background="white", background_model="/models/matte.safetensors", background_shadow=True)
    step = next(step for step in planned.engines if step.task == "background")
    assert step.model == "/models/matte.safetensors"
    assert any("contact shadow" in line for line in planned.decisions)


def test_a_bad_background_is_refused_at_start_up_or_per_request(monkeypatch):
    with pytest.raises(InvalidRequest, match="background must be one of keep, white, transparent"):
        plan(Request(background="green"))  # type: ignore[arg-type]  # a task message from elsewhere
    monkeypatch.setenv("RETOUCH_BACKGROUND", "green")
    monkeypatch.setenv("RETOUCH_BACKGROUND_MIN_CONFIDENCE", "1.5")
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert "RETOUCH_BACKGROUND:" in str(error.value) and "RETOUCH_BACKGROUND_MIN_CONFIDENCE:" in str(error.value)


def test_the_cli_passes_the_background_as_a_request():
    args = build_parser().parse_args(["enhance", "a.jpg", "-o", "out", "--background", "transparent"])
    assert args.background == "transparent"
    assert build_parser().parse_args(["enhance", "a.jpg", "-o", "out"]).background is None
