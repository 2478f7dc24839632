"""The background step's decision and compositing: synthetic mattes and colours, no engine."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image

from engines.matting import MatteReport, background_colours
from tests.worker.fakes import FakeEngines
from worker.errors import InvalidRequest
from worker.pipeline import Job, Request, image_steps, run_steps
from worker.pipeline import background as bg
from worker.pipeline.manifest import job_manifest
from worker.settings import LimitSettings, PolicySettings


def report(coverage=0.3, products=1, touches=(), confidence=0.95) -> MatteReport:
    return MatteReport(coverage, products, tuple(touches), confidence)


# --- the decision ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("matte", "reason"), [
    (report(coverage=0.003), "no_product"),
    (report(products=0), "no_product"),
    (report(confidence=0.6), "low_confidence"),  # glass, white on white
    (report(touches=("left", "right", "bottom")), "fills_frame"),  # a close-up
    (report(coverage=0.95), "fills_frame"),  # a scene
])
def test_the_photo_is_kept_as_it_was_with_a_reason(matte, reason):
    verdict = bg.decide(matte, min_confidence=0.8)
    assert (verdict.step, verdict.verdict, verdict.reason) == ("background", "kept", reason)
    assert verdict.reason in bg.REASONS


def test_no_product_wins_over_the_other_reasons_and_confidence_is_the_policys():
    assert bg.decide(report(coverage=0.001, confidence=0.1), 0.8).reason == "no_product"
    assert bg.decide(report(confidence=0.6), 0.5).verdict == "applied"
    assert bg.decide(report(confidence=0.79), 0.8).reason == "low_confidence"


def test_several_products_and_one_or_two_cut_sides_are_applied_and_named():
    plain = bg.decide(report(), 0.8)
    assert (plain.verdict, plain.reason) == ("applied", "applied")
    assert "products" not in plain.detail and "frame" not in plain.detail
    named = bg.decide(report(products=2, touches=("bottom", "left")), 0.8)
    assert (named.verdict, named.reason) == ("applied", "applied")
    assert "2 products" in named.detail and "cut by the frame at bottom, left" in named.detail


def test_the_manifest_record_has_mode_decision_and_report():
    matte = report(coverage=0.31234, products=2, touches=("bottom",), confidence=0.91)
    record = bg.record("white", bg.decide(matte, 0.8), matte, shadow=True)
    assert record == {"mode": "white", "applied": True, "reason": "applied", "coverage": 0.3123, "products": 2,
                      "touches": ["bottom"], "confidence": 0.91, "shadow": True}
    kept = bg.record("transparent", bg.decide(report(confidence=0.5), 0.8), report(confidence=0.5), shadow=True)
    assert kept["applied"] is False and kept["reason"] == "low_confidence" and "shadow" not in kept


# --- compositing -----------------------------------------------------------------------------------

def scene(height=48, width=64):
    """A red product (alpha 1) with a one-pixel 50 % edge ring, on a flat grey-green background."""
    alpha = np.zeros((height, width), np.float32)
    alpha[12:36, 16:48] = 0.5
    alpha[13:35, 17:47] = 1.0
    fg = np.zeros((height, width, 3), np.float32) + np.array([0.8, 0.1, 0.15], np.float32)
    back = np.zeros((height, width, 3), np.float32) + np.array([0.35, 0.45, 0.3], np.float32)
    photo = alpha[..., None] * fg + (1 - alpha[..., None]) * back
    return photo, alpha, fg, back


def test_white_is_exactly_white_where_alpha_is_0_and_the_photo_where_it_is_1():
    rng = np.random.default_rng(0)
    photo, alpha, _, back = scene()
    photo = np.clip(photo + rng.normal(0, 0.05, photo.shape) * (alpha == 0)[..., None], 0, 1)  # grainy ground
    out = bg.on_white(bg.foreground(photo, alpha, back), alpha)
    assert np.array_equal(out[alpha == 0], np.ones(((alpha == 0).sum(), 3), np.float32))
    assert np.allclose(out[alpha == 1], photo[alpha == 1], atol=1e-6)


def test_white_un_blends_an_edge_pixel_like_the_formula():
    photo, alpha, fg, back = scene()
    out = bg.on_white(bg.foreground(photo, alpha, back), alpha)
    edge = alpha == 0.5
    expected = photo + (1 - alpha[..., None]) * (1.0 - back)  # I + (1 - a)(white - B)
    assert np.allclose(out[edge], expected[edge], atol=1e-6)
    assert np.allclose(out[edge], 0.5 * fg[edge] + 0.5, atol=1e-6)  # the red, half on white: no green fringe


def test_transparent_un_blends_a_50_percent_edge_back_to_its_foreground_colour():
    photo, alpha, fg, _ = scene()
    background = background_colours(photo, alpha)  # the engine's estimate, from the sure background
    assert np.allclose(background[alpha == 0], [0.35, 0.45, 0.3], atol=1e-5)
    rgba = bg.replace(photo, alpha, background, "transparent")
    assert rgba.shape == (*alpha.shape, 4) and np.array_equal(rgba[..., 3], alpha)
    edge = alpha == 0.5
    assert np.allclose(rgba[..., :3][edge], fg[edge], atol=1e-4)


def test_a_source_alpha_multiplies_the_matte_and_goes_on_white():
    photo, alpha, _, back = scene()
    source_alpha = np.ones(alpha.shape, np.float32)
    source_alpha[:, :32] = 0.0  # the left half was already transparent
    rgba = np.concatenate([photo, source_alpha[..., None]], axis=2)
    cut = bg.replace(rgba, alpha, back, "transparent")
    assert np.array_equal(cut[..., 3], alpha * source_alpha)
    white = bg.replace(rgba, alpha, back, "white")
    assert white.shape == (*alpha.shape, 3)  # opaque
    assert np.array_equal(white[:, :32], np.ones((alpha.shape[0], 32, 3), np.float32))


def test_the_contact_shadow_darkens_only_the_white_below_and_around_the_base():
    photo, alpha, _, back = scene()
    shadow = bg.contact_shadow(alpha, *alpha.shape)
    assert shadow.shape == alpha.shape and shadow.max() == pytest.approx(bg.SHADOW_STRENGTH, abs=0.02)
    assert shadow[:20].max() < 0.01  # nothing near the top of the product (base at row 35)
    colour = bg.foreground(photo, alpha, back)
    plain, shaded = bg.on_white(colour, alpha), bg.on_white(colour, alpha, shadow)
    product = alpha == 1
    assert np.array_equal(shaded[product], plain[product])  # the product is untouched
    darker = (plain - shaded).max(axis=2)
    assert darker.min() >= 0 and shaded[alpha == 0].min() >= 1 - bg.SHADOW_STRENGTH - 1e-6
    assert darker[36:40, 16:48].mean() > 0.05  # visible just under the base
    assert darker[36:40, :8].max() < 0.01  # and not far to the side of it


def test_the_contact_shadow_of_an_empty_matte_is_nothing_and_follows_the_photo_size():
    assert not bg.contact_shadow(np.zeros((24, 32), np.float32), 48, 64).any()
    _, alpha, _, _ = scene(24, 32)
    assert bg.contact_shadow(alpha, 96, 128).shape == (96, 128)


# --- in the pipeline, with a fake matting engine ---------------------------------------------------

def encoded(pixels: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray((np.clip(pixels, 0, 1) * 255 + 0.5).astype(np.uint8)).save(buffer, fmt, quality=95)
    return buffer.getvalue()


def enhance(data: bytes, request: Request | None = None, **policy) -> tuple[Job, FakeEngines]:
    engines = FakeEngines()
    settings = {"target_short_side": 32, "tone": "never", "background_model": "fake-matte", **policy}
    job = Job(limits=LimitSettings(), policy=PolicySettings(**settings), request=request or Request())
    job.data = data
    return run_steps(job, image_steps(engines), deadline=math.inf), engines


def decoded(job: Job) -> np.ndarray:
    with Image.open(io.BytesIO(job.encoded)) as image:
        return np.asarray(image)


def test_keep_loads_no_matting_engine_and_the_manifest_says_null():
    photo, _, _, _ = scene()
    job, engines = enhance(encoded(photo, "PNG"))
    assert not any("matte" in model for model, _ in engines.loaded)
    assert job.background is None and "background" not in [v.step for v in job.gate]
    assert job_manifest(job, source={}, output={}, prices=None)["background"] is None


def test_white_puts_the_product_on_white_and_records_why():
    photo, alpha, _, _ = scene()
    job, _ = enhance(encoded(photo, "JPEG"), background="white")
    assert [(v.step, v.verdict, v.reason) for v in job.gate if v.step == "background"] == [
        ("background", "applied", "applied")]
    assert [(run.engine, run.applied) for run in job.engine_runs] == [("fake-matte", True)]
    out = decoded(job)
    assert job.content_type == "image/jpeg" and out.shape == (48, 64, 3)
    assert out[:8, :8].min() >= 250  # the grey-green ground is white now
    assert np.abs(out[20:30, 24:40].astype(int) - [204, 26, 38]).max() <= 8  # the red product as it was
    manifest = job_manifest(job, source={}, output={}, prices=None)
    assert manifest["background"] == {"mode": "white", "applied": True, "reason": "applied",
                                      **job.background, "shadow": False}
    assert 0.2 < manifest["background"]["coverage"] < 0.35 and manifest["background"]["products"] == 1


def test_transparent_writes_a_png_cut_out_of_a_jpeg():
    photo, _, _, _ = scene()
    job, _ = enhance(encoded(photo, "JPEG"), Request(background="transparent"))
    assert job.plan.output_format == "png" and job.extension == ".png"
    out = decoded(job)
    assert out.shape == (48, 64, 4)
    assert out[:8, :8, 3].max() == 0 and out[20:30, 24:40, 3].min() == 255
    assert job.background["mode"] == "transparent" and job.background["applied"] is True


def test_an_unsure_matte_leaves_the_photo_as_it_was_even_when_asked_for():
    photo, _, _, _ = scene()
    source = encoded(photo, "PNG")
    job, _ = enhance(source, Request(background="white"), background_model="fake-matte-unsure")
    assert [(v.verdict, v.reason) for v in job.gate if v.step == "background"] == [("kept", "low_confidence")]
    assert job.background["applied"] is False and job.background["reason"] == "low_confidence"
    assert job.engine_runs[0].applied is False
    with Image.open(io.BytesIO(source)) as before:
        assert np.array_equal(decoded(job), np.asarray(before))


def test_a_model_that_is_not_a_matting_engine_is_a_clear_request_error():
    photo, _, _, _ = scene()
    with pytest.raises(InvalidRequest, match="needs another"):
        enhance(encoded(photo, "PNG"), background="white", background_model="retouch-tone")
