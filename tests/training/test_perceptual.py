"""GMSD and gradient sharpness: what they say about identical, blurred and sharpened images, and the
perceptual evaluation on two held-aside photos (skipped without ../shared)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from engines.training.degrade import blur, gaussian_kernel
from engines.training.perceptual import gmsd, sharpness_ratio
from tests.conftest import shared_path


def textured(seed: int = 0, size: int = 96) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    base = torch.from_numpy(rng.uniform(0, 1, (3, size // 8, size // 8)).astype(np.float32))
    image = torch.nn.functional.interpolate(base[None], size=(size, size), mode="nearest")[0]  # hard edges
    return (image * 0.8 + 0.1).clamp(0, 1)


def test_identical_images_score_zero_and_one():
    image = textured()
    assert gmsd(image, image) == 0.0
    assert sharpness_ratio(image, image) == pytest.approx(1.0)


def test_blur_raises_gmsd_and_lowers_sharpness_monotonically():
    truth = textured()
    soft = [blur(truth, gaussian_kernel(2 * int(np.ceil(3 * s)) + 1, s, s, 0.0)) for s in (0.5, 1.0, 2.0)]
    scores = [gmsd(x, truth) for x in soft]
    sharp = [sharpness_ratio(x, truth) for x in soft]
    assert scores == sorted(scores) and scores[0] > 0
    assert sharp == sorted(sharp, reverse=True) and sharp[-1] < 0.8


def test_oversharpening_shows_as_sharpness_above_one():
    truth = textured()
    soft = blur(truth, gaussian_kernel(7, 1.0, 1.0, 0.0))
    unsharp = (truth + 1.5 * (truth - soft)).clamp(0, 1)
    assert sharpness_ratio(unsharp, truth) > 1.1 and gmsd(unsharp, truth) > 0


def test_perceptual_eval_on_two_held_aside_photos(tmp_path, capsys):
    from worker.cli import main

    data = shared_path("data")
    shared_path("data", "products", "train")
    argv = ["eval", "perceptual", "--data-dir", str(data), "--scales", "4", "--limit", "2", "--json",
            "--save-dir", str(tmp_path)]
    assert main(argv) == 0
    rows = json.loads(capsys.readouterr().out)
    by = {(r["degradation"], r["method"]): r for r in rows}
    for degradation in ("catalogue", "harsh"):
        assert {"bicubic", "retouch-sr-x4-real", "retouch-sr-x4-perceptual"} <= {m for d, m in by if d == degradation}
        assert by[(degradation, "bicubic")]["gmsd"] > 0 and by[(degradation, "bicubic")]["sharpness"] < 1
    assert sorted(p.name for p in (tmp_path / "catalogue-x4").glob("*.png")) == ["00.png", "01.png"]
