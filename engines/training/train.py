"""The training loop behind `retouch train`: seeded, resumable, CPU-friendly.

Every batch is drawn from `numpy.random.default_rng([seed, step])`, so step k's data does not depend on
how many times the run was interrupted: resuming from a checkpoint reproduces the uninterrupted run
(same thread count, same machine). Checkpoints hold model + optimizer state and the step.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engines.families import architectures
from engines.training import degrade
from engines.training.core import TrainingRun, autocast, catalogue_folder, lr_at, set_lr
from engines.training.data import (
    CacheSpec,
    build_crop_cache,
    list_images,
    load_rgb,
    natural_photo_files,
    sample_patches,
    split_holdout,
)
from engines.training.model_io import save_weights
from engines.training.quality import psnr
from engines.training.recipes import RECIPES, Recipe


def charbonnier(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Mean sqrt((pred - target)^2 + eps^2): L1 that stays smooth at zero (eps in [0, 1] units)."""
    return torch.sqrt((pred - target) ** 2 + eps * eps).mean()


# "l2" is what PSNR measures (Gaussian denoisers are classically trained with it); "l1"/"charbonnier" give
# sharper SR and are robust to JPEG-like outliers.
LOSSES = {"l1": F.l1_loss, "charbonnier": charbonnier, "l2": F.mse_loss}


def make_pair(recipe: Recipe, hr: torch.Tensor, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Degrade a (N, 3, P, P) clean batch into (input, target) for `recipe`; targets are `hr` itself."""
    if recipe.degradation == "bicubic":
        return degrade.bicubic_lr(hr, recipe.scale), hr
    if recipe.degradation == "real":
        return torch.stack([degrade.degrade_real(x, recipe.scale, rng) for x in hr]), hr
    if recipe.degradation == "denoise":
        return torch.stack([degrade.degrade_denoise(x, rng) for x in hr]), hr
    raise ValueError(f"unknown degradation {recipe.degradation!r}")


def build_model(recipe: Recipe) -> nn.Module:
    return architectures()[recipe.arch](**recipe.arch_params)


def init_from(model: nn.Module, path: Path, log=print) -> None:
    """Copy every tensor of a safetensors file or checkpoint whose name and shape match (e.g. x2 -> x4 body)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        src = load_file(str(path))
    else:
        src = torch.load(path, map_location="cpu", weights_only=True)["model"]
    own = model.state_dict()
    copied = [k for k, v in src.items() if k in own and own[k].shape == v.shape]
    own.update({k: src[k].float() for k in copied})
    model.load_state_dict(own)
    log(f"init: copied {len(copied)}/{len(own)} tensors from {path}")


def validation_set(recipe: Recipe, folder: Path, holdout: int, n: int = 6, size: int = 192,
                   seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Fixed (input, target) pairs from centre crops of held-aside images, for progress PSNR."""
    _, held = split_holdout(list_images(folder), holdout)
    rng = np.random.default_rng([seed, 104729])
    pairs = []
    step = max(recipe.scale, 4)  # multiple of the scale and of the denoiser's size multiple
    for f in held[:n]:
        img = load_rgb(f)
        h, w = img.shape[-2:]
        side = min(size, h - h % step, w - w % step)
        y, x = (h - side) // 2, (w - side) // 2
        hr = img[:, y : y + side, x : x + side]
        inp, tgt = make_pair(recipe, hr[None], rng)
        pairs.append((inp, tgt))
    return pairs


@torch.no_grad()
def validate(model: nn.Module, pairs: list[tuple[torch.Tensor, torch.Tensor]], scale: int) -> float:
    """Mean Y-PSNR (dB) over `pairs`, borders of `scale` pixels cropped."""
    model.eval()
    vals = [psnr(model(inp).clamp(0, 1)[0], tgt[0], crop=scale, y_channel=True) for inp, tgt in pairs]
    model.train()
    return float(np.mean(vals))


def train(recipe: Recipe, data: Path, out_dir: Path, seed: int = 0, holdout: int = 25, resume: bool = False,
          init: Path | None = None, val_every: int = 250, ckpt_every: int = 250, cache_crops: int | None = None,
          device: str = "cpu", log=print, stop_at: int | None = None, bf16: bool = False,
          natural_crops: int = 0) -> nn.Module:
    """Train `recipe` on images in `data` (minus the held-aside tail); returns the trained model.

    `natural_crops` > 0 adds that many crops of each natural photo scikit-image ships
    (`data.NATURAL_PHOTOS`) to the crop cache.

    `bf16` runs forward passes under bfloat16 autocast (weights, optimizer and loss stay float32): on a
    CPU with AVX512-BF16 or AMX, oneDNN's bf16 convolutions make a step about twice as fast.

    `stop_at` ends the run early at that step (checkpointed) with the schedule still planned for
    `recipe.steps`, as an interruption would; a later `resume=True` call continues it.

    Writes `out_dir/<model_id>/last.pt` every `ckpt_every` steps and at the end, and `log.jsonl`.
    """
    torch.manual_seed(seed)
    # channels_last: oneDNN's NHWC convolutions train ~25 % faster on CPU than NCHW ones.
    model = build_model(recipe).to(device, memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr, betas=(0.9, 0.99))
    run = TrainingRun(out_dir / recipe.model_id, seed, {"model": model, "opt": opt}, recipe.steps, log_every=50,
                      val_every=val_every, ckpt_every=ckpt_every, meta={"recipe": recipe.model_id}, log=log)
    start = run.resume(device) if resume else 0
    if start == 0 and init is not None:
        init_from(model, init, log)

    # Cache crops a bit larger than the patch so random sub-crops still vary between epochs.
    crop = recipe.patch + recipe.patch // 2
    per_image = cache_crops or max(4, 9000 // max(len(list_images(data)) - holdout, 1))
    extra = tuple(str(p) for p in natural_photo_files()) if natural_crops > 0 else ()
    spec = CacheSpec(str(data), holdout, crop, per_image, (1.0, 0.7, 0.5), seed, extra, natural_crops)
    t0 = time.time()
    cache = build_crop_cache(spec, out_dir / "cache", log)
    log(f"cache: {cache.shape[0]} crops of {crop}px in {time.time() - t0:.1f}s")
    val = validation_set(recipe, data, holdout, seed=seed)
    loss_fn = LOSSES[recipe.loss]
    model.train()

    def one_step(step: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        hr = sample_patches(cache, recipe.batch, recipe.patch, rng)
        inp, tgt = make_pair(recipe, hr, rng)
        set_lr(opt, lr_at(step, recipe.steps, recipe.lr))
        inp = inp.to(device).contiguous(memory_format=torch.channels_last)
        with autocast(device, bf16):
            pred = model(inp)
        loss = loss_fn(pred.float(), tgt.to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": loss}

    end = recipe.steps if stop_at is None else min(stop_at, recipe.steps)
    run.loop(start, end, one_step, validate=lambda: {"val_psnr_y": validate(model, val, max(recipe.scale, 1))},
             extra=lambda: {"lr": opt.param_groups[0]["lr"]})
    return model.eval()


def train_from_args(args: argparse.Namespace) -> int:
    """`retouch train` handler."""
    loss = args.loss
    torch.set_num_threads(args.threads)
    recipe = RECIPES[args.model_id]
    overrides = {k: v for k, v in {"steps": args.steps, "batch": args.batch, "lr": args.lr,
                                   "patch": args.patch, "loss": loss}.items() if v is not None}
    params = dict(recipe.arch_params)
    if args.features is not None:
        params["features"] = args.features
    if args.blocks is not None:
        params["blocks"] = args.blocks
    recipe = replace(recipe, arch_params=params, **overrides)
    data = catalogue_folder(args)
    if data is None:
        return 2
    natural_crops = args.natural_crops
    t0 = time.time()
    model = train(recipe, data, args.out_dir, seed=args.seed, holdout=args.holdout, resume=args.resume,
                  init=args.init, val_every=args.val_every, ckpt_every=args.ckpt_every,
                  cache_crops=args.cache_crops, device=args.device, bf16=args.bf16,
                  natural_crops=natural_crops)
    elapsed = time.time() - t0
    command = "retouch train " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if len(sys.argv) > 2 else ""
    meta = {"arch": recipe.arch, "arch_params": json.dumps(recipe.arch_params, sort_keys=True),
            "model_id": recipe.model_id, "trained_with": command, "seed": str(args.seed),
            "steps": str(recipe.steps), "batch": str(recipe.batch), "patch": str(recipe.patch),
            "degradation": recipe.degradation, "loss": recipe.loss, "lr": str(recipe.lr),
            "precision": "bf16 autocast" if args.bf16 else "fp32", "natural_crops": str(natural_crops),
            "description": recipe.description, "train_seconds": f"{elapsed:.0f}"}
    out = args.out_dir / recipe.model_id / f"{recipe.model_id}.safetensors"
    sha = save_weights(model.cpu(), out, meta)
    print(f"wrote {out} sha256={sha} after {elapsed:.0f}s")
    if args.ship is not None:
        from engines.training.cards import ship

        ship(out, args.ship, data_dir=args.data_dir, data=data, holdout=args.holdout)
    return 0


def export_checkpoint(ckpt_path: Path, model_id: str, out: Path, trained_with: str, seed: int,
                      note: str = "") -> str:
    """Write the model of a `last.pt` checkpoint as shippable safetensors (e.g. a run stopped early).

    The metadata records the step the checkpoint reached; returns the sha256.
    """
    recipe = RECIPES[model_id]
    state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    model = build_model(recipe)
    model.load_state_dict(state["model"])
    meta = {"arch": recipe.arch, "arch_params": json.dumps(recipe.arch_params, sort_keys=True),
            "model_id": model_id, "trained_with": trained_with, "seed": str(seed),
            "steps": f"{state['step']} (checkpoint{'; ' + note if note else ''})", "batch": str(recipe.batch),
            "patch": str(recipe.patch), "degradation": recipe.degradation, "loss": recipe.loss,
            "description": recipe.description, "train_seconds": "n/a"}
    return save_weights(model.eval(), out, meta)
