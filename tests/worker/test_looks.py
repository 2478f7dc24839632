"""Looks: named or fitted colour styles applied after the tone correction."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from worker.cli import main
from worker.errors import InvalidRequest
from worker.pipeline.looks import BUILTIN_LOOKS, Look, apply_look, fit_look, load_look


def ramp_photo() -> np.ndarray:
    y, x = np.mgrid[0:64, 0:96]
    return np.stack([x / 95, y / 63, 0.5 + 0.4 * np.sin(x / 9)], axis=2).astype(np.float32)


def test_neutral_changes_nothing_and_bright_lifts_mid_tones_keeping_black_and_white():
    photo = ramp_photo()
    assert apply_look(photo, BUILTIN_LOOKS["neutral"]) is photo
    bright = apply_look(photo, BUILTIN_LOOKS["bright"])
    grey = np.full((4, 4, 3), 0.5, np.float32)
    assert apply_look(grey, BUILTIN_LOOKS["bright"]).mean() > 0.55
    ends = np.array([[[0, 0, 0], [1, 1, 1]]], np.float32)
    np.testing.assert_allclose(apply_look(ends, BUILTIN_LOOKS["bright"]), ends, atol=1 / 255)
    assert bright.shape == photo.shape


def test_a_look_fitted_from_styled_references_recovers_the_style():
    neutral = [ramp_photo(), ramp_photo()[::-1].copy()]
    styled = [apply_look(photo, BUILTIN_LOOKS["bright"]) for photo in neutral]
    fitted = fit_look(list(zip(neutral, styled, strict=True)), "shop")
    for photo, target in zip(neutral, styled, strict=True):
        assert np.abs(apply_look(photo, fitted) - target).mean() < 0.015
    assert fitted.saturation == pytest.approx(1.08, abs=0.05)
    assert Look.from_dict(json.loads(fitted.to_json())) == fitted


def test_look_files_are_checked(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"curves": [[1, 0.5, 0, 0, 0, 0, 0, 0, 0]] * 3}))
    with pytest.raises(InvalidRequest, match="must not decrease"):
        load_look(str(bad))
    good = tmp_path / "good.json"
    good.write_text(BUILTIN_LOOKS["bright"].to_json())
    assert load_look(str(good)).curves == BUILTIN_LOOKS["bright"].curves


def test_look_fit_command_writes_a_look_and_refuses_missing_files(tmp_path, capsys):
    refs = []
    for index in range(2):
        path = tmp_path / f"ref{index}.png"
        Image.fromarray((ramp_photo() * 255).astype(np.uint8)).save(path)
        refs.append(str(path))
    out = tmp_path / "shop.json"
    assert main(["look", "fit", *refs, "-o", str(out)]) == 0
    assert Look.from_dict(json.loads(out.read_text())).name == "shop"
    assert main(["look", "fit", str(tmp_path / "nope.jpg"), "-o", str(out)]) == 2
    assert "no such file" in capsys.readouterr().err


def test_a_shops_look_is_read_from_its_bucket(monkeypatch):
    import boto3
    from moto import mock_aws

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="shop-looks")
        s3.put_object(Bucket="shop-looks", Key="summer.json", Body=BUILTIN_LOOKS["bright"].to_json().encode())
        assert load_look("s3://shop-looks/summer.json").saturation == BUILTIN_LOOKS["bright"].saturation
        with pytest.raises(InvalidRequest, match="could not be read|usable look file"):
            load_look("s3://shop-looks/missing.json")
