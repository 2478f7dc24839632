"""Shipping a perceptual super-resolution model: copy, pin, and write its card from what was measured.

The card's facts come from the file (metadata, parameters, compute per output pixel) and from timings taken
here in both CPU precisions; the quality table is the `retouch eval perceptual` output the shipper ran, and
the notes are what they saw in the side-by-sides. Nothing in a card is typed in by hand but those two.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from engines.families.plain_sr.network import macs_per_output_pixel
from engines.pins import pin
from engines.precision import cpu_has_native_bf16
from engines.training.cards import cpu_name, cpu_speed
from engines.training.model_io import read_metadata, sha256_file
from engines.weights_io import load_network


def write_card(weights_dir: Path, model_id: str, table: str, notes: str) -> Path:
    wpath = weights_dir / f"{model_id}.safetensors"
    meta = read_metadata(wpath)
    model, _ = load_network(wpath)
    params = json.loads(meta["arch_params"])
    recipe = json.loads(meta.get("recipe", "{}"))
    scale = int(params["scale"])
    gmac = macs_per_output_pixel(scale, params["features"], params["blocks"]) / 1e3
    fp32 = cpu_speed(model.eval(), scale, size=192)
    bf16 = cpu_speed(model, scale, size=192, bf16=True) if cpu_has_native_bf16() else None
    bf16_text = f"{bf16:.2f} output MP/s in bf16 autocast (AMX)" if bf16 else "bf16 not measured (no native bf16)"
    n_params = sum(p.numel() for p in model.parameters())
    shape = (f"3x3 head, {params['blocks']} residual pairs of 3x3 convs, {params['features']} channels, 3x3 tail, "
             "PixelShuffle, nearest skip")
    steps = (f"{meta.get('steps')}, batch {recipe.get('batch')}, LR patch {recipe.get('lr_patch')} px, "
             f"seed {meta.get('seed')}")
    training = (f"{meta.get('precision')} on a 2-core CPU ({cpu_name()}), torch {torch.__version__}; "
                f"{meta.get('train_seconds')} s in the last run (see notes for the total)")
    weights = json.dumps({k: recipe.get(k) for k in ("pixel_weight", "gradient_weight", "teacher_weight",
                                                      "adv_weight", "adv_start")})
    text = f"""# {model_id}

{meta.get('description', '')}

| field | value |
| --- | --- |
| architecture | `PlainSR` (`engines/families/plain_sr/network.py`): {shape} |
| arch_params | `{meta['arch_params']}` |
| parameters | {n_params:,} |
| compute | {gmac:.0f} GMAC per output megapixel (Real-ESRGAN x4plus: ~1,120) |
| receptive field | {model.receptive_field} input pixels |
| file | `{model_id}.safetensors`, fp32, {wpath.stat().st_size / 1e6:.2f} MB, sha256 `{sha256_file(wpath)}` |
| tensor contract | NCHW RGB float in [0, 1] in; un-clamped float out, {scale}x the input size |
| steps | {steps} |
| training | {training} |
| CPU speed (torch, 2 threads, 192x192 input) | {fp32:.2f} output MP/s in fp32; {bf16_text} |

## Data and licence
Trained on crops of `products/train` (605 catalogue photos from magento/magento2-sample-data
`pub/media/catalog/product`, OSL-3.0 / AFL-3.0) minus the last 25 files by sorted name, which are held aside
for evaluation and never trained on; crops taken after shrinking by 1.0, 0.75 or 0.5, flat crops skipped.
Evaluation sets (Set5, Set14, BSD100, CBSD68, Kodak24, McMaster) are never trained on. The weights are
Apache-2.0 like the project.

Teacher: **Real-ESRGAN x4plus** (Xintao Wang, Liangbin Xie, Chao Dong, Ying Shan, "Real-ESRGAN: Training
Real-World Blind Super-Resolution with Pure Synthetic Data", ICCVW 2021; BSD-3-Clause,
https://github.com/xinntao/Real-ESRGAN). Its outputs for the degraded training crops were computed once in
bf16 on the CPU's AMX units and cached (`engines/training/teacher_cache.py`); for x2 its x4 output is
shrunk by MATLAB bicubic x0.5.

## Degradation
`degrade_listing` (`engines/training/degrade.py`): sometimes a slight HR blur; a downscale with a random
kernel (MATLAB bicubic, bilinear, area, bicubic); a slight LR blur (sigma 0.2-1.8 LR px, 70 %); noise (85 %:
Gaussian colour or grey sigma 1-12, or mild Poisson); JPEG quality 45-95 (95 %) with 4:2:0 chroma
subsampling 85 % of the time, recompressed 20 % of the time; 8-bit rounding.

## Losses (no pretrained VGG/AlexNet can be had here, so no LPIPS or VGG perceptual loss)
{meta.get('loss')}; weights `{weights}`.
What stands in for a perceptual loss: the teacher (trained with one), the Sobel-gradient loss (edges and
texture energy, what GMSD and sharpness measure) and the U-Net discriminator (spectral norm, per pixel).
Adam (0.9, 0.99), 200 warm-up steps then cosine decay; EMA of the weights (0.999) is what ships.

Reproduce (from the repository root, with RETOUCH_EVAL_DATA set to the folder that holds `products/train`):

```
{meta.get('trained_with')}
```

## Measured results (`retouch eval perceptual`, held-aside catalogue photos)
```
{table}
```

{notes}
"""
    path = weights_dir / f"{model_id}.md"
    path.write_text(text)
    return path


def ship(trained: Path, weights_dir: Path, table: str, notes: str) -> str:
    """Copy `trained` into `weights_dir`, write its card, pin its sha256; returns the sha256."""
    model_id = read_metadata(trained)["model_id"]
    dest = weights_dir / f"{model_id}.safetensors"
    if trained.resolve() != dest.resolve():
        shutil.copyfile(trained, dest)
    sha = sha256_file(dest)
    write_card(weights_dir, model_id, table, notes)
    pin(model_id, sha, weights_dir / "sha256.json")
    return sha


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="ship a trained PlainSR file: copy, pin, write its card")
    parser.add_argument("trained", type=Path, help="runs/<model id>/<model id>.safetensors")
    parser.add_argument("--table", type=Path, required=True, help="`retouch eval perceptual` output, saved")
    parser.add_argument("--notes", type=Path, required=True, help="markdown: what the side-by-sides showed")
    parser.add_argument("--weights-dir", type=Path, default=Path(__file__).resolve().parents[1] / "weights")
    args = parser.parse_args()
    sha = ship(args.trained, args.weights_dir, args.table.read_text().strip(), args.notes.read_text().strip())
    print(f"shipped {args.trained.name} sha256={sha}")


if __name__ == "__main__":
    main()
