"""`retouch eval perceptual`: super-resolution on held-aside catalogue photos, judged as people see it.

Two fixed degradations of the held-aside product photos (the last 25 of products/train by name, never
trained on; centre 768 px crops, as `retouch eval real`):
- catalogue: MATLAB-bicubic shrink by the scale, a slight Gaussian blur (sigma 0.5 LR pixels), noise
  sigma 3 (of 255), JPEG quality 75 with 4:2:0 chroma subsampling: a marketplace upload;
- harsh: the same with blur 1.5 LR pixels, noise 8, JPEG 60.
Columns: RGB PSNR, GMSD (lower is better) and gradient sharpness relative to the truth
(`engines.training.perceptual`), seconds. Rows: bicubic, each shipped SR model of the scale, and the
operator's peer model when `--peer` names its weights (Real-ESRGAN x4plus: for x2 its x4 output is
shrunk by MATLAB bicubic x0.5). `--save-dir` writes side-by-side crops (each method, then the truth).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from engines.training.degrade import add_gaussian_noise, blur, gaussian_kernel, imresize, jpeg, quantize
from engines.training.evaluate import WEIGHTS_DIR, real_pairs, run_model
from engines.training.perceptual import gmsd, sharpness_ratio
from engines.training.quality import psnr

SEED = 2026


@dataclass(frozen=True)
class Degradation:
    name: str
    blur_sigma: float  # LR pixels, after the shrink
    noise_sigma: float  # of 255
    jpeg_quality: int  # 4:2:0, Pillow's default


DEGRADATIONS = (Degradation("catalogue", 0.5, 3.0, 75), Degradation("harsh", 1.5, 8.0, 60))


def degrade(hr: torch.Tensor, scale: int, d: Degradation, rng: np.random.Generator) -> torch.Tensor:
    h, w = hr.shape[-2:]
    x = imresize(hr, size=(h // scale, w // scale))
    x = blur(x, gaussian_kernel(2 * math.ceil(3 * d.blur_sigma) + 1, d.blur_sigma, d.blur_sigma, 0.0))
    x = add_gaussian_noise(x, d.noise_sigma / 255, rng)
    return quantize(jpeg(x, d.jpeg_quality))


@dataclass
class PerceptualRow:
    degradation: str
    setting: str
    method: str
    psnr: float
    gmsd: float
    sharpness: float
    images: int
    seconds: float


Method = Callable[[torch.Tensor], torch.Tensor]


def peer_method(path: Path, scale: int) -> Method:
    """An operator's model (e.g. Real-ESRGAN x4plus through spandrel), whole image on CPU; x2 from its x4."""
    from engines.precision import cpu_has_native_bf16
    from engines.session import load_model

    loaded = load_model(str(path))
    net, native = loaded.module.eval(), loaded.spec.scale
    bf16 = bool(cpu_has_native_bf16())  # 5x faster with AMX; emulated bf16 elsewhere would be slower

    def run(lr: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = net(lr[None].contiguous(memory_format=torch.channels_last)).float()[0].clamp(0, 1)
        if native != scale:
            h, w = lr.shape[-2:]
            out = imresize(out, size=(h * scale, w * scale)).clamp(0, 1)
        return quantize(out)

    return run


def methods_for(scale: int, weights_dir: Path, peer: Path | None) -> dict[str, Method]:
    from engines.registry import builtin_registry
    from engines.weights_io import load_network

    methods: dict[str, Method] = {"bicubic": lambda lr: imresize(lr, scale).clamp(0, 1)}
    for spec in builtin_registry():
        path = weights_dir / f"{spec.id}.safetensors"
        if spec.task == "super_resolution" and spec.scale == scale and path.exists():
            model = load_network(path)[0]
            methods[spec.id] = lambda lr, m=model: run_model(m, lr)
    if peer is not None:
        methods[f"{peer.stem} (peer)"] = peer_method(peer, scale)
    return methods


def side_by_side(outputs: list[torch.Tensor], size: int = 192) -> np.ndarray:
    """Centre crops of the same region of each image, left to right, 4 px white gutters; HxWx3 uint8."""
    h, w = outputs[0].shape[-2:]
    y, x = (h - size) // 2, (w - size) // 2
    gutter = torch.ones(3, size, 4)
    parts = []
    for out in outputs:
        parts += [out[:, y : y + size, x : x + size], gutter]
    return (torch.cat(parts[:-1], dim=2).clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


def evaluate(data_dir: Path, weights_dir: Path, scales: list[int], peer: Path | None = None, limit: int | None = None,
             save_dir: Path | None = None, log: Callable[[str], None] | None = None) -> list[PerceptualRow]:
    from PIL import Image

    rows: list[PerceptualRow] = []
    for scale in scales:
        truths = [hr for _, hr in real_pairs(data_dir, scale, limit)]
        methods = methods_for(scale, weights_dir, peer)
        for d in DEGRADATIONS:
            inputs = [degrade(hr, scale, d, np.random.default_rng([SEED, scale, i])) for i, hr in enumerate(truths)]
            outputs: dict[str, list[torch.Tensor]] = {}
            for name, method in methods.items():
                started = time.perf_counter()
                outputs[name] = [quantize(method(lr)) for lr in inputs]
                seconds = time.perf_counter() - started
                scores = [(psnr(o, t, crop=scale), gmsd(o, t, crop=scale), sharpness_ratio(o, t, crop=scale))
                          for o, t in zip(outputs[name], truths, strict=True)]
                p, g, s = (float(np.mean(column)) for column in zip(*scores, strict=True))
                rows.append(PerceptualRow(d.name, f"x{scale}", name, p, g, s, len(scores), seconds))
                if log:
                    log(f"{d.name} x{scale} {name}: PSNR {p:.2f} GMSD {g:.4f} sharpness {s:.2f} ({seconds:.0f} s)")
            if save_dir is not None:
                folder = save_dir / f"{d.name}-x{scale}"
                folder.mkdir(parents=True, exist_ok=True)
                (folder / "columns.txt").write_text(" | ".join([*outputs, "truth"]) + "\n")
                for i, truth in enumerate(truths):
                    row = side_by_side([outs[i] for outs in outputs.values()] + [truth])
                    Image.fromarray(row).save(folder / f"{i:02d}.png")
    return rows


def real_lr_side_by_sides(folder: Path, scale: int, weights_dir: Path, peer: Path | None, save_dir: Path,
                          count: int = 6, lr_side: int = 72) -> Path:
    """Side-by-sides for real low-quality photos that have no truth (e.g. `real-lr/opencart`): the centre
    `lr_side` LR pixels of the first `count` photos, each method's output left to right, written to
    `save_dir/real-lr-x<scale>/`. Looked at, not scored: there is nothing to score against."""
    from PIL import Image

    from engines.training.data import list_images, load_rgb

    out_dir = save_dir / f"real-lr-x{scale}"
    out_dir.mkdir(parents=True, exist_ok=True)
    methods = methods_for(scale, weights_dir, peer)
    (out_dir / "columns.txt").write_text(" | ".join(methods) + "\n")
    for i, f in enumerate(list_images(folder)[:count]):
        img = load_rgb(f)
        h, w = img.shape[-2:]
        side = min(lr_side, h, w)
        y, x = (h - side) // 2, (w - side) // 2
        lr = img[:, y : y + side, x : x + side]
        outputs = [quantize(method(lr)) for method in methods.values()]
        Image.fromarray(side_by_side(outputs, size=side * scale)).save(out_dir / f"{i:02d}-{f.stem}.png")
    return out_dir


def format_table(rows: list[PerceptualRow]) -> str:
    head = (f"{'degradation':<11} {'scale':<5} {'method':<30} {'PSNR':>6} {'GMSD':>7} {'sharp':>6} {'imgs':>4} "
            f"{'sec':>6}")
    lines = [head, "-" * len(head)]
    lines += [f"{r.degradation:<11} {r.setting:<5} {r.method:<30} {r.psnr:6.2f} {r.gmsd:7.4f} {r.sharpness:6.2f} "
              f"{r.images:>4} {r.seconds:6.1f}" for r in rows]
    return "\n".join(lines)


def eval_perceptual_from_args(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    scales = [int(s) for s in args.scales.split(",")]
    try:
        rows = evaluate(Path(args.data_dir), Path(args.weights_dir or WEIGHTS_DIR), scales, args.peer, args.limit,
                        args.save_dir, None if args.json else (lambda s: print(s, file=sys.stderr)))
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps([asdict(r) for r in rows], indent=1) if args.json else format_table(rows))
    if args.real_lr is not None and args.save_dir is not None:
        for scale in scales:
            folder = real_lr_side_by_sides(args.real_lr, scale, Path(args.weights_dir or WEIGHTS_DIR), args.peer,
                                           args.save_dir)
            print(f"side-by-sides of {args.real_lr.name}: {folder}", file=sys.stderr)
    return 0
