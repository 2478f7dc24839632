"""Tiling is pure geometry: exact round trips with identity "models", and tiled == whole-image for real nets.

Measured on this machine (2-core CPU, torch backend, seeded random weights), 1024x1024 input:
    CompactDenoiser (tile 256, margin 48, size multiple 4): max |tiled - whole| 1.8e-7, mean 2.3e-9
    CompactSR x2   (tile 256, margin 16):                   max 1.2e-7, mean 2.7e-10
(float32 rounding only: the margin covers the receptive field, so every kept pixel saw the same context).
The test bound, TILED_VS_WHOLE_MAX, is 1e-4: well under 1/255 and loose enough for other BLAS builds.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from engines.session import Engine
from engines.tiling import _axis_weights, blend_tiles, extract_tiles, pad_image, plan_tiles

TILED_VS_WHOLE_MAX = 1e-4
TILED_VS_WHOLE_MEAN = 1e-6


def _nearest_up(tiles: np.ndarray, s: int) -> np.ndarray:
    return tiles.repeat(s, axis=2).repeat(s, axis=3)


@pytest.mark.parametrize(
    ("h", "w", "tile", "margin", "multiple", "scale"),
    [(1, 1, 64, 8, 1, 1), (1, 7, 64, 8, 1, 2), (37, 501, 64, 8, 1, 4), (300, 200, 128, 48, 4, 1),
     (257, 256, 256, 16, 1, 2), (5, 3, 256, 48, 4, 1)],
)
def test_identity_round_trip_is_exact(h: int, w: int, tile: int, margin: int, multiple: int, scale: int) -> None:
    # Given an image and a "model" that nearest-upsamples, when tiled and blended,
    # then the result is exactly the nearest-upsampled image (weights normalise to 1 everywhere).
    rng = np.random.default_rng(0)
    image = rng.random((h, w, 3), dtype=np.float32)
    plan = plan_tiles(h, w, tile_size=tile, margin=margin, scale=scale, multiple=multiple, min_size=multiple)
    tiles = extract_tiles(pad_image(image, plan), plan)
    out = blend_tiles(_nearest_up(tiles, scale), plan)
    expected = image.repeat(scale, axis=0).repeat(scale, axis=1)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, atol=1e-6)


@pytest.mark.parametrize(("h", "w"), [(1024, 1024), (1000, 333), (70, 900)])
def test_plan_respects_budget_alignment_and_coverage(h: int, w: int) -> None:
    plan = plan_tiles(h, w, tile_size=256, margin=48, multiple=4, min_size=4)
    assert plan.tile_h <= 256 and plan.tile_w <= 256
    assert plan.padded_h % 4 == 0 and plan.padded_w % 4 == 0
    assert plan.tile_h % 4 == 0 and plan.tile_w % 4 == 0
    total = np.zeros((plan.padded_h, plan.padded_w), np.float32)
    for y, x in plan.origins:
        assert y % 4 == 0 and x % 4 == 0, "tiles must start on the size multiple (strided convs)"
        assert y + plan.tile_h <= plan.padded_h and x + plan.tile_w <= plan.padded_w
        wy = _axis_weights(y, plan.tile_h, plan.padded_h, plan)
        wx = _axis_weights(x, plan.tile_w, plan.padded_w, plan)
        total[y : y + plan.tile_h, x : x + plan.tile_w] += wy[:, None] * wx[None, :]
    assert total.min() > 0, "every pixel must be covered by a trusted (non-margin) part of some tile"


def test_trusted_region_excludes_margins_at_cut_edges() -> None:
    # Given a tile cut on both sides, then its margin bands get zero weight and the interior full weight.
    plan = plan_tiles(1000, 1000, tile_size=256, margin=16, scale=2)
    y = plan.origins[len(plan) // 2][0]
    w = _axis_weights(y, plan.tile_h, plan.padded_h, plan)
    assert (w[: 16 * 2] == 0).all() and (w[-16 * 2 :] == 0).all()
    assert w[len(w) // 2] == 1.0


def test_square_plan_gives_square_tiles() -> None:
    plan = plan_tiles(40, 300, tile_size=128, margin=8, square=True)
    assert plan.tile_h == plan.tile_w <= 128
    assert plan.padded_h >= plan.tile_h and plan.padded_w >= plan.tile_w


def test_plan_rejects_tile_without_stride() -> None:
    with pytest.raises(ValueError):
        plan_tiles(1000, 1000, tile_size=64, margin=30)


def _tiled_vs_whole(model, size: int = 1024) -> tuple[float, float]:  # noqa: ANN001
    rng = np.random.default_rng(1)
    image = rng.random((size, size, 3), dtype=np.float32)
    # Smooth it a little: pure noise is an unusual input, but any input must agree.
    image = (image + np.roll(image, 1, 0) + np.roll(image, 1, 1)) / 3
    spec = model.spec
    whole_spec = replace(spec, tile_size=-(-(size + 64) // spec.size_multiple) * spec.size_multiple)
    tiled = Engine(model, backend="torch", device="cpu", warm_up=False)
    whole = Engine(replace(model, spec=whole_spec), backend="torch", device="cpu", warm_up=False, max_batch=1)
    tiles_seen: list[int] = []
    a = tiled.process(image, progress=lambda done, total: tiles_seen.append(total))
    b = whole.process(image)
    assert tiles_seen and tiles_seen[-1] > 1, "the tiled engine must actually tile"
    diff = np.abs(a - b)
    return float(diff.max()), float(diff.mean())


@pytest.mark.slow
@pytest.mark.parametrize("name", ["denoise", "sr-x2"])
def test_tiled_matches_whole_image_on_1024(name: str, random_models: dict) -> None:
    max_diff, mean_diff = _tiled_vs_whole(random_models[name])
    print(f"\n{name}: tiled vs whole 1024x1024: max {max_diff:.3e} mean {mean_diff:.3e}")
    assert max_diff <= TILED_VS_WHOLE_MAX
    assert mean_diff <= TILED_VS_WHOLE_MEAN
