"""Shipping a trained model: copy its safetensors into engines/weights, measure it, write its model card,
and update the sha256 literal in the registry's spec module.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import torch
from torch import nn

from engines.pins import pin
from engines.training.evaluate import Row, eval_denoise, eval_real, eval_sr, format_table
from engines.training.model_io import read_metadata, sha256_file
from engines.weights_io import load_network

LOSS_NAMES = {"l1": "L1", "charbonnier": "Charbonnier", "l2": "squared error (L2)"}
DEGRADATION_TEXT = {
    "bicubic": "MATLAB-compatible bicubic downscaling (antialiased, uint8 rounding after each axis, as the "
               "benchmarks' LR images were made); nothing else.",
    "real": "per patch, in random order: Gaussian blur (isotropic or anisotropic, sigma 0.2-3 HR px, 80 %), "
            "downscaling with a random kernel (MATLAB bicubic / bilinear / area / bicubic, sometimes via a "
            "random intermediate size), noise (80 %: Gaussian colour or grey sigma 1-25, or Poisson); then "
            "JPEG quality 30-95 (90 %); 8-bit rounding.",
    "denoise": "70 %: additive white Gaussian noise sigma 0-55 (of 255; 15 % grey noise; half left unclipped); "
               "15 %: JPEG quality 30-95 alone; 15 %: Gaussian sigma 0-25 then JPEG 30-95.",
}


def cpu_speed(model: nn.Module, scale: int, size: int = 256, threads: int = 2, repeats: int = 3,
              bf16: bool = False) -> float:
    """Output megapixels per second on CPU for a (1, 3, size, size) input (best of `repeats`), run as the torch
    backend runs it: channels-last, inference mode, and with `bf16` under bfloat16 autocast."""
    torch.set_num_threads(threads)
    model = model.to(memory_format=torch.channels_last)
    x = torch.rand(1, 3, size, size).contiguous(memory_format=torch.channels_last)
    best = float("inf")
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        model(x)
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(x)
            best = min(best, time.perf_counter() - t0)
    return (size * scale) ** 2 / 1e6 / best


def measure(model_id: str, weights_dir: Path, data_dir: Path, limit: int | None = None,
            other_sigmas: tuple[int, ...] = (15, 25, 50)) -> list[Row]:
    """The measurements a card reports for `model_id` (the evaluation sets of its task).

    For the denoiser, CBSD68 is measured at sigma 15/25/50 and Kodak24/McMaster at `other_sigmas`
    (fewer sigmas keep shipping affordable on a loaded 2-core machine).
    """
    meta = read_metadata(weights_dir / f"{model_id}.safetensors")
    scale = json.loads(meta["arch_params"]).get("scale", 1)
    rows: list[Row] = []
    if model_id.endswith("-bicubic"):
        rows = eval_sr(data_dir, weights_dir, ["Set5", "Set14", "BSD100"], [scale], limit)
        rows = [r for r in rows if r.method in ("bicubic", model_id)]
    elif model_id.endswith("-real"):
        rows = [r for r in eval_real(data_dir, weights_dir, [scale], limit)
                if r.method in ("bicubic", model_id)]
    elif model_id == "retouch-denoise":
        rows = eval_denoise(data_dir, weights_dir, ["CBSD68"], [15, 25, 50], limit)
        rows += eval_denoise(data_dir, weights_dir, ["Kodak24", "McMaster"], list(other_sigmas), limit)
        rows = [r for r in rows if "published" not in r.method]
    return rows


def cpu_name(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU model the card's timings were taken on (e.g. "Intel(R) Xeon(R) Processor"), or "CPU"."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "CPU"


def natural_photos_text(crops_per_photo: int) -> str:
    """The card's sentence on `--natural-crops` (empty when none were used)."""
    if crops_per_photo <= 0:
        return ""
    from engines.training.data import NATURAL_PHOTOS

    return (f" Also {crops_per_photo} textured crops of each of the {len(NATURAL_PHOTOS)} images scikit-image "
            f"ships (`--natural-crops`; {', '.join(NATURAL_PHOTOS)}; terms in `engines/training/data.py`), "
            "spread over the shrink factors: fur, foliage, brick and gravel texture the catalogue lacks.")


def write_card(weights_dir: Path, model_id: str, rows: list[Row], notes: str = "") -> Path:
    """Write `<weights_dir>/<model_id>.md` from the file's metadata and `rows`."""
    wpath = weights_dir / f"{model_id}.safetensors"
    meta = read_metadata(wpath)
    model, _ = load_network(wpath)
    params = sum(p.numel() for p in model.parameters())
    arch_params = json.loads(meta["arch_params"])
    scale = int(arch_params.get("scale", 1))
    speed1 = cpu_speed(model, scale, threads=1)
    speed2 = cpu_speed(model, scale, threads=2)
    rf = getattr(model, "receptive_field", None)
    from engines.families import family_for_architecture

    arch_file = f"engines/families/{family_for_architecture(meta['arch']).name}/network.py"
    table = format_table(rows) if rows else "(not measured: evaluation data absent)"
    natural = natural_photos_text(int(meta.get("natural_crops", "0")))
    text = f"""# {model_id}

{meta.get('description', '')}

| field | value |
| --- | --- |
| architecture | `{meta['arch']}` (`{arch_file}`) |
| arch_params | `{meta['arch_params']}` |
| parameters | {params:,} |
| receptive field | {rf} input pixels |
| file | `{model_id}.safetensors`, fp32, {wpath.stat().st_size / 1e6:.2f} MB, sha256 `{sha256_file(wpath)}` |
| tensor contract | NCHW RGB float in [0, 1] in; un-clamped float out, {scale}x the input size |
| seed | {meta.get('seed')} |
| steps x batch x patch | {meta.get('steps')} x {meta.get('batch')} x {meta.get('patch')}px (HR) |
| training time | {meta.get('train_seconds')} s wall on a 2-core CPU ({cpu_name()}), torch {torch.__version__} |
| training precision | {meta.get('precision', 'fp32')} (inference: fp32) |
| CPU speed | {speed1:.2f} output MP/s on 1 thread, {speed2:.2f} MP/s on 2 threads (256x256 input, fp32 torch) |

## Data and licence
Trained on crops of `products/train` (605 catalogue photos from magento/magento2-sample-data
`pub/media/catalog/product`, OSL-3.0 / AFL-3.0) minus the last 25 files by sorted name, which are held aside
for evaluation and never trained on. Images are shrunk by a random factor from {{1.0, 0.7, 0.5}} before
cropping; flat crops (grey std < 6/255 or > 60 % near-white background) are skipped.{natural}
Evaluation sets (Set5, Set14, BSD100, CBSD68, Kodak24, McMaster) are never trained on.

## Degradation
{DEGRADATION_TEXT.get(meta.get('degradation', ''), meta.get('degradation', ''))}

## Recipe
Adam (betas 0.9, 0.99), 50 warm-up steps then cosine decay to 1 % of the peak learning rate, loss
{LOSS_NAMES.get(meta.get('loss', ''), meta.get('loss'))}, random flips and 90-degree rotations;
batch k of step n is drawn from `numpy.random.default_rng([seed, n])` (resumable, deterministic).

Reproduce (from the repository root, with RETOUCH_EVAL_DATA set to the data folder that holds `products/train`):

```
{meta.get('trained_with')}
```

## Measured results
```
{table}
```
{notes}
"""
    path = weights_dir / f"{model_id}.md"
    path.write_text(text)
    return path


def ship(trained: Path, weights_dir: Path, data_dir: Path | None = None, data: Path | None = None,
         holdout: int = 25, limit: int | None = None, notes: str = "",
         other_sigmas: tuple[int, ...] = (15, 25, 50)) -> str:
    """Copy `trained` (a .safetensors) to `weights_dir/<model_id>.safetensors`, measure it, write the card,
    pin its sha256 in `weights_dir/sha256.json`; returns the sha256."""
    meta = read_metadata(trained)
    model_id = meta["model_id"]
    weights_dir.mkdir(parents=True, exist_ok=True)
    dest = weights_dir / f"{model_id}.safetensors"
    if trained.resolve() != dest.resolve():
        shutil.copyfile(trained, dest)
    sha = sha256_file(dest)
    rows: list[Row] = []
    if data_dir is not None and Path(data_dir).exists():
        rows = measure(model_id, weights_dir, Path(data_dir), limit, other_sigmas)
    write_card(weights_dir, model_id, rows, notes)
    pin(model_id, sha, weights_dir / "sha256.json")
    print(f"shipped {dest} sha256={sha} (pinned in {weights_dir / 'sha256.json'})")
    return sha
