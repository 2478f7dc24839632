"""Whole-canvas inpainting samples: framing, seeded masks and batches, and a tiny canvas training run."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engines.training import inpaint_canvas as ic
from engines.training.commands import register
from engines.training.inpaint_train import InpaintRecipe, reconstruction_loss, train


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Five 4:5 'product photos' (white, a dark block left of centre) and one square one."""
    folder = tmp_path_factory.mktemp("canvas-photos")
    for i, (h, w) in enumerate([(150, 120)] * 5 + [(120, 120)]):
        img = np.full((h, w, 3), 255, np.uint8)
        img[h // 3 : 2 * h // 3, w // 4 : w // 2] = (20 * i, 60, 120)
        Image.fromarray(img).save(folder / f"p{i:02d}.png")
    return folder


def test_views_frame_the_photo_as_the_engine_and_eval_do(photos: Path) -> None:
    # Given a 4:5 photo, then the portrait view keeps it whole at the working side (W a multiple of 8),
    # and the square view is its centre square.
    assert ic.view_shape("portrait", 96) == (96, 72) and ic.view_shape("square", 96) == (96, 96)
    portrait = ic.frame(photos / "p00.png", "portrait", 96)
    square = ic.frame(photos / "p00.png", "square", 96, margin=4)
    assert portrait.shape == (96, 72, 3) and square.shape == (100, 100, 3)
    # The dark block spans rows 1/3-2/3 of the photo in both views (square: the centre 120 of 150 rows).
    assert portrait[48, 25].max() < 200 and portrait[10, 25].min() == 255
    assert square[50, 30].max() < 200


def test_cache_holds_both_views_of_training_photos_only(photos: Path, tmp_path: Path) -> None:
    cache = ic.build_canvas_cache(photos, holdout=2, side=64, cache_dir=tmp_path, log=lambda s: None)
    assert cache["portrait"].shape == (4, 3, 64 + ic.JITTER, 48 + ic.JITTER)
    assert cache["square"].shape == (4, 3, 64 + ic.JITTER, 64 + ic.JITTER)
    assert cache["portrait"].dtype == torch.uint8
    # A second call loads the saved cache instead of decoding again.
    again = ic.build_canvas_cache(photos, holdout=2, side=64, cache_dir=tmp_path, log=lambda s: None)
    assert torch.equal(again["square"], cache["square"]) and len(list(tmp_path.glob("inpaint-canvas-*.pt"))) == 1


def test_canvas_masks_are_seeded_binary_and_cover_every_kind() -> None:
    masks = [ic.canvas_mask(96, 72, np.random.default_rng([1, i])) for i in range(60)]
    np.testing.assert_array_equal(masks[3], ic.canvas_mask(96, 72, np.random.default_rng([1, 3])))
    assert all(set(np.unique(m)) <= {0.0, 1.0} and m.any() for m in masks)
    # Side bands: the left and right columns are generated, the middle column is kept, total 4-30 %.
    for seed in range(30):
        m = ic.side_bands(96, 80, np.random.default_rng(seed))
        assert m[:, 0].all() and m[:, -1].all() and not m[:, 40].any()
        assert 0.04 - 1 / 80 <= m.mean() <= 0.3 + 1 / 80
    # Boxes leave all four borders known; bands touch them: both occur in the mix.
    touches = [bool(m[:, 0].any() or m[:, -1].any() or m[0].any() or m[-1].any()) for m in masks]
    assert any(touches) and not all(touches)


def test_batches_are_one_view_and_reproducible(photos: Path) -> None:
    cache = ic.build_canvas_cache(photos, holdout=0, side=64, log=lambda s: None)
    shapes = set()
    for step in range(12):
        img, mask = ic.sample_canvas_batch(cache, 3, np.random.default_rng([0, step]))
        again, mask2 = ic.sample_canvas_batch(cache, 3, np.random.default_rng([0, step]))
        assert torch.equal(img, again) and torch.equal(mask, mask2)
        assert img.shape[0] == 3 and mask.shape == (3, 1, *img.shape[-2:]) and 0 <= img.min() <= img.max() <= 1
        shapes.add(tuple(img.shape[-2:]))
    assert shapes == {(64, 48), (64, 64)}


def test_l2_reconstruction_weighs_holes_by_squared_error() -> None:
    target = torch.zeros(1, 3, 4, 4)
    pred = torch.zeros(1, 3, 4, 4)
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :2, :] = 1
    pred[..., :2, :] = 0.5  # hole error 0.5 everywhere, known pixels exact
    assert reconstruction_loss(pred, target, mask, "l1").item() == pytest.approx(0.5)
    assert reconstruction_loss(pred, target, mask, "l2").item() == pytest.approx(0.25)


@pytest.mark.parametrize("strips", [0.0, 1.0])
def test_tiny_canvas_run_is_deterministic(strips: float, photos: Path, tmp_path: Path) -> None:
    # strips=1: every batch is border strips at listing resolution (`inpaint_strips`).
    torch.set_num_threads(1)
    recipe = replace(InpaintRecipe(), steps=3, batch=2, features=4, bottleneck=8, blocks=1, d_features=4,
                     adv_start=2, canvas_side=80, hole_loss="l2", strips=strips)

    def run(out: Path) -> dict[str, torch.Tensor]:
        g = train(recipe, photos, out, seed=1, holdout=2, val_every=3, ckpt_every=3, log=lambda s: None,
                  val_images=1)
        return {k: v.clone() for k, v in g.state_dict().items()}

    a, b = run(tmp_path / "a"), run(tmp_path / "b")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    log = (tmp_path / "a" / "retouch-inpaint" / "log.jsonl").read_text()
    assert '"val_masked_psnr"' in log and '"adv"' in log
    assert bool(list((tmp_path / "a" / "cache").glob("inpaint-strips-*.pt"))) == bool(strips)


@pytest.mark.parametrize(("argv", "message"), [
    # Flags of other families are refused by the inpainter's own sub-command, before anything runs
    (["train", "retouch-inpaint", "--loss", "charbonnier"], "invalid choice: 'charbonnier' (choose from 'l1', 'l2')"),
    (["train", "retouch-inpaint", "--canvas-side", "100"], "multiple of 8"),
    (["train", "retouch-inpaint", "--natural-crops", "10"], "unrecognized arguments: --natural-crops"),
    (["train", "retouch-inpaint", "--strips", "1.5"], "share in [0, 1]"),
    (["train", "retouch-inpaint", "--strips", "0.4", "--canvas-side", "0"], "whole canvases (--canvas-side > 0)"),
])
def test_unsupported_training_flags_fail_clearly(argv: list[str], message: str, photos: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="retouch")
    register(parser.add_subparsers(dest="command", required=True))
    try:
        args = parser.parse_args([*argv, "--data", str(photos), "--out-dir", str(tmp_path)])
        status = args.func(args)
    except SystemExit as exit_:
        status = exit_.code
    assert status == 2
    assert message in capsys.readouterr().err
