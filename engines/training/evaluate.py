"""`retouch eval`: PSNR/SSIM of the shipped compact models beside bicubic and published numbers.

- sr: Set5 / Set14 / BSD100 x2 and x4 with the provided MATLAB-bicubic LR images; Y-channel PSNR/SSIM
  (BT.601, `scale` border pixels cropped), the literature's protocol.
- denoise: CBSD68 / Kodak24 / McMaster with AWGN sigma 15/25/50 (of 255) from a fixed seed, noisy input
  not clipped (as FFDNet/DRUNet test code does); colour (RGB) PSNR/SSIM.
- real: the held-aside catalogue photos (last 25 of products/train by name, never trained on), centre
  768x768 crops, degraded in code (`degrade_real_eval`: x4 or x2 MATLAB-bicubic down, Gaussian blur,
  noise sigma <= 10, JPEG 60-90, seeded per image); Y-channel PSNR/SSIM against bicubic upscaling of the
  same degraded input.

Models run with plain torch on CPU through `weights_io.load_network` (safetensors -> architecture).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from engines.tiling import pad_to_size_rule
from engines.training.data import list_images, load_rgb, resolve, split_holdout
from engines.training.degrade import degrade_real_eval, imresize
from engines.training.quality import psnr, ssim
from engines.weights_io import load_network

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
SR_SETS = ("Set5", "Set14", "BSD100")
DENOISE_SETS = ("CBSD68", "Kodak24", "McMaster")
NOISE_SEED = 0
REAL_SEED = 2024
HOLDOUT = 25
REAL_CROP = 768  # HR pixels, centred, of each held-aside product photo

# Published Y-PSNR (dB), as the FSRCNN, EDSR and SwinIR papers report them: method -> (set, scale) -> value.
PUBLISHED_SR: dict[str, dict[tuple[str, int], float]] = {
    "FSRCNN": {("Set5", 2): 37.00, ("Set14", 2): 32.63, ("BSD100", 2): 31.53,
               ("Set5", 4): 30.72, ("Set14", 4): 27.61, ("BSD100", 4): 26.98},
    "EDSR": {("Set5", 2): 38.11, ("Set14", 2): 33.92, ("BSD100", 2): 32.32,
             ("Set5", 4): 32.46, ("Set14", 4): 28.80, ("BSD100", 4): 27.71},
    "SwinIR": {("Set5", 2): 38.42, ("Set14", 2): 34.46, ("BSD100", 2): 32.53,
               ("Set5", 4): 32.92, ("Set14", 4): 29.09, ("BSD100", 4): 27.92},
}
PUBLISHED_DENOISE: dict[str, dict[tuple[str, int], float]] = {
    "CBM3D": {("CBSD68", 15): 33.52, ("CBSD68", 25): 30.71, ("CBSD68", 50): 27.38},
    "CDnCNN": {("CBSD68", 15): 33.90, ("CBSD68", 25): 31.24, ("CBSD68", 50): 27.95},
    "DRUNet": {("CBSD68", 15): 34.30, ("CBSD68", 25): 31.69, ("CBSD68", 50): 28.51},
}


@dataclass
class Row:
    """One line of the results table; `psnr`/`ssim` are None for published rows without SSIM."""

    task: str
    dataset: str
    setting: str  # "x2", "x4", "sigma25"
    method: str
    psnr: float | None
    ssim: float | None
    images: int
    seconds: float = 0.0


def run_model(model: nn.Module, x: torch.Tensor, multiple: int = 1) -> torch.Tensor:
    """Run a (3, H, W) image through `model`, reflect-padding to `multiple` and cropping back; clamped."""
    h, w = x.shape[-2:]
    inp = pad_to_size_rule(x[None], multiple)
    with torch.no_grad():
        out = model(inp)[0]
    s = out.shape[-1] // inp.shape[-1]
    return out[:, : h * s, : w * s].clamp(0, 1)


def _mean(vals: list[float]) -> float:
    return float(np.mean(vals)) if vals else math.nan


def _measure(pairs: Iterable[tuple[torch.Tensor, torch.Tensor]], fn: Callable[[torch.Tensor], torch.Tensor],
             crop: int, y: bool) -> tuple[float, float, int, float]:
    ps, ss, t = [], [], 0.0
    for inp, tgt in pairs:
        t0 = time.perf_counter()
        out = fn(inp)
        t += time.perf_counter() - t0
        ps.append(psnr(out, tgt, crop=crop, y_channel=y))
        ss.append(ssim(out, tgt, crop=crop, y_channel=y))
    return _mean(ps), _mean(ss), len(ps), t


def _require(path: Path) -> Path:
    if not path.exists():
        raise FileNotFoundError(
            f"evaluation data {path} is missing: pass --data-dir or set RETOUCH_EVAL_DATA to the shared data "
            "folder (it holds sr-bench/, denoise-bench/, products/)")
    return path


def _weights(weights_dir: Path, model_id: str) -> Path | None:
    p = weights_dir / f"{model_id}.safetensors"
    return p if p.exists() else None


def eval_sr(data_dir: Path, weights_dir: Path, sets: Iterable[str], scales: Iterable[int],
            limit: int | None = None) -> list[Row]:
    """Benchmark tables: bicubic and retouch-sr-x{s}-bicubic on the provided LR images."""
    rows: list[Row] = []
    for scale in scales:
        wpath = _weights(weights_dir, f"retouch-sr-x{scale}-bicubic")
        model = load_network(wpath)[0] if wpath else None
        for name in sets:
            root = _require(data_dir / "sr-bench" / name)
            hr_files = list_images(root / f"HR_x{scale}")[:limit]
            pairs = [(load_rgb(root / f"LR_x{scale}" / f.name), load_rgb(resolve(f))) for f in hr_files]
            setting = f"x{scale}"
            p, s, n, t = _measure(pairs, lambda x, sc=scale: imresize(x, sc).clamp(0, 1), scale, True)
            rows.append(Row("sr", name, setting, "bicubic", p, s, n, t))
            if model is not None:
                p, s, n, t = _measure(pairs, lambda x, m=model: run_model(m, x), scale, True)
                rows.append(Row("sr", name, setting, f"retouch-sr-x{scale}-bicubic", p, s, n, t))
            for method, table in PUBLISHED_SR.items():
                if (name, scale) in table:
                    rows.append(Row("sr", name, setting, f"{method} (published)", table[(name, scale)], None, 0))
    return rows


def eval_denoise(data_dir: Path, weights_dir: Path, sets: Iterable[str], sigmas: Iterable[int],
                 limit: int | None = None) -> list[Row]:
    """Colour AWGN denoising: noisy input and retouch-denoise, RGB PSNR/SSIM."""
    rows: list[Row] = []
    wpath = _weights(weights_dir, "retouch-denoise")
    model, multiple = (None, 1)
    if wpath:
        model = load_network(wpath)[0]
        multiple = int(getattr(model, "size_multiple", 1))
    for name in sets:
        files = list_images(_require(data_dir / "denoise-bench" / name))[:limit]
        clean = [load_rgb(f) for f in files]
        for sigma in sigmas:
            pairs = []
            for i, c in enumerate(clean):
                rng = np.random.default_rng([NOISE_SEED, sigma, i])
                noise = torch.from_numpy(rng.standard_normal(tuple(c.shape)).astype(np.float32)) * (sigma / 255)
                pairs.append((c + noise, c))
            setting = f"sigma{sigma}"
            p, s, n, t = _measure(pairs, lambda x: x.clamp(0, 1), 0, False)
            rows.append(Row("denoise", name, setting, "noisy input", p, s, n, t))
            if model is not None:
                p, s, n, t = _measure(pairs, lambda x, m=model: run_model(m, x, multiple), 0, False)
                rows.append(Row("denoise", name, setting, "retouch-denoise", p, s, n, t))
            for method, table in PUBLISHED_DENOISE.items():
                if (name, sigma) in table:
                    rows.append(Row("denoise", name, setting, f"{method} (published)", table[(name, sigma)],
                                    None, 0))
    return rows


def real_pairs(data_dir: Path, scale: int, limit: int | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(degraded LR, HR) for the held-aside product photos, fixed by `REAL_SEED` and file order."""
    _, held = split_holdout(list_images(_require(data_dir / "products" / "train")), HOLDOUT)
    pairs = []
    for i, f in enumerate(held[:limit]):
        hr = load_rgb(f)
        # A centred crop keeps the product (the photos' borders are mostly white studio background)
        # and makes the evaluation affordable on 2 CPU cores.
        h, w = hr.shape[-2:]
        side = min(REAL_CROP, h - h % 4, w - w % 4)
        y, x = (h - side) // 2, (w - side) // 2
        hr = hr[:, y : y + side, x : x + side]
        pairs.append((degrade_real_eval(hr, scale, np.random.default_rng([REAL_SEED, scale, i])), hr))
    return pairs


def eval_real(data_dir: Path, weights_dir: Path, scales: Iterable[int], limit: int | None = None) -> list[Row]:
    """Held-aside products, real-world degradation: bicubic vs retouch-sr-x{s}-real (and -bicubic)."""
    rows: list[Row] = []
    for scale in scales:
        pairs = real_pairs(data_dir, scale, limit)
        setting = f"x{scale}"
        p, s, n, t = _measure(pairs, lambda x, sc=scale: imresize(x, sc).clamp(0, 1), scale, True)
        rows.append(Row("real", "products-heldout", setting, "bicubic", p, s, n, t))
        for kind in ("real", "bicubic"):
            wpath = _weights(weights_dir, f"retouch-sr-x{scale}-{kind}")
            if wpath:
                model = load_network(wpath)[0]
                p, s, n, t = _measure(pairs, lambda x, m=model: run_model(m, x), scale, True)
                rows.append(Row("real", "products-heldout", setting, f"retouch-sr-x{scale}-{kind}", p, s, n, t))
    return rows


def format_table(rows: list[Row]) -> str:
    """Plain-text table, one row per (dataset, setting, method)."""
    head = (f"{'task':<8} {'dataset':<17} {'setting':<8} {'method':<28} {'PSNR dB':>8} {'SSIM':>7} "
            f"{'imgs':>5} {'sec':>6}")
    lines = [head, "-" * len(head)]
    for r in rows:
        p = f"{r.psnr:8.2f}" if r.psnr is not None else f"{'-':>8}"
        s = f"{r.ssim:7.4f}" if r.ssim is not None else f"{'-':>7}"
        lines.append(f"{r.task:<8} {r.dataset:<17} {r.setting:<8} {r.method:<28} {p} {s} {r.images:>5} "
                     f"{r.seconds:6.1f}")
    return "\n".join(lines)


def evaluate(task: str, data_dir: Path, weights_dir: Path = WEIGHTS_DIR, sets: list[str] | None = None,
             scales: Iterable[int] = (2, 4), sigmas: Iterable[int] = (15, 25, 50),
             limit: int | None = None) -> list[Row]:
    """Run the requested evaluations; `sets` filters dataset names across tasks (None: all of each)."""
    _require(data_dir)
    rows: list[Row] = []
    scales, sigmas = list(scales), list(sigmas)
    if task in ("sr", "all"):
        chosen = [s for s in SR_SETS if sets is None or s in sets]
        rows += eval_sr(data_dir, weights_dir, chosen, scales, limit)
    if task in ("denoise", "all"):
        chosen = [s for s in DENOISE_SETS if sets is None or s in sets]
        rows += eval_denoise(data_dir, weights_dir, chosen, sigmas, limit)
    if task in ("real", "all") and (sets is None or "products" in sets):
        rows += eval_real(data_dir, weights_dir, scales, limit)
    return rows


def eval_from_args(args: argparse.Namespace) -> int:
    """`retouch eval` handler: prints the table (or JSON); exit 2 when the data is missing."""
    torch.set_num_threads(args.threads)
    sets = [s.strip() for s in args.sets.split(",")] if args.sets else None
    scales = [int(s) for s in args.scales.split(",")]
    sigmas = [int(s) for s in args.sigmas.split(",")]
    try:
        rows = evaluate(args.task, Path(args.data_dir), Path(args.weights_dir or WEIGHTS_DIR), sets, scales,
                        sigmas, args.limit)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=1))
    else:
        print(format_table(rows))
    return 0
