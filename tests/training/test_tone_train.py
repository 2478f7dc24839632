"""The tone engine's spoils and trainer: what a spoil does, and a tiny run that resumes and loads as an engine."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engines.session import open_engine
from engines.training import tone_perturb
from worker.cli import main


def test_spoils_do_what_they_say():
    x = torch.rand(1, 3, 16, 16) * 0.8 + 0.1
    assert torch.allclose(tone_perturb.apply(x, tone_perturb.Perturbation()), x, atol=1e-5)
    assert tone_perturb.apply(x, tone_perturb.Perturbation(exposure_stops=1.0)).mean() > x.mean() + 0.05
    grey = tone_perturb.apply(x, tone_perturb.Perturbation(saturation=0.0))
    assert float((grey - grey.mean(1, keepdim=True)).abs().max()) < 1e-5
    warm = tone_perturb.apply(torch.full((1, 3, 4, 4), 0.5), tone_perturb.Perturbation(temperature=0.3))
    assert warm[0, 0].mean() > warm[0, 2].mean() + 0.1
    vignetted = tone_perturb.apply(torch.full((1, 3, 9, 9), 0.6), tone_perturb.Perturbation(vignetting=0.4))
    assert vignetted[0, 0, 0, 0] < vignetted[0, 0, 4, 4] - 0.05


def test_the_supervised_vignetting_gain_undoes_the_drawn_fall_off():
    from engines.families.tone_lut.network import apply_torch, identity_lut

    spoil = tone_perturb.Perturbation(vignetting=0.4)
    assert tone_perturb.vignetting_gain(tone_perturb.Perturbation()) == 0.0
    flat = torch.full((1, 3, 33, 33), 0.6)
    spoiled = tone_perturb.apply(flat, spoil)
    gain = torch.tensor([tone_perturb.vignetting_gain(spoil)])
    restored = apply_torch(spoiled, identity_lut(17)[None], gain)
    # The corners were 20 % darker than the centre; after the gain, within 2 % of it.
    assert float(spoiled[0, 0, 0, 0] / spoiled[0, 0, 16, 16]) < 0.85
    assert abs(float(restored[0, 0, 0, 0] / restored[0, 0, 16, 16]) - 1.0) < 0.02


def test_draws_stay_in_their_ranges_and_the_identity_share_holds():
    rng = np.random.default_rng(0)
    draws = [tone_perturb.draw(rng, identity_share=0.3) for _ in range(400)]
    identity = sum(d == tone_perturb.Perturbation() for d in draws) / len(draws)
    assert 0.22 < identity < 0.38
    for d in draws:
        for name, (low, high) in tone_perturb.RANGES.items():
            value = getattr(d, name)
            assert value == getattr(tone_perturb.Perturbation(), name) or low <= value <= high


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index in range(6):
        image = np.full((120, 100, 3), 255, np.uint8)
        image[30:90, 25:75] = rng.integers(40, 200, 3)
        Image.fromarray(image).save(folder / f"p{index}.jpg", quality=95)
    return folder


@pytest.mark.slow
def test_tiny_run_checkpoints_resumes_and_loads_as_an_engine(photos: Path, tmp_path: Path):
    common = ["train", "retouch-tone", "--data", str(photos), "--holdout", "2", "--batch", "2",
              "--out-dir", str(tmp_path / "runs"), "--val-every", "2", "--ckpt-every", "2"]
    assert main([*common, "--steps", "2"]) == 0
    assert main([*common, "--steps", "4", "--resume"]) == 0
    log = [json.loads(line) for line in (tmp_path / "runs" / "retouch-tone" / "log.jsonl").read_text().splitlines()]
    assert [record["step"] for record in log] == [2, 4] and "val_identity_psnr" in log[-1]
    weights = tmp_path / "runs" / "retouch-tone" / "retouch-tone.safetensors"
    with open_engine(str(weights), backend="torch") as engine:
        assert engine.spec.task == "tone" and engine.spec.tile_overlap == 0
        out = engine.process(np.full((50, 40, 3), 0.5, np.float32))
    assert out.shape == (50, 40, 3)


@pytest.mark.shared
@pytest.mark.slow
def test_eval_tone_on_a_held_aside_photo_corrects_spoils_and_runs_the_gate(tmp_path: Path, capsys):
    from tests.conftest import shared_path

    data = shared_path("data")
    assert main(["eval", "tone", "--data-dir", str(data), "--limit", "1", "--json", "--gate",
                 "--save-dir", str(tmp_path)]) == 0
    result = json.loads(capsys.readouterr().out)
    engine, baseline = result["rows"]
    assert engine["cases"] == 2 and engine["psnr_out"] > engine["psnr_in"] + 3  # held-aside spoils undone
    assert engine["delta_e_out"] < engine["delta_e_in"]
    assert set(result["gate"]) == {"as they are", "tone spoiled", "shrunk x0.5", "noise sigma 20"}
    assert len(list(tmp_path.glob("tone-*.png"))) == 1
