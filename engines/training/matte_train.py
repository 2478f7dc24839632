"""`retouch train retouch-matte`: the product matting engine, trained on composites of catalogue products.

Each step composites a batch of training products over drawn backgrounds (`matte_data.composite`) and
fits the network's matte to the product's: binary cross-entropy per pixel, a soft IoU over the image
(the acceptance measure, and it keeps small products from drowning in background pixels) and L1 on the
matte's gradients (sharp, well-placed outlines). Validation composites the held-aside products over the
same kinds of backgrounds with a fixed seed and reports IoU at 0.5.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from engines.families.product_matte.network import ProductMatte
from engines.training import matte_data
from engines.training.core import TrainingRun, autocast, catalogue_folder, deadline_of, lr_at, set_lr
from engines.training.data import list_images, split_holdout
from engines.training.model_io import save_weights

MODEL_ID = "retouch-matte"


@dataclass(frozen=True)
class MatteRecipe:
    model_id: str = MODEL_ID
    steps: int = 6000
    batch: int = 12
    lr: float = 2e-3
    side: int = 256
    widths: tuple[int, ...] = (16, 32, 64, 96, 128)
    iou_weight: float = 0.5
    gradient_weight: float = 1.0
    description: str = "product matting: the product's soft alpha matte in front of any background"

    @property
    def arch_params(self) -> dict[str, list[int]]:
        return {"widths": list(self.widths)}


def _batch(products, photos, count: int, side: int, rng: np.random.Generator,
           degrade: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    pairs = [matte_data.composite(products, photos, side, rng, degrade=degrade) for _ in range(count)]
    images = torch.from_numpy(np.stack([p[0] for p in pairs])).permute(0, 3, 1, 2).float() / 255.0
    truths = torch.from_numpy(np.stack([p[1] for p in pairs]))[:, None]
    return images.contiguous(), truths.contiguous()


def soft_iou(prob: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    inter = (prob * truth).sum(dim=(1, 2, 3))
    union = (prob + truth - prob * truth).sum(dim=(1, 2, 3))
    return (inter / union.clamp(min=1.0)).mean()


def gradient_l1(prob: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    dx = (prob.diff(dim=-1) - truth.diff(dim=-1)).abs().mean()
    dy = (prob.diff(dim=-2) - truth.diff(dim=-2)).abs().mean()
    return dx + dy


def iou_at_half(prob: torch.Tensor, truth: torch.Tensor) -> float:
    """Mean over images of the IoU of matte > 0.5 and truth > 0.5."""
    pred, true = prob > 0.5, truth > 0.5
    inter = (pred & true).sum(dim=(1, 2, 3)).float()
    union = (pred | true).sum(dim=(1, 2, 3)).float().clamp(min=1)
    return float((inter / union).mean())


@torch.no_grad()
def validate(model: ProductMatte, images: torch.Tensor, truths: torch.Tensor, bf16: bool) -> dict[str, float]:
    model.eval()
    with autocast("cpu", bf16):
        prob = torch.cat([torch.sigmoid(model(images[i : i + 8]).float()) for i in range(0, len(images), 8)])
    model.train()
    return {"val_iou": iou_at_half(prob, truths), "val_mae": float((prob - truths).abs().mean())}


def train(recipe: MatteRecipe, data: Path, out_dir: Path, *, seed: int, holdout: int, resume: bool, device: str,
          val_every: int, ckpt_every: int, bf16: bool, deadline: float | None = None,
          log=print) -> tuple[ProductMatte, int]:
    files, held = split_holdout(list_images(data), holdout)
    if not files:
        raise FileNotFoundError(f"no training images in {data}")
    products, others = matte_data.load_products(files, log=log)
    if not products:
        raise FileNotFoundError(f"no photo in {data} is a product on white")
    photos = matte_data.background_photos(others)
    val = None
    if held:
        held_products, _ = matte_data.load_products(held, log=log)
        if held_products:
            val = _batch(held_products, photos, 48, recipe.side, np.random.default_rng(4321))
    torch.manual_seed(seed)
    model = ProductMatte(recipe.widths).to(device).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    run = TrainingRun(out_dir / recipe.model_id, seed, {"model": model, "opt": opt}, recipe.steps,
                      val_every=val_every, ckpt_every=ckpt_every, meta={"recipe": json.dumps(asdict(recipe))},
                      log=log, round_to=5)
    start = run.resume(device) if resume else 0
    model.train()

    def one_step(step: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        images, truths = _batch(products, photos, recipe.batch, recipe.side, rng)
        images = images.to(device).contiguous(memory_format=torch.channels_last)
        truths = truths.to(device)
        set_lr(opt, lr_at(step, recipe.steps, recipe.lr, warmup=100))
        with autocast(device, bf16):
            logits = model(images)
        logits = logits.float()
        prob = torch.sigmoid(logits)
        parts = {"bce": F.binary_cross_entropy_with_logits(logits, truths), "iou": soft_iou(prob, truths),
                 "grad": gradient_l1(prob, truths)}
        loss = parts["bce"] + recipe.iou_weight * (1 - parts["iou"]) + recipe.gradient_weight * parts["grad"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        parts["total"] = loss
        return parts

    validator = (lambda: validate(model, val[0], val[1], bf16)) if val is not None else None
    reached = run.loop(start, recipe.steps, one_step, validate=validator,
                       extra=lambda: {"lr": opt.param_groups[0]["lr"]}, deadline=deadline)
    return model.eval(), reached


def metadata(recipe: MatteRecipe, reached: int, seconds: float, seed: int, bf16: bool) -> dict[str, str]:
    return {"arch": "ProductMatte", "arch_params": json.dumps(recipe.arch_params, sort_keys=True),
            "model_id": recipe.model_id, "trained_with": f"retouch train {recipe.model_id} --steps {recipe.steps}",
            "seed": str(seed), "steps": f"{reached} of {recipe.steps}", "recipe": json.dumps(asdict(recipe)),
            "loss": "BCE + 0.5 (1 - soft IoU) + L1 of matte gradients",
            "precision": "bf16 autocast" if bf16 else "fp32", "description": recipe.description,
            "train_seconds": f"{seconds:.0f}"}


def train_from_args(args: argparse.Namespace) -> int:
    """`retouch train retouch-matte` handler."""
    torch.set_num_threads(args.threads)
    overrides = {k: v for k, v in {"steps": args.steps, "batch": args.batch, "lr": args.lr,
                                   "side": args.patch}.items() if v is not None}
    recipe = replace(MatteRecipe(), **overrides)
    data = catalogue_folder(args)
    if data is None:
        return 2
    deadline = deadline_of(args)
    t0 = time.time()
    model, reached = train(recipe, data, args.out_dir, seed=args.seed, holdout=args.holdout, resume=args.resume,
                           device=args.device, val_every=args.val_every, ckpt_every=args.ckpt_every,
                           bf16=args.bf16, deadline=deadline)
    out = args.out_dir / recipe.model_id / f"{recipe.model_id}.safetensors"
    model = model.cpu().to(memory_format=torch.contiguous_format)
    sha = save_weights(model, out, metadata(recipe, reached, time.time() - t0, args.seed, args.bf16))
    print(f"wrote {out} (step {reached} of {recipe.steps}) sha256={sha}")
    return 0
