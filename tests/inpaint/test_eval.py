"""`retouch eval inpaint`: metrics on synthetic cases, and the command on two held-aside product photos."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from engines.training.inpaint_eval import (
    MODEL_ID,
    WEIGHTS_DIR,
    boundary_step_error,
    edge_replicate,
    eval_inpaint_from_args,
    masked_mse,
    region_ssim,
    seam_error,
)
from engines.training.masks import band_mask, box_mask
from tests.conftest import shared_path


def test_metrics_on_known_cases() -> None:
    rng = np.random.default_rng(0)
    truth = rng.random((64, 80, 3), dtype=np.float32)
    mask = box_mask(64, 80, rng)
    assert masked_mse(truth, truth, mask) == 0 and seam_error(truth, truth, mask) == 0
    assert region_ssim(truth, truth, mask) == pytest.approx(1.0)
    # A constant fill leaves a step at the boundary: positive seam error.
    flat = np.where(mask[..., None] > 0.5, 0.5, truth)
    assert seam_error(flat, truth, mask) > 1.0 and masked_mse(flat, truth, mask) > 0


def test_boundary_step_counts_only_the_jump_across_the_boundary() -> None:
    # Given a smooth ramp and a box hole: a fill that continues the ramp has no step; the ramp lifted by
    # 20 levels inside the hole has a step of exactly 20 levels; texture inside the hole, away from the
    # boundary, does not count.
    ramp = np.tile(np.linspace(0.2, 0.8, 80, dtype=np.float32), (64, 1))[..., None].repeat(3, axis=2)
    mask = np.zeros((64, 80), np.float32)
    mask[20:40, 30:50] = 1
    assert boundary_step_error(ramp, ramp, mask) == 0
    lifted = np.where(mask[..., None] > 0.5, ramp + 20 / 255, ramp)
    assert boundary_step_error(lifted, ramp, mask) == pytest.approx(20, abs=0.6)
    textured = ramp.copy()
    textured[25:35, 35:45] += np.random.default_rng(0).random((10, 10, 3), dtype=np.float32) * 0.1
    assert boundary_step_error(textured, ramp, mask) == 0 and seam_error(lifted, ramp, mask) > 0


def test_edge_replicate_is_exact_on_flat_borders() -> None:
    truth = np.ones((40, 50, 3), np.float32)
    truth[10:30, 15:35] = 0.2
    mask = band_mask(40, 50, left=6, right=7)
    out = edge_replicate(truth * (1 - mask[..., None]), mask)
    np.testing.assert_array_equal(out, truth)


@pytest.mark.parametrize("as_json", [False, True])
def test_eval_command_on_two_photos(as_json: bool, capsys, tmp_path) -> None:
    data = shared_path("data")
    shared_path("data", "products", "train")
    weights = WEIGHTS_DIR if (WEIGHTS_DIR / f"{MODEL_ID}.safetensors").is_file() else tmp_path
    args = argparse.Namespace(task="inpaint", data_dir=data, weights_dir=weights, limit=2, threads=1,
                              json=as_json, canvas=256, work_side=None, save_dir=tmp_path / "png", model=None)
    assert eval_inpaint_from_args(args) == 0
    out = capsys.readouterr().out
    methods = {"telea", "navier-stokes", "edge-replicate"} | ({MODEL_ID} if weights == WEIGHTS_DIR else set())
    if as_json:
        rows = json.loads(out)["rows"]
        assert {r["method"] for r in rows} >= methods
        assert all(r["n"] >= 1 for r in rows)
    else:
        assert "PSNR dB" in out and "box-product" in out and "outpaint-4:5" in out and "texture" in out
        for m in methods:
            assert m in out
    assert len(list((tmp_path / "png").glob("*.png"))) == 2 * 4
