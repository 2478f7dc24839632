"""The texture inpainter's pieces: hole windows in the fill, the use-case masks and windows it trains on,
its texture loss, and the texture and product-box measures of `retouch eval inpaint`."""

from __future__ import annotations

import argparse
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from engines.families.compact_inpainter import INPAINT
from engines.masked_fill import HOLE_MIN_CONTEXT, fill, hole_windows, window_around
from engines.training import inpaint_holes as ih
from engines.training import inpaint_train
from engines.training.commands import register
from engines.training.inpaint_eval import hole_texture, product_box_mask, region_gmsd
from engines.training.inpaint_train import TEXTURE_RECIPE, load_generator, texture_loss, train_inpaint_from_args
from engines.training.masks import band_mask


def _recording_process(seen: list[tuple[int, int]]):
    def process(img: np.ndarray, m: np.ndarray) -> np.ndarray:
        seen.append(m.shape)
        return np.where(m[..., None] > 0.5, 0.5, img).astype(np.float32)

    return process


def _box(h: int, w: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    mask = np.zeros((h, w), np.float32)
    mask[y0:y1, x0:x1] = 1
    return mask


def test_window_is_the_hole_plus_half_its_size_clipped_to_the_photo() -> None:
    assert window_around((100, 200, 300, 340), (1000, 800)) == (50, 250, 250, 390)
    assert window_around((0, 10, 795, 800), (1000, 800)) == (0, 10 + HOLE_MIN_CONTEXT, 795 - HOLE_MIN_CONTEXT, 800)


def test_windows_hold_whole_holes_and_merge_when_they_overlap() -> None:
    far = _box(1000, 800, 100, 200, 100, 200) + _box(1000, 800, 700, 800, 500, 600)
    assert sorted(hole_windows(far)) == [(50, 250, 50, 250), (650, 850, 450, 650)]
    near = _box(1000, 800, 100, 200, 100, 200) + _box(1000, 800, 240, 300, 100, 160)
    (window,) = hole_windows(near)
    assert window == (50, 332, 50, 250)  # the small box keeps HOLE_MIN_CONTEXT below it


def test_holes_that_fit_a_window_are_filled_there_and_the_rest_stays_bit_exact() -> None:
    # Given a 1,000 x 800 photo with two small boxes, When filled with crop_side 384, Then the process
    # sees each window at its own size (no shrink below 384), and every pixel outside the holes keeps
    # its value.
    photo = np.random.default_rng(0).random((1000, 800, 3), dtype=np.float32)
    mask = _box(1000, 800, 100, 200, 100, 200) + _box(1000, 800, 700, 800, 500, 600)
    seen: list[tuple[int, int]] = []
    out = fill(_recording_process(seen), photo, mask, work_side=192, feather=2, crop_side=384)
    assert sorted(seen) == [(200, 200), (200, 200)]
    keep = mask < 0.5
    np.testing.assert_array_equal(out[keep], photo[keep])
    assert abs(float(out[120:180, 120:180].mean()) - 0.5) < 0.01
    # A larger window is shrunk to crop_side; without crop_side the whole canvas goes to work_side.
    big = _box(1000, 800, 300, 600, 250, 550)
    seen.clear()
    fill(_recording_process(seen), photo, big, work_side=192, crop_side=384)
    assert seen == [(384, 384)]
    seen.clear()
    fill(_recording_process(seen), photo, big, work_side=192)
    assert seen == [(192, 154)]


def test_bands_and_holes_as_big_as_the_photo_keep_the_whole_canvas_path() -> None:
    photo = np.random.default_rng(1).random((600, 480, 3), dtype=np.float32)
    for mask in (band_mask(600, 480, left=60, right=60), _box(600, 480, 50, 550, 40, 440)):
        seen: list[tuple[int, int]] = []
        fill(_recording_process(seen), photo, mask, work_side=192, crop_side=384)
        assert seen == [(192, 154)]


def test_hole_windows_need_a_whole_canvas_path_to_fall_back_to() -> None:
    # Bands and the largest holes still take the whole-canvas path, so crop_side without work_side is refused.
    replace(INPAINT, crop_side=384)
    with pytest.raises(ValueError, match="crop_side"):
        replace(INPAINT, crop_side=384, work_side=None)
    with pytest.raises(ValueError, match="crop_side"):
        replace(INPAINT, crop_side=32)  # below the network's minimum side


@pytest.mark.parametrize("kind", ih.HOLE_KINDS)
def test_use_masks_are_seeded_binary_and_inside_the_window(kind: str) -> None:
    for seed in range(12):
        mask = ih.use_mask(128, np.random.default_rng([seed, 1]), kind)
        np.testing.assert_array_equal(mask, ih.use_mask(128, np.random.default_rng([seed, 1]), kind))
        assert set(np.unique(mask)) == {0.0, 1.0}
        # Context remains: no kind covers most of the window.
        assert mask.mean() < 0.6, (kind, seed, mask.mean())
    if kind in ("box", "tag", "clutter"):  # centred shapes leave the window's border as context
        masks = [ih.use_mask(128, np.random.default_rng([s, 2]), kind) for s in range(12)]
        assert all(not m[:4].any() and not m[-4:].any() for m in masks)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Six 'product photos' on white: a striped block in the middle third."""
    folder = tmp_path_factory.mktemp("texture-photos")
    for i in range(6):
        img = np.full((300, 240, 3), 255, np.uint8)
        img[100:200, 80:160] = (200, 40 * i, 90)
        img[100:200:3, 80:160] = 20
        Image.fromarray(img).save(folder / f"p{i:02d}.png")
    return folder


def test_windows_are_cut_on_the_product_at_listing_size(photos: Path) -> None:
    held = ih.load_hole_photos(photos, holdout=2, log=lambda s: None)
    assert len(held.photos) == 4 and max(held.photos[0].shape[:2]) == ih.PHOTO_SIDE
    ys, xs = held.product_points[0][:, 0], held.product_points[0][:, 1]
    # The block is the middle third of the photo at listing size (1,024 x 819).
    assert ys.min() >= 330 and ys.max() <= 690 and xs.min() >= 260 and xs.max() <= 560
    images, masks = ih.sample_hole_batch(held, 3, np.random.default_rng(5), size=64)
    again, masks2 = ih.sample_hole_batch(held, 3, np.random.default_rng(5), size=64)
    assert images.shape == (3, 3, 64, 64) and masks.shape == (3, 1, 64, 64)
    assert torch.equal(images, again) and torch.equal(masks, masks2)
    assert 0.0 <= float(images.min()) and float(images.max()) <= 1.0


def test_texture_loss_prefers_shifted_texture_to_a_blur() -> None:
    # Given stripes under a hole, Then the same stripes shifted by a pixel cost far less than a flat fill
    # of the same mean colour, which L1 would score better.
    truth = torch.zeros(1, 3, 64, 64)
    truth[..., ::4, :] = 1.0
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 16:48, 16:48] = 1
    shifted = torch.roll(truth, 1, dims=2)
    flat = truth * (1 - mask) + truth.mean() * mask
    shifted = truth * (1 - mask) + shifted * mask
    assert texture_loss(shifted, truth, mask) < 0.2 * texture_loss(flat, truth, mask)
    assert F.l1_loss(flat, truth) < F.l1_loss(shifted, truth)


def test_hole_texture_and_gmsd_tell_a_blur_from_the_truth() -> None:
    rng = np.random.default_rng(0)
    truth = rng.random((96, 96, 3)).astype(np.float32)
    mask = _box(96, 96, 30, 60, 30, 60)
    blurred = truth.copy()
    blurred[30:60, 30:60] = truth[30:60, 30:60].mean(axis=(0, 1))
    assert hole_texture(truth, truth, mask) == pytest.approx(1.0)
    assert hole_texture(blurred, truth, mask) < 0.5
    assert region_gmsd(truth, truth, mask) == 0.0 < region_gmsd(blurred, truth, mask)
    assert math.isnan(hole_texture(truth, np.ones_like(truth), mask))  # no ratio to a flat white truth


def test_product_boxes_cover_3_to_8_percent_mostly_on_the_product() -> None:
    img = np.ones((400, 320, 3), np.float32)
    img[60:360, 40:280] = 0.3
    img[60:360:4, 40:280] = 0.1
    for seed in range(10):
        mask = product_box_mask(img, np.random.default_rng(seed))
        assert 0.03 - 0.01 <= mask.mean() <= 0.08 + 0.01
        assert float((img[..., 0][mask > 0.5] < 0.5).mean()) >= 0.8


def test_texture_command_trains_on_windows_and_ships_under_its_own_id(photos: Path, tmp_path: Path,
                                                                     monkeypatch) -> None:
    tiny = replace(TEXTURE_RECIPE, steps=3, batch=2, features=4, bottleneck=8, blocks=1, d_features=4, adv_start=1,
                   canvas_side=96)
    monkeypatch.setitem(inpaint_train.RECIPES, "retouch-inpaint-texture", tiny)
    monkeypatch.setattr(ih, "CROP", 64)
    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(prog="retouch")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["train", "retouch-inpaint-texture", "--data", str(photos), "--holdout", "2",
                              "--out-dir", str(tmp_path), "--val-every", "2", "--ckpt-every", "2", "--threads", "1"])
    assert train_inpaint_from_args(args) == 0
    _, meta = load_generator(tmp_path / "retouch-inpaint-texture" / "retouch-inpaint-texture.safetensors")
    assert meta["model_id"] == "retouch-inpaint-texture" and '"hole_windows": 0.75' in meta["recipe"]
    log = (tmp_path / "retouch-inpaint-texture" / "log.jsonl").read_text()
    assert "val_hole_texture" in log and '"tex"' in log
