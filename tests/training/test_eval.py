"""`retouch eval` on Set5 (seconds on 2 cores): finite PSNRs above bicubic for the shipped models."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pytest

from engines.training.commands import register
from engines.training.evaluate import WEIGHTS_DIR
from tests.conftest import shared_path


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="retouch")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


@pytest.mark.shared
def test_eval_set5_json_beats_bicubic(capsys: pytest.CaptureFixture[str]) -> None:
    data = shared_path("data")
    for scale in (2, 4):
        if not (WEIGHTS_DIR / f"retouch-sr-x{scale}-bicubic.safetensors").exists():
            pytest.skip(f"retouch-sr-x{scale}-bicubic weights are not shipped in {WEIGHTS_DIR}")
    assert _cli(["eval", "sr", "--sets", "Set5", "--scales", "2,4", "--json", "--data-dir", str(data)]) == 0
    rows = json.loads(capsys.readouterr().out)
    for scale in (2, 4):
        got = {r["method"]: r for r in rows if r["dataset"] == "Set5" and r["setting"] == f"x{scale}"}
        ours, bicubic = got[f"retouch-sr-x{scale}-bicubic"], got["bicubic"]
        assert ours["images"] == 5 and math.isfinite(ours["psnr"]) and 0 < ours["ssim"] <= 1
        # Our bicubic baseline reproduces the published one (33.66 / 28.42 dB) to within rounding.
        assert abs(bicubic["psnr"] - {2: 33.66, 4: 28.42}[scale]) < 0.05
        assert ours["psnr"] > bicubic["psnr"] + 0.1


@pytest.mark.shared
def test_eval_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    data = shared_path("data")
    assert _cli(["eval", "sr", "--sets", "Set5", "--scales", "4", "--limit", "2", "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    assert "bicubic" in out and "Set5" in out and "SwinIR (published)" in out and "PSNR dB" in out


def test_eval_without_data_fails_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(["eval", "sr", "--data-dir", str(tmp_path / "absent")]) == 2
    err = capsys.readouterr().err
    assert "--data-dir" in err and "RETOUCH_EVAL_DATA" in err


@pytest.mark.parametrize("command", [["eval", "sr"], ["train", "retouch-sr-x2-bicubic"]])
def test_no_data_folder_given_fails_clearly(command: list[str], monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    # Given neither --data-dir nor RETOUCH_EVAL_DATA, then the command names both instead of guessing a path.
    monkeypatch.delenv("RETOUCH_EVAL_DATA", raising=False)
    assert _cli(command) == 2
    err = capsys.readouterr().err
    assert "--data-dir" in err and "RETOUCH_EVAL_DATA" in err


def test_bf16_on_a_cpu_without_native_bf16_warns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from engines.training import commands

    # Given a CPU without native bf16 (how the flags are read: tests/engines/test_precision.py),
    # when --bf16 is asked for, then the user is told before the (slow) run starts.
    monkeypatch.setattr(commands, "cpu_has_native_bf16", lambda: False)
    monkeypatch.delenv("RETOUCH_EVAL_DATA", raising=False)
    assert _cli(["train", "retouch-denoise", "--bf16", "--data", str(tmp_path / "absent")]) == 2
    assert "no native bfloat16" in capsys.readouterr().err
