"""The quality gate and the tone step: auto's engines are kept only when they help; asked-for ones always run."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image

from tests.worker.fakes import FakeEngines
from worker.pipeline import Job, Request, image_steps, run_steps
from worker.pipeline import gate as quality_gate
from worker.settings import LimitSettings, PolicySettings


def product(height: int = 96, width: int = 128, seed: int = 0) -> np.ndarray:
    """Mid-grey textured product on a white ground, (H, W, 3) in [0, 1]."""
    rng = np.random.default_rng(seed)
    image = np.ones((height, width, 3), np.float32)
    top, left = height // 5, width // 4
    image[top:-top, left:-left] = np.clip(0.45 + rng.normal(0, 0.06, (height - 2 * top, width - 2 * left, 3)), 0, 1)
    return image


def jpeg(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray((np.clip(pixels, 0, 1) * 255 + 0.5).astype(np.uint8)).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def run(data: bytes, request: Request | None = None, **policy) -> Job:
    job = Job(limits=LimitSettings(), policy=PolicySettings(**{"target_short_side": 64, **policy}),
              request=request or Request())
    job.data = data
    return run_steps(job, image_steps(FakeEngines()), deadline=math.inf)


def verdicts(job: Job) -> dict[str, tuple[str, str]]:
    return {v.step: (v.verdict, v.reason) for v in job.gate}


# --- the checks ------------------------------------------------------------------------------------

def test_tone_check_keeps_an_invisible_correction_and_one_that_flattens_detail():
    photo = product()
    warmer = np.clip(photo * np.array([1.1, 1.0, 0.85], np.float32), 0, 1)
    assert quality_gate.check_tone(photo, photo, 0.0, 2.0).reason == "no_visible_change"
    assert quality_gate.check_tone(photo, warmer, 6.0, 2.0).verdict == "applied"
    blown_out = np.clip(photo * 3.0, 0, 1)  # the product's texture clipped to white
    kept = quality_gate.check_tone(photo, blown_out, 30.0, 2.0)
    assert (kept.verdict, kept.reason) == ("kept", "would_flatten_detail")
    assert quality_gate.flattened_detail(photo, warmer) == 0.0


def test_denoise_check_wants_the_noise_to_fall():
    rng = np.random.default_rng(1)
    clean = np.full((64, 64, 3), 0.5, np.float32)
    noisy = np.clip(clean + rng.normal(0, 0.05, clean.shape), 0, 1).astype(np.float32)
    assert quality_gate.check_denoise(noisy, clean).verdict == "applied"
    assert quality_gate.check_denoise(noisy, noisy).reason == "no_effect"


def test_super_resolution_check_wants_the_same_photo_shrunk_back():
    photo = product(32, 40)
    upscaled = np.repeat(np.repeat(photo, 2, axis=0), 2, axis=1)
    assert quality_gate.check_super_resolution(photo, upscaled).verdict == "applied"
    recoloured = 1.0 - upscaled  # a different photo at the right size
    assert quality_gate.check_super_resolution(photo, recoloured).reason == "changed_content"


# --- in the pipeline -----------------------------------------------------------------------------

def test_a_good_large_photo_passes_through_and_the_manifest_says_why():
    job = run(jpeg(product(96, 128)))  # short side 96 >= 64: no upscale; clean; the fake tone is the identity
    assert verdicts(job) == {"super_resolution": ("kept", "already_large"), "denoise": ("kept", "already_clean"),
                             "tone": ("kept", "no_visible_change")}
    assert [(run.engine, run.applied) for run in job.engine_runs] == [("retouch-tone", False)]
    assert job.tone["mean_delta_e"] == 0


def test_auto_applies_a_visible_tone_correction_before_the_other_engines():
    photo = product(40, 48)
    job = run(jpeg(photo), tone_model="fake-tone-warm")
    assert [s.task for s in job.plan.engines] == ["tone", "super_resolution"]
    assert verdicts(job)["tone"] == ("applied", "improves")
    assert job.tone["cast_removed_ab"][1] < 0  # the fake adds warmth: it removes a blue cast
    assert job.result.rgb[..., 0].mean() > job.result.rgb[..., 2].mean() + 0.05


def test_tone_asked_for_always_runs_and_policy_never_turns_it_off():
    asked = run(jpeg(product()), Request(task="tone"))
    assert [s.task for s in asked.plan.engines] == ["tone"]
    assert verdicts(asked) == {"tone": ("applied", "requested")}
    assert [s.task for s in run(jpeg(product()), tone="never").plan.engines] == []
    always = run(jpeg(product()), tone="always")
    assert verdicts(always)["tone"] == ("applied", "requested")


def test_a_policy_look_runs_after_the_tone_step():
    photo = product(96, 128)
    neutral = run(jpeg(photo))
    bright = run(jpeg(photo), look="bright")
    assert [s.task for s in bright.plan.engines] == ["tone", "look"]
    assert bright.result.rgb[40:50, 50:70].mean() > neutral.result.rgb[40:50, 50:70].mean() + 0.03


def test_a_missing_look_file_is_a_clear_request_error():
    from worker.errors import InvalidRequest

    with pytest.raises(InvalidRequest, match="neither neutral, bright nor a usable look file"):
        run(jpeg(product()), look="missing/look.json")


def test_a_misspelt_look_is_refused_at_start_up():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="look 'brigth' is neither neutral, bright nor a look .json"):
        PolicySettings(look="brigth")
