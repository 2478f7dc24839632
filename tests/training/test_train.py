"""A tiny training run: deterministic with a seed, resumable from its checkpoint, and shippable."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engines.training.model_io import read_metadata, save_weights
from engines.training.recipes import Recipe
from engines.training.train import lr_at, train
from engines.weights_io import load_network


@pytest.fixture()
def image_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        # Smooth random texture (upsampled noise) so crops pass the "textured" filter.
        small = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
        Image.fromarray(small).resize((64, 64), Image.BICUBIC).save(folder / f"img_{i}.png")
    return folder


def _recipe(kind: str, steps: int) -> Recipe:
    if kind == "denoise":
        return Recipe("tiny-denoise", "CompactDenoiser", 1, "denoise", {"features": 4, "blocks": 1},
                      steps=steps, batch=2, patch=16, loss="charbonnier")
    return Recipe("tiny-sr", "CompactSR", 2, kind, {"scale": 2, "features": 8, "blocks": 1},
                  steps=steps, batch=2, patch=16)


def _run(folder: Path, out: Path, steps: int, kind: str = "bicubic", resume: bool = False,
         total: int | None = None, bf16: bool = False) -> dict[str, torch.Tensor]:
    recipe = _recipe(kind, total or steps)
    if total is not None:  # stop early: same schedule as the full run, fewer steps done
        recipe = Recipe(**{**recipe.__dict__, "steps": total})
    model = train(recipe, folder, out, seed=5, holdout=1, resume=resume, val_every=2, ckpt_every=2,
                  cache_crops=3, log=lambda *_: None, stop_at=steps, bf16=bf16)
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("kind", ["bicubic", "real", "denoise"])
def test_training_is_deterministic_with_a_seed(image_folder: Path, tmp_path: Path, kind: str) -> None:
    torch.set_num_threads(1)
    a = _run(image_folder, tmp_path / "a", 4, kind)
    b = _run(image_folder, tmp_path / "b", 4, kind)
    assert all(torch.equal(a[k], b[k]) for k in a)
    log = [json.loads(line) for line in (tmp_path / "a" / f"tiny-{'denoise' if kind == 'denoise' else 'sr'}"
                                          / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 4 and np.isfinite(log[-1]["loss"]) and "val_psnr_y" in log[-1]


def test_training_resumes_from_checkpoint(image_folder: Path, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    straight = _run(image_folder, tmp_path / "straight", 4)
    # Given a run interrupted after 2 of 4 steps (its checkpoint is at step 2)
    _run(image_folder, tmp_path / "split", 2, total=4)
    # When it resumes to the end, then it equals the uninterrupted run
    resumed = _run(image_folder, tmp_path / "split", 4, resume=True)
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)


def test_bf16_autocast_training_is_deterministic_and_keeps_float32_weights(image_folder: Path,
                                                                          tmp_path: Path) -> None:
    torch.set_num_threads(1)
    fp32 = _run(image_folder, tmp_path / "fp32", 4)
    a = _run(image_folder, tmp_path / "a", 4, bf16=True)
    b = _run(image_folder, tmp_path / "b", 4, bf16=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert all(v.dtype == torch.float32 for v in a.values())
    # bf16 forward passes change the trajectory a little, not the direction of the updates.
    assert any(not torch.equal(a[k], fp32[k]) for k in a)
    assert all(torch.allclose(a[k], fp32[k], atol=5e-3) for k in a)


def test_learning_rate_schedule() -> None:
    assert lr_at(0, 1000, 1e-3) == pytest.approx(2e-5)
    assert lr_at(50, 1000, 1e-3) == pytest.approx(1e-3)
    assert lr_at(1000, 1000, 1e-3) == pytest.approx(1e-5)


def test_weights_round_trip_with_metadata(tmp_path: Path) -> None:
    from engines.families.compact_sr.network import CompactSR

    model = CompactSR(2, features=8, blocks=1)
    meta = {"arch": "CompactSR", "arch_params": json.dumps({"scale": 2, "features": 8, "blocks": 1}),
            "model_id": "t", "trained_with": "retouch train t", "seed": "0"}
    save_weights(model, tmp_path / "t.safetensors", meta)
    loaded, got = load_network(tmp_path / "t.safetensors")
    assert got["model_id"] == "t" and read_metadata(tmp_path / "t.safetensors")["seed"] == "0"
    x = torch.rand(1, 3, 8, 8)
    assert torch.equal(loaded(x), model.eval()(x))


def test_natural_photos_ship_with_scikit_image_and_join_the_crop_cache(image_folder: Path, tmp_path: Path) -> None:
    from engines.training.data import CacheSpec, build_crop_cache, natural_photo_files

    photos = natural_photo_files()
    assert len(photos) >= 10 and all(p.is_file() for p in photos)
    base = CacheSpec(str(image_folder), 1, 32, 3, (1.0, 0.5), seed=0)
    with_extra = CacheSpec(str(image_folder), 1, 32, 3, (1.0, 0.5), seed=0,
                           extra_files=tuple(str(p) for p in photos[:2]), extra_crops_per_image=4)
    plain, extended = build_crop_cache(base), build_crop_cache(with_extra)
    assert base.key() != with_extra.key()  # a cache file never serves the other mix
    # 4 crops per photo, split over the 2 shrink factors; the catalogue crops come first, unchanged.
    assert extended.shape[0] == plain.shape[0] + 2 * 4
    assert torch.equal(extended[: plain.shape[0]], plain)
    astronaut = np.asarray(Image.open(photos[0]).convert("RGB"))
    first_extra = extended[plain.shape[0]].permute(1, 2, 0).numpy()
    corner_matches = zip(*np.nonzero((astronaut[:-31, :-31] == first_extra[0, 0]).all(axis=-1)), strict=True)
    hits = [(y, x) for y, x in corner_matches if np.array_equal(astronaut[y : y + 32, x : x + 32], first_extra)]
    assert hits, "the first extra crop is a full-size crop of the first natural photo"


def test_card_helpers_name_the_cpu_and_the_natural_photos(tmp_path: Path) -> None:
    from engines.training.cards import cpu_name, natural_photos_text
    from engines.training.data import NATURAL_PHOTOS

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Processor\n")
    assert cpu_name(info) == "Intel(R) Xeon(R) Processor"
    assert cpu_name(tmp_path / "missing") == "CPU"
    assert natural_photos_text(0) == ""
    text = natural_photos_text(400)
    assert "400 textured crops" in text and all(name in text for name in NATURAL_PHOTOS)


def test_training_dependencies_are_named_when_missing(monkeypatch):
    import importlib
    import sys

    from engines.training.extras import MissingTrainingDependency

    # Given an install without the [train] extra (no OpenCV)
    monkeypatch.setitem(sys.modules, "cv2", None)
    monkeypatch.delitem(sys.modules, "engines.training.masks", raising=False)
    masks = importlib.import_module("engines.training.masks")  # importing needs no OpenCV
    # Then the first use says which extra to install
    with pytest.raises(MissingTrainingDependency, match=r"pip install -e '\.\[train\]'"):
        masks.stroke_mask(64, 64, np.random.default_rng(0))
