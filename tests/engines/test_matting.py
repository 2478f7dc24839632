"""Matting: mattes taken from photos on white, composites, the full-resolution matte and what it reports."""

from __future__ import annotations

import numpy as np
import pytest

from engines.matting import Matte, background_colours, guided_upsample, work_input, work_shape
from engines.training.matte_data import Product, composite, cut_out
from engines.training.matte_truth import ground_colour, product_matte


def _photo_on_white(height: int = 240, width: int = 200, ground: int = 250) -> tuple[np.ndarray, np.ndarray]:
    """A blue bottle-ish product (a rectangle and a disc) with a white label on a white studio ground."""
    yy, xx = np.mgrid[0:height, 0:width]
    product = ((yy > 60) & (yy < 200) & (xx > 60) & (xx < 140)) | ((yy - 60) ** 2 + (xx - 100) ** 2 < 30**2)
    rgb = np.full((height, width, 3), ground, np.uint8)
    rgb[product] = (30, 60, 160)
    rgb[120:150, 80:120] = ground - 6  # a white label inside the product: must stay product
    return rgb, product


def test_product_on_white_gives_its_matte_with_white_parts_inside_kept():
    rgb, product = _photo_on_white()
    alpha = product_matte(rgb)
    assert alpha is not None
    inside = product.copy()
    inside[120:150, 80:120] = True
    iou = ((alpha > 0.5) & inside).sum() / ((alpha > 0.5) | inside).sum()
    assert iou > 0.97
    assert (alpha[120:150, 80:120] > 0.5).all()  # the label is not background
    # ... while the ground itself seen through the product (a handle's hole) is background
    rgb[160:190, 85:115] = 250
    alpha = product_matte(rgb)
    assert (alpha[165:185, 90:110] < 0.5).all()


def test_photos_not_on_white_or_without_a_product_give_no_matte():
    rgb, _ = _photo_on_white()
    coloured = rgb.copy()
    coloured[(rgb == 250).all(axis=2)] = (200, 120, 90)  # a terracotta set
    assert ground_colour(coloured) is None and product_matte(coloured) is None
    assert product_matte(np.full((100, 100, 3), 252, np.uint8)) is None  # nothing on the ground


def test_cut_out_unblends_edge_colours_from_the_white_ground():
    rgb, _ = _photo_on_white()
    rgb = rgb.astype(np.float32)
    rgb[100:200, 59] = 0.5 * np.array([30, 60, 160]) + 0.5 * 250  # a half-covered edge column
    product = cut_out(rgb.round().astype(np.uint8))
    assert product is not None and "bottom" not in product.touches
    edge = product.alpha[:, 0] > 0
    # Where the edge is partly product, its colour is the product's, not a lighter blue
    assert np.abs(product.rgb[:, 0][edge & (product.alpha[:, 0] > 100)].astype(int) - (30, 60, 160)).max() < 40


def test_a_composite_truth_is_the_product_where_it_was_pasted():
    alpha = np.zeros((50, 40), np.uint8)
    alpha[5:45, 5:35] = 255
    product = Product(np.full((50, 40, 3), (200, 20, 20), np.uint8), alpha, frozenset())
    rng = np.random.default_rng(0)
    background = np.full((300, 300, 3), 30, np.uint8)
    image, truth = composite([product], [], 128, rng, several=0.0, shadow=0.0, degrade=False,
                             background=background)
    assert image.shape == (128, 128, 3) and truth.shape == (128, 128)
    red = (image[..., 0] > 150) & (image[..., 1] < 60)
    assert 0.05 < truth.mean() < 0.9
    sure = (truth < 0.05) | (truth > 0.95)  # the resized outline is partial alpha, blended with the ground
    assert ((truth > 0.5) == red)[sure].mean() > 0.99


def test_work_input_shrinks_to_the_working_side_and_pads_to_the_multiple():
    assert work_shape(3000, 2000, 384, 32) == (384, 256)
    assert work_shape(100, 50, 384, 32) == (100, 50)  # never enlarged
    batch, inside = work_input(np.random.rand(3000, 2000, 3).astype(np.float32), 384, 32)
    assert batch.shape == (1, 3, 384, 256) and inside == (384, 256)
    batch, inside = work_input(np.random.rand(100, 50, 3).astype(np.float32), 384, 32)
    assert batch.shape == (1, 3, 128, 64) and inside == (100, 50)


def test_guided_upsampling_puts_the_matte_edge_on_the_photos_edge():
    # A sharp photo edge between columns 300 and 301, and a working-resolution matte (x4 smaller) whose
    # two-pixel ramp only roughly covers it
    rgb = np.zeros((200, 600, 3), np.float32)
    rgb[:, 301:] = 1.0
    coarse = np.clip((np.arange(150) - 74) / 2.0, 0, 1)[None, :].repeat(50, 0).astype(np.float32)
    sharp = guided_upsample(coarse, rgb)
    assert sharp.shape == (200, 600)
    row = sharp[100]
    assert int(np.argmax(np.diff(row))) == 300  # the steepest step is the photo's edge
    assert row[299] < 0.1 and row[301] > 0.7


def test_report_counts_products_sides_and_unsure_alpha():
    alpha = np.zeros((100, 100), np.float32)
    alpha[20:50, 10:40] = 1.0
    alpha[60:100, 60:90] = 1.0  # a second product, cut by the bottom edge
    report = Matte(alpha).report()
    assert report.products == 2 and report.touches == ("bottom",)
    assert report.confidence > 0.95
    glass = alpha.copy()
    glass[20:50, 10:40] = 0.5  # a see-through product: half opaque everywhere
    assert Matte(glass).report().confidence < 0.7


def test_background_colours_fill_in_behind_the_product():
    rgb = np.zeros((128, 128, 3), np.float32)
    rgb[...] = np.linspace(0, 1, 128, dtype=np.float32)[None, :, None]  # a grey ramp wall
    alpha = np.zeros((128, 128), np.float32)
    alpha[40:90, 40:90] = 1.0
    rgb[40:90, 40:90] = (1.0, 0.0, 0.0)  # a red product in front
    behind = background_colours(rgb, alpha)
    assert behind.shape == (128, 128, 3)
    assert np.abs(behind[65, 65] - rgb[65, 20] * 0 - 65 / 127).max() < 0.15  # the ramp, not red
    assert behind[65, 65, 1] > 0.3


@pytest.mark.slow
def test_matte_trainer_learns_products_on_synthetic_photos(tmp_path):
    """A few steps of `retouch train retouch-matte` on synthetic photos on white write loadable weights."""
    from PIL import Image

    from engines.session import open_engine
    from worker.cli import main

    data = tmp_path / "photos"
    data.mkdir()
    rng = np.random.default_rng(1)
    for i in range(8):
        rgb, _ = _photo_on_white()
        rgb[rgb[..., 2] == 160] = rng.integers(0, 200, 3)
        Image.fromarray(rgb).save(data / f"p{i}.png")
    Image.fromarray(np.full((120, 120, 3), (90, 140, 60), np.uint8)).save(data / "scene.png")
    out = tmp_path / "runs"
    assert main(["train", "retouch-matte", "--data", str(data), "--steps", "3", "--batch", "2", "--patch", "64",
                 "--holdout", "1", "--out-dir", str(out)]) == 0
    weights = out / "retouch-matte" / "retouch-matte.safetensors"
    with open_engine(str(weights), backend="torch", device="cpu") as engine:
        assert engine.spec.task == "matting"
        assert engine.matte(np.random.rand(50, 70, 3).astype(np.float32)).alpha.shape == (50, 70)
