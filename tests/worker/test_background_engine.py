"""End to end: `retouch enhance --background` with the real `retouch-matte` engine on a catalogue product
composited over a textured background (the truth matte known)."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engines.pins import PINS_FILE
from worker.cli import main

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif("retouch-matte" not in json.loads(PINS_FILE.read_text()),
                       reason="retouch-matte weights are not shipped yet (no pin in engines/weights/sha256.json)"),
]


def product_on_texture(path: Path, sample: str = "tshirt") -> np.ndarray:
    """A demo product (a T-shirt), cut from its white studio ground, over a wall-and-table background of
    smooth colour noise and wood-like stripes; writes a JPEG to `path` and returns the truth matte (H, W)."""
    from engines.training.matte_data import cut_out

    with Image.open(files("worker").joinpath(f"samples/{sample}.jpg")) as photo:
        rgb = np.asarray(photo.convert("RGB"))
    product = cut_out(rgb)
    assert product is not None
    height, width = 360, 480
    rng = np.random.default_rng(7)
    noise = rng.uniform(60, 200, (5, 7, 3)).astype(np.uint8)
    wall = np.asarray(Image.fromarray(noise).resize((width, height), Image.Resampling.BICUBIC), np.float32)
    xx = np.arange(width, dtype=np.float32)[None, :, None]
    table = np.array([150, 105, 70], np.float32) + 25 * np.sin(xx / 9.0 + 3 * np.sin(xx / 50.0))
    ground = wall.copy()
    ground[250:] = np.broadcast_to(table, (height - 250, width, 3))
    ground = np.clip(ground + rng.normal(0, 4, ground.shape), 0, 255)
    scale = 260 / max(product.alpha.shape)
    size = (round(product.alpha.shape[1] * scale), round(product.alpha.shape[0] * scale))
    colour = np.asarray(Image.fromarray(product.rgb).resize(size, Image.Resampling.BILINEAR), np.float32)
    alpha = np.asarray(Image.fromarray(product.alpha).resize(size, Image.Resampling.BILINEAR), np.float32) / 255
    truth = np.zeros((height, width), np.float32)
    top, left = 290 - size[1], (width - size[0]) // 2  # standing on the table
    truth[top : top + size[1], left : left + size[0]] = alpha
    layer = np.zeros_like(ground)
    layer[top : top + size[1], left : left + size[0]] = colour
    composite = truth[..., None] * layer + (1 - truth[..., None]) * ground
    Image.fromarray(composite.round().astype(np.uint8)).save(path, quality=95)
    return truth


def enhance(source: Path, out: Path, background: str, monkeypatch) -> dict:
    monkeypatch.setenv("RETOUCH_TONE", "never")  # only the background step: no tone, no upscale
    monkeypatch.setenv("RETOUCH_TARGET_SHORT_SIDE", "256")
    # The plumbing with a real matte, not the default threshold's calibration: retouch-matte's confidence on
    # products over busy backgrounds sits around 0.6-0.7 even where its matte is right (IoU 0.9).
    monkeypatch.setenv("RETOUCH_BACKGROUND_MIN_CONFIDENCE", "0.5")
    assert main(["enhance", str(source), "--output", str(out), "--background", background, "--backend", "torch"]) == 0
    return json.loads((out / f"{source.stem}.manifest.json").read_text())


def test_a_product_on_a_textured_background_is_cut_out_and_put_on_white(tmp_path, monkeypatch):
    monkeypatch.setenv("RETOUCH_CACHE_DIR", str(tmp_path / "cache"))
    source = tmp_path / "tee.jpg"
    truth = product_on_texture(source)

    manifest = enhance(source, tmp_path / "cut", "transparent", monkeypatch)
    found = manifest["background"]
    assert {k: found[k] for k in ("mode", "applied", "reason")} == {"mode": "transparent", "applied": True,
                                                                    "reason": "applied"}
    assert found["products"] >= 1 and found["confidence"] >= 0.5
    assert abs(found["coverage"] - truth.mean()) < 0.05
    assert {"step": "background", "verdict": "applied"}.items() <= manifest["gate"][-1].items()
    assert [run["engine"] for run in manifest["engines"]] == ["retouch-matte"]
    assert manifest["output"]["path"] == "tee.png" and manifest["output"]["content_type"] == "image/png"
    with Image.open(tmp_path / "cut" / "tee.png") as out:
        assert out.format == "PNG" and out.mode == "RGBA"
        alpha = np.asarray(out)[..., 3] / 255.0
    product, cut = truth > 0.5, alpha > 0.5
    assert (product & cut).sum() / (product | cut).sum() > 0.8  # the cut-out is the product
    assert alpha[truth == 0].mean() < 0.05  # the wall and the table are gone

    manifest = enhance(source, tmp_path / "white", "white", monkeypatch)
    assert manifest["background"]["mode"] == "white" and manifest["background"]["applied"] is True
    with Image.open(tmp_path / "white" / "tee.jpg") as out:
        assert out.mode == "RGB"
        white = np.asarray(out).astype(np.float32)
    far = truth == 0
    assert white[far].mean() > 245  # the background is white (the matte's soft edge aside)
    with Image.open(source) as before:
        original = np.asarray(before).astype(np.float32)
    # The product stays (a matte a little under 1 inside it lightens it a little: I + (1 - a)(white - B)).
    change = np.abs(white - original).max(axis=2)[truth == 1]
    assert np.median(change) < 25 and white[truth == 1].mean() < original[truth == 1].mean() + 25
