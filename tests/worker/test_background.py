"""The background step's decision and compositing: synthetic mattes and colours, no engine."""

from __future__ import annotations

import numpy as np
import pytest

from engines.matting import MatteReport, background_colours
from worker.pipeline import background as bg


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
