"""PlainSR and its perceptual trainer: the network's contract, the teacher cache, a tiny resumable run."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engines.families.plain_sr.network import PlainSR, macs_per_output_pixel, receptive_field
from engines.training import teacher_cache
from engines.training.degrade import degrade_listing, jpeg
from engines.training.model_io import save_weights
from engines.training.perceptual_train import RECIPES, train
from engines.training.unet_discriminator import UNetDiscriminator


@pytest.mark.parametrize("scale", [1, 2, 4])
def test_plain_sr_shapes_and_nearest_start(scale: int) -> None:
    torch.manual_seed(0)
    x = torch.rand(2, 3, 9, 7)
    with torch.no_grad():
        out = PlainSR(scale, features=8, blocks=2).eval()(x)
    assert out.shape == (2, 3, 9 * scale, 7 * scale)
    # The tail starts small: a fresh network is close to the nearest-neighbour copy it adds to.
    base = torch.nn.functional.interpolate(x, scale_factor=scale, mode="nearest")
    assert float((out - base).abs().mean()) < 0.05


def test_plain_sr_receptive_field_bounds_influence() -> None:
    torch.manual_seed(0)
    model = PlainSR(2, features=8, blocks=4).eval()
    x = torch.rand(1, 3, 40, 40)
    y = x.clone()
    y[..., 20, 20] += 1
    with torch.no_grad():
        diff = (model(x) - model(y)).abs().sum(1)[0]
    rows = torch.nonzero(diff.sum(1) > 0).flatten()
    assert max(abs(int(rows.min()) // 2 - 20), abs(int(rows.max()) // 2 - 20)) <= receptive_field(4)


def test_shipped_shapes_fit_the_compute_budget() -> None:
    # Real-ESRGAN x4plus (RRDBNet) costs ~1,120 GMAC per output megapixel; the issue allows an eighth of it.
    for recipe in RECIPES.values():
        gmac = macs_per_output_pixel(recipe.scale, recipe.features, recipe.blocks) / 1e3
        assert gmac <= 140, (recipe.model_id, gmac)


def test_unet_discriminator_scores_every_pixel() -> None:
    critic = UNetDiscriminator(features=8)
    assert critic(torch.rand(2, 3, 32, 24)).shape == (2, 1, 32, 24)


def test_listing_degradation_is_seeded_and_chroma_subsampling_is_real() -> None:
    hr = torch.rand(3, 64, 64)
    a = degrade_listing(hr, 4, np.random.default_rng(1))
    assert a.shape == (3, 16, 16) and torch.equal(a, degrade_listing(hr, 4, np.random.default_rng(1)))
    # A red stripe on black: 4:2:0 halves the chroma resolution, so the stripe's colour bleeds; 4:4:4 keeps it.
    img = torch.zeros(3, 32, 32)
    img[0, :, 15] = 1.0
    err = {s: float((jpeg(img, 95, s) - img).abs()[:, :, 14:17].mean()) for s in ("4:2:0", "4:4:4")}
    assert err["4:2:0"] > 2 * err["4:4:4"]


@pytest.fixture()
def photo_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        small = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
        Image.fromarray(small).resize((160, 160), Image.BICUBIC).save(folder / f"p{i}.png")
    return folder


@pytest.fixture()
def tiny_teacher(tmp_path: Path) -> Path:
    """A stand-in teacher in our own weights format (the real one is Real-ESRGAN x4plus, not in tests)."""
    torch.manual_seed(0)
    path = tmp_path / "teacher.safetensors"
    save_weights(PlainSR(4, features=4, blocks=1), path,
                 {"arch": "PlainSR", "arch_params": json.dumps({"scale": 4, "features": 4, "blocks": 1})})
    return path


def test_teacher_cache_is_built_once_in_shards_and_samples_stay_aligned(photo_folder: Path, tiny_teacher: Path,
                                                                        tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(teacher_cache, "SHARD", 4)
    spec = teacher_cache.TeacherCacheSpec(str(photo_folder), 1, 2, 6, "test")
    folder = teacher_cache.build(spec, tiny_teacher, tmp_path / "cache", log=lambda *_: None)
    shards = sorted(folder.glob("shard-*.pt"))
    assert len(shards) == 2
    first = shards[0].stat().st_mtime_ns
    teacher_cache.build(spec, tiny_teacher, tmp_path / "cache", log=lambda *_: None)  # nothing left to do
    assert shards[0].stat().st_mtime_ns == first
    cache = teacher_cache.load(folder)
    assert cache["hr"].shape == (6, 3, 128, 128) and cache["lr"].shape == (6, 3, 64, 64)
    assert cache["teacher"].shape == cache["hr"].shape and cache["hr"].dtype == torch.uint8
    # Sampling applies one crop, flip and turn to all three: make hr and teacher the LR's nearest
    # upscale, and every sampled hr patch must be its sampled LR patch upscaled.
    up = torch.nn.functional.interpolate(cache["lr"].float(), scale_factor=2, mode="nearest").to(torch.uint8)
    lr, hr, teacher = teacher_cache.sample({"lr": cache["lr"], "hr": up, "teacher": up}, 8, 16, 2,
                                           np.random.default_rng(3))
    assert torch.equal(torch.nn.functional.interpolate(lr, scale_factor=2, mode="nearest"), hr)
    assert torch.equal(hr, teacher)


def test_perceptual_training_runs_every_loss_and_resumes_exactly(photo_folder: Path, tiny_teacher: Path,
                                                                 tmp_path: Path, monkeypatch) -> None:
    torch.set_num_threads(1)
    monkeypatch.setattr(teacher_cache, "SHARD", 32)
    monkeypatch.setattr("engines.training.perceptual_train.VALIDATION_TRIPLES", 4)
    recipe = replace(RECIPES["retouch-sr-x2-perceptual"], blocks=1, features=8, steps=4, batch=2, lr_patch=16,
                     adv_start=2, d_features=8, teacher_samples=12)

    def run(out: Path, resume: bool = False, deadline: float | None = None):
        ema, reached = train(recipe, photo_folder, tiny_teacher, out, holdout=1, resume=resume, val_every=2,
                             ckpt_every=2, deadline=deadline, log=lambda *_: None)
        return {k: v.clone() for k, v in ema.state_dict().items()}, reached

    straight, reached = run(tmp_path / "a")
    assert reached == 4
    log = [json.loads(line) for line in (tmp_path / "a" / recipe.model_id / "log.jsonl").read_text().splitlines()]
    assert {"pixel", "gradient", "teacher", "adv", "critic", "val_psnr", "val_gmsd"} <= set(log[-1])
    # A deadline already past stops at the first checkpoint; resuming finishes the same run.
    _, stopped = run(tmp_path / "b", deadline=0.0)
    assert stopped == 2
    resumed, reached = run(tmp_path / "b", resume=True)
    assert reached == 4 and all(torch.equal(straight[k], resumed[k]) for k in straight)


def test_the_one_command_training_script_runs_a_burst_and_hands_back_weights(
        photo_folder: Path, tiny_teacher: Path, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    data = tmp_path / "data"
    (data / "products").mkdir(parents=True)
    (data / "products" / "train").symlink_to(photo_folder)
    env = {**os.environ, "RETOUCH_EVAL_DATA": str(data), "RETOUCH_TEACHER": str(tiny_teacher),
           "OUT": str(tmp_path / "out"), "PYTHON": sys.executable}
    command = [str(root / "infra" / "gpu" / "train-sr.sh"), "retouch-sr-x2-perceptual", "5", "--steps", "2",
               "--batch", "2", "--patch", "32", "--blocks", "1", "--features", "8", "--teacher-samples", "8",
               "--holdout", "1", "--ckpt-every", "1", "--val-every", "2", "--threads", "1"]
    # The bf16 flag the script adds on CPUs is fine here: emulated where there is no native bf16, just slower.
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    handed = tmp_path / "out" / "runs" / "retouch-sr-x2-perceptual"
    assert {p.name for p in handed.iterdir()} == {"last.pt", "log.jsonl", "retouch-sr-x2-perceptual.safetensors"}
    # Missing settings are named, not guessed.
    missing = subprocess.run(command[:3], cwd=tmp_path, env={"PATH": os.environ["PATH"]}, capture_output=True,
                             text=True)
    assert missing.returncode != 0 and "RETOUCH_EVAL_DATA" in missing.stderr
