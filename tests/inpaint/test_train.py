"""A tiny seeded inpainting training run on synthetic images: deterministic, resumable, ships weights."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engines.training import inpaint_train
from engines.training.commands import register
from engines.training.inpaint_train import InpaintRecipe, load_generator, train, train_inpaint_from_args

TINY = replace(InpaintRecipe(), steps=4, batch=2, patch=64, features=4, bottleneck=8, blocks=1, d_features=4,
               adv_start=2, lr=1e-3, canvas_side=0, hole_loss="l1")  # crop mode; canvas mode: test_canvas.py


def cli_args(**values) -> argparse.Namespace:
    """`retouch train retouch-inpaint` as the CLI parses it, with `values` set as if given as flags."""
    parser = argparse.ArgumentParser(prog="retouch")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["train", "retouch-inpaint"])
    vars(args).update(values)
    return args


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Six synthetic 'product photos': white background, a coloured blob with stripes."""
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(6):
        img = np.full((120, 96, 3), 255, np.uint8)
        y, x = rng.integers(10, 50, 2)
        img[y : y + 50, x : x + 40] = rng.integers(0, 255, 3)
        img[y : y + 50 : 4, x : x + 40] = 30
        Image.fromarray(img).save(folder / f"p{i:02d}.png")
    return folder


@pytest.fixture(autouse=True)
def _small_world(monkeypatch):
    # Small working sides keep the cache tiny; one thread makes the run bit-reproducible.
    monkeypatch.setattr(inpaint_train, "WORK_SIDES", (112, 128))
    torch.set_num_threads(1)


def _run(photos: Path, out: Path, **kw) -> torch.nn.Module:
    return train(TINY, photos, out, seed=3, holdout=2, cache_crops=4, val_every=2, ckpt_every=2,
                 log=lambda s: None, val_images=1, **kw)


def _state(m: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in m.state_dict().items()}


def test_seeded_run_is_deterministic_and_resumable(photos: Path, tmp_path: Path) -> None:
    # Given the same seed, When trained twice, Then the weights are bit-identical.
    a = _state(_run(photos, tmp_path / "a"))
    b = _state(_run(photos, tmp_path / "b"))
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    # Given a run interrupted at step 3 (inside the adversarial phase), When resumed, Then it ends where
    # the uninterrupted run ended.
    _run(photos, tmp_path / "c", stop_at=3)
    ckpt = torch.load(tmp_path / "c" / "retouch-inpaint" / "last.pt", weights_only=True)
    assert ckpt["step"] == 3
    c = _state(_run(photos, tmp_path / "c", resume=True))
    for k in a:
        torch.testing.assert_close(a[k], c[k], rtol=0, atol=0)
    log = (tmp_path / "a" / "retouch-inpaint" / "log.jsonl").read_text()
    assert '"val_masked_psnr"' in log and '"adv"' in log and '"fm"' in log


def test_bf16_generator_run_is_deterministic_with_float32_weights(photos: Path, tmp_path: Path) -> None:
    a = _state(_run(photos, tmp_path / "a", bf16=True))
    b = _state(_run(photos, tmp_path / "b", bf16=True))
    for k in a:
        assert a[k].dtype == b[k].dtype == torch.float32
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    fp32 = _state(_run(photos, tmp_path / "fp32"))
    assert any(not torch.equal(a[k], fp32[k]) for k in a if a[k].is_floating_point())


def test_command_writes_safetensors_with_metadata(photos: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(inpaint_train.RECIPES, "retouch-inpaint", TINY)
    args = cli_args(data=photos, data_dir=None, holdout=2, steps=None,
                              batch=None, lr=None, seed=3, features=None, blocks=None, init=None,
                              out_dir=tmp_path, ship=tmp_path / "ship", resume=False, threads=1, device="cpu",
                              val_every=2, ckpt_every=2, cache_crops=4, bf16=True)
    assert train_inpaint_from_args(args) == 0
    model, meta = load_generator(tmp_path / "ship" / "retouch-inpaint.safetensors")
    assert meta["arch"] == "CompactInpainter" and meta["model_id"] == "retouch-inpaint"
    assert meta["seed"] == "3" and "trained_with" in meta and meta["task"] == "inpaint"
    assert model.features == 4 and meta["precision"] == "bf16 autocast (generator)"


def test_init_starts_the_generator_from_shipped_style_weights(photos: Path, tmp_path: Path, monkeypatch) -> None:
    # Given a finished run's safetensors, When a new run starts from it with zero steps left to train,
    # Then its generator is exactly those weights (a fine-tune continues the model, not a random one).
    monkeypatch.setitem(inpaint_train.RECIPES, "retouch-inpaint", TINY)
    args = cli_args(data=photos, data_dir=None, holdout=2, steps=None,
                              batch=None, lr=None, seed=3, features=None, blocks=None, init=None,
                              out_dir=tmp_path / "first", ship=None, resume=False, threads=1, device="cpu",
                              val_every=2, ckpt_every=2, cache_crops=4, bf16=False)
    assert train_inpaint_from_args(args) == 0
    shipped = tmp_path / "first" / "retouch-inpaint" / "retouch-inpaint.safetensors"
    start, _ = load_generator(shipped)
    fresh = _state(_run(photos, tmp_path / "fresh", stop_at=0))
    started = _state(_run(photos, tmp_path / "init", stop_at=0, init=shipped))
    assert all(torch.equal(started[k], v) for k, v in start.state_dict().items())
    assert any(not torch.equal(fresh[k], started[k]) for k in fresh if fresh[k].is_floating_point())
    # and it trains on from there
    trained = _state(_run(photos, tmp_path / "init2", stop_at=2, init=shipped))
    assert any(not torch.equal(trained[k], started[k]) for k in trained if trained[k].is_floating_point())
