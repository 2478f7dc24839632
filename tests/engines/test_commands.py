"""`retouch models list` and `retouch bench` through the argparse wiring the worker CLI uses."""

from __future__ import annotations

import argparse
import json

import pytest

from engines.commands import register


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="retouch")
    register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_models_list_prints_the_registry(capsys: pytest.CaptureFixture[str]) -> None:
    args = _parse(["models", "list"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0]
    for column in ("id", "task", "scale", "params", "backends", "weights"):
        assert column in header
    for model_id in ("retouch-sr-x4-real", "retouch-sr-x2-bicubic", "retouch-denoise"):
        assert model_id in out
    assert "torch,onnxruntime" in out


def test_models_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    args = _parse(["models", "list", "--json"])
    assert args.func(args) == 0
    rows = json.loads(capsys.readouterr().out)
    by_id = {r["id"]: r for r in rows}
    assert by_id["retouch-sr-x4-perceptual"]["default"] is True and by_id["retouch-sr-x4-real"]["default"] is False
    assert by_id["retouch-denoise"]["params"] > 0


def test_bench_prints_a_table(capsys: pytest.CaptureFixture[str], tmp_path) -> None:  # noqa: ANN001
    args = _parse(["bench", "--sizes", "32", "--engines", "retouch-sr-x2-bicubic", "--backends", "torch",
                   "--repeat", "1", "--random-init", "--cache-dir", str(tmp_path)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "in MP/s" in out and "peak MiB" in out
    assert "retouch-sr-x2-bicubic" in out and "32x32" in out


def test_bench_json_and_errors(capsys: pytest.CaptureFixture[str], tmp_path) -> None:  # noqa: ANN001
    args = _parse(["bench", "--sizes", "32", "--engines", "retouch-denoise,nope", "--backends", "torch,tensorrt",
                   "--repeat", "1", "--random-init", "--json", "--cache-dir", str(tmp_path)])
    assert args.func(args) == 0
    report = json.loads(capsys.readouterr().out)
    (result,) = report["results"]
    assert result["engine"] == "retouch-denoise" and result["backend"] == "torch"
    assert result["megapixels_per_s"] > 0 and result["memory_kind"] == "rss_delta"
    # CPU-seconds per output megapixel: the figure a manifest's cost grows by (denoise keeps 32x32 = 0.001024 MP)
    assert result["cpu_seconds"] > 0
    assert result["cpu_seconds_per_output_megapixel"] == pytest.approx(result["cpu_seconds"] / 0.001024)
    reasons = {(e["engine"], e["backend"]): e["error"] for e in report["errors"]}
    assert reasons[("nope", "-")].startswith("unknown_engine")
    assert reasons[("retouch-denoise", "tensorrt")].startswith("backend_unavailable")


def test_bench_gives_inpainting_engines_a_mask(capsys: pytest.CaptureFixture[str], tmp_path) -> None:  # noqa: ANN001
    args = _parse(["bench", "--sizes", "64", "--engines", "retouch-inpaint", "--backends", "torch",
                   "--repeat", "1", "--json", "--cache-dir", str(tmp_path)])
    assert args.func(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["errors"] == [] and report["results"][0]["megapixels_per_s"] > 0


def test_bench_reports_each_precision_against_the_machines_own_peak(capsys: pytest.CaptureFixture[str],
                                                                     tmp_path) -> None:  # noqa: ANN001
    args = _parse(["bench", "--sizes", "48", "--engines", "retouch-sr-x4-bicubic", "--backends", "torch",
                   "--precisions", "fp32,bf16", "--repeat", "1", "--json", "--cache-dir", str(tmp_path)])
    assert args.func(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["peaks_gflops"]) == {"fp32", "bf16"} and all(v > 0 for v in report["peaks_gflops"].values())
    by_precision = {r["precision"]: r for r in report["results"]}
    assert set(by_precision) == {"fp32", "bf16"}
    for r in by_precision.values():
        # Output pixels are the input's times scale squared; the FLOP rate is a share of that precision's peak.
        assert r["output_megapixels_per_s"] == pytest.approx(16 * r["megapixels_per_s"])
        assert r["gflops"] > 0 and 0 < r["percent_of_peak"] == pytest.approx(
            100 * r["gflops"] / report["peaks_gflops"][r["precision"]])


def test_counted_flops_match_the_networks_own_arithmetic() -> None:
    from engines.families.plain_sr.network import PlainSR, macs_per_output_pixel
    from engines.roofline import flops_per_input_pixel

    counted = flops_per_input_pixel(PlainSR(4, features=16, blocks=2), 3, side=32)
    assert counted == pytest.approx(2 * 16 * macs_per_output_pixel(4, 16, 2))
