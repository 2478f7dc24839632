"""`retouch train retouch-sr-x4-perceptual | retouch-sr-x2-perceptual`: PlainSR trained for what people see.

Losses, each with a job (no pretrained VGG/AlexNet can be had here, so no LPIPS or VGG perceptual loss):
- pixel: L1 against the ground truth. Keeps colours and PSNR honest; alone it rewards blur.
- gradient: L1 between Sobel gradients of the output and of the truth. Blur and halos are gradient errors,
  so this pushes on exactly what GMSD and the sharpness ratio measure; it stands in for a perceptual loss
  at the level of edges.
- teacher: L1 against Real-ESRGAN x4plus's output for the same degraded input (`teacher_cache`, computed
  once). The teacher has learned, from far more data and a VGG perceptual loss, what texture to put back
  under real degradations; distilling it transfers that where the truth alone gives an averaged target.
- adversarial: a spectral-normalised U-Net discriminator (`unet_discriminator`) judging each pixel,
  non-saturating logistic loss, switched on after `adv_start` steps of the reconstruction losses (a
  GAN started from noise wastes the CPU's steps). Its weight is small: it sharpens texture where the
  three losses above leave it averaged, but each unit of it costs PSNR.

The generator's weights are averaged (EMA, decay 0.999) and the average is what ships, as Real-ESRGAN
does: it removes the step-to-step flicker adversarial training leaves in the weights.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engines.families.plain_sr.network import PlainSR
from engines.training import teacher_cache
from engines.training.core import TrainingRun, autocast, catalogue_folder, deadline_of, lr_at, set_lr
from engines.training.model_io import save_weights
from engines.training.perceptual import gmsd
from engines.training.quality import psnr
from engines.training.unet_discriminator import UNetDiscriminator


@dataclass(frozen=True)
class PerceptualRecipe:
    model_id: str
    scale: int
    blocks: int
    features: int = 64
    steps: int = 8000
    batch: int = 16
    lr: float = 1e-3
    lr_patch: int = 48  # LR pixels; the HR patch is lr_patch * scale
    pixel_weight: float = 1.0
    gradient_weight: float = 0.5
    teacher_weight: float = 0.5
    adv_weight: float = 0.005
    adv_start: int = 4000
    d_features: int = 16  # 32 made a GAN step 6x a reconstruction step on 2 cores (1.52 vs 0.24 s)
    critic_patch: int = 128  # HR pixels of each output the critic judges (a random window, same for real)
    d_lr: float = 2e-4
    teacher_samples: int = 4096
    description: str = ""

    @property
    def arch_params(self) -> dict[str, int]:
        return {"scale": self.scale, "features": self.features, "blocks": self.blocks}


RECIPES: dict[str, PerceptualRecipe] = {
    r.model_id: r
    for r in [
        PerceptualRecipe("retouch-sr-x4-perceptual", 4, blocks=12,
                         description="x4 super-resolution for listing photos, trained for perceived quality "
                                     "(pixel + gradient + Real-ESRGAN distillation + U-Net GAN)"),
        PerceptualRecipe("retouch-sr-x2-perceptual", 2, blocks=6, teacher_samples=2048,
                         description="x2 super-resolution for listing photos, trained for perceived quality "
                                     "(pixel + gradient + Real-ESRGAN distillation + U-Net GAN)"),
    ]
}

EMA_DECAY = 0.999
VALIDATION_TRIPLES = 48  # the cache's last triples: never trained on, progress is measured on them
_SOBEL = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])


def gradients(img: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) -> (N, 6, H-2, W-2): horizontal and vertical Sobel responses per channel."""
    c = img.shape[1]
    kx = _SOBEL.to(img).view(1, 1, 3, 3).repeat(c, 1, 1, 1)
    return torch.cat([F.conv2d(img, kx, groups=c), F.conv2d(img, kx.transpose(2, 3), groups=c)], dim=1)


def gradient_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.l1_loss(gradients(pred), gradients(target))


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    for e, p in zip(ema.parameters(), model.parameters(), strict=True):
        e.lerp_(p, 1 - decay)


def validation_split(cache: dict[str, torch.Tensor], n: int) -> tuple[dict[str, torch.Tensor], dict]:
    """(train, validation): the last `n` cached triples (at most a quarter of a small cache) are never trained on."""
    n = min(n, max(1, cache["lr"].shape[0] // 4))
    train = {k: v[:-n] for k, v in cache.items()}
    val = {k: v[-n:] for k, v in cache.items()}
    return train, val


@torch.no_grad()
def validate(model: nn.Module, val: dict[str, torch.Tensor], scale: int, device: str) -> dict[str, float]:
    """Mean RGB PSNR and GMSD of `model` and of the teacher against the truth on the validation triples."""
    model.eval()
    lr = val["lr"].float().div(255).to(device)
    out = torch.cat([model(lr[i : i + 8]).clamp(0, 1).cpu() for i in range(0, lr.shape[0], 8)])
    model.train()
    out = (out * 255).round() / 255
    hr, teacher = val["hr"].float() / 255, val["teacher"].float() / 255
    return {
        "val_psnr": float(np.mean([psnr(o, t, crop=scale) for o, t in zip(out, hr, strict=True)])),
        "val_gmsd": float(np.mean([gmsd(o, t, crop=scale) for o, t in zip(out, hr, strict=True)])),
        "teacher_psnr": float(np.mean([psnr(o, t, crop=scale) for o, t in zip(teacher, hr, strict=True)])),
        "teacher_gmsd": float(np.mean([gmsd(o, t, crop=scale) for o, t in zip(teacher, hr, strict=True)])),
    }


def train(recipe: PerceptualRecipe, data: Path, teacher: Path, out_dir: Path, *, seed: int = 0, holdout: int = 25,
          resume: bool = False, device: str = "cpu", bf16: bool = False, val_every: int = 500,
          ckpt_every: int = 250, deadline: float | None = None, log=print) -> tuple[nn.Module, int]:
    """Train `recipe`; returns (the EMA generator, the step reached). Resumable from `out_dir/<id>/last.pt`."""
    from engines.weights_io import sha256_file

    torch.manual_seed(seed)
    spec = teacher_cache.TeacherCacheSpec(str(data), holdout, recipe.scale, recipe.teacher_samples,
                                          sha256_file(teacher))
    folder = teacher_cache.build(spec, teacher, out_dir / "teacher", device=device, log=log)
    cache, val = validation_split(teacher_cache.load(folder), VALIDATION_TRIPLES)
    log(f"teacher cache: {cache['lr'].shape[0]} training triples, {val['lr'].shape[0]} for validation ({folder})")

    model = PlainSR(**recipe.arch_params).to(device, memory_format=torch.channels_last)
    ema = copy.deepcopy(model).eval()
    critic = UNetDiscriminator(features=recipe.d_features).to(device, memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr, betas=(0.9, 0.99))
    opt_d = torch.optim.Adam(critic.parameters(), lr=recipe.d_lr, betas=(0.9, 0.99))
    run = TrainingRun(out_dir / recipe.model_id, seed,
                      {"model": model, "ema": ema, "critic": critic, "opt": opt, "opt_d": opt_d},
                      recipe.steps, log_every=50, val_every=val_every, ckpt_every=ckpt_every,
                      meta={"recipe": json.dumps(asdict(recipe))}, log=log, round_to=5)
    start = run.resume(device) if resume else 0
    model.train()

    def one_step(step: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        lr, hr, target_t = (t.to(device) for t in teacher_cache.sample(cache, recipe.batch, recipe.lr_patch,
                                                                        recipe.scale, rng))
        set_lr(opt, lr_at(step, recipe.steps, recipe.lr, warmup=200))
        adversarial = step >= recipe.adv_start and recipe.adv_weight > 0
        with autocast(device, bf16):
            out = model(lr.contiguous(memory_format=torch.channels_last)).float()
        parts = {"pixel": F.l1_loss(out, hr), "gradient": gradient_loss(out, hr),
                 "teacher": F.l1_loss(out, target_t)}
        loss = (recipe.pixel_weight * parts["pixel"] + recipe.gradient_weight * parts["gradient"]
                + recipe.teacher_weight * parts["teacher"])
        if adversarial:
            side = min(recipe.critic_patch, out.shape[-1]) // 8 * 8
            y, x = (int(v) for v in rng.integers(0, out.shape[-1] - side + 1, 2))
            window = (..., slice(y, y + side), slice(x, x + side))
            for p in critic.parameters():
                p.requires_grad_(False)
            with autocast(device, bf16):
                fake_logits = critic(out[window].contiguous(memory_format=torch.channels_last)).float()
            parts["adv"] = F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
            loss = loss + recipe.adv_weight * parts["adv"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        update_ema(ema, model, EMA_DECAY if step > 200 else 0.0)
        if adversarial:
            for p in critic.parameters():
                p.requires_grad_(True)
            set_lr(opt_d, lr_at(step - recipe.adv_start, recipe.steps - recipe.adv_start, recipe.d_lr, warmup=50))
            with autocast(device, bf16):
                real = critic(hr[window].contiguous(memory_format=torch.channels_last)).float()
                fake = critic(out[window].detach().contiguous(memory_format=torch.channels_last)).float()
            d_loss = (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                      + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            parts["critic"] = d_loss
        parts["total"] = loss
        return parts

    reached = run.loop(start, recipe.steps, one_step, validate=lambda: validate(ema, val, recipe.scale, device),
                       extra=lambda: {"lr": opt.param_groups[0]["lr"]}, deadline=deadline)
    return ema.eval(), reached


def metadata(recipe: PerceptualRecipe, reached: int, seconds: float, bf16: bool, seed: int) -> dict[str, str]:
    # The recipe's own command, not argv: argv holds this machine's paths (data, teacher), which a user lacks.
    command = (f"retouch train {recipe.model_id} --teacher RealESRGAN_x4plus.pth --bf16 --steps {recipe.steps} "
               f"--adv-start {recipe.adv_start}")
    return {"arch": "PlainSR", "arch_params": json.dumps(recipe.arch_params, sort_keys=True),
            "model_id": recipe.model_id, "trained_with": command, "seed": str(seed),
            "steps": f"{reached} of {recipe.steps}", "recipe": json.dumps(asdict(recipe), sort_keys=True),
            "degradation": "listing", "loss": "L1 + Sobel-gradient L1 + Real-ESRGAN x4plus distillation + U-Net GAN",
            "teacher": "Real-ESRGAN x4plus (BSD-3-Clause, Xintao Wang et al.)",
            "precision": "bf16 autocast" if bf16 else "fp32", "description": recipe.description,
            "train_seconds": f"{seconds:.0f}"}


def train_from_args(args: argparse.Namespace) -> int:
    """`retouch train retouch-sr-x{2,4}-perceptual` handler."""
    torch.set_num_threads(args.threads)
    recipe = RECIPES[args.model_id]
    overrides = {k: v for k, v in {
        "steps": args.steps, "batch": args.batch, "lr": args.lr, "features": args.features, "blocks": args.blocks,
        "teacher_weight": args.teacher_weight, "gradient_weight": args.gradient_weight,
        "adv_weight": args.adv_weight, "adv_start": args.adv_start, "teacher_samples": args.teacher_samples,
        "lr_patch": args.patch // recipe.scale if args.patch else None}.items() if v is not None}
    recipe = replace(recipe, **overrides)
    data = catalogue_folder(args)
    if data is None:
        return 2
    if args.teacher is None or not args.teacher.is_file():
        print("error: give --teacher PATH to the Real-ESRGAN x4plus weights (RealESRGAN_x4plus.pth)", file=sys.stderr)
        return 2
    deadline = deadline_of(args)
    t0 = time.time()
    ema, reached = train(recipe, data, args.teacher, args.out_dir, seed=args.seed, holdout=args.holdout,
                         resume=args.resume, device=args.device, bf16=args.bf16, val_every=args.val_every,
                         ckpt_every=args.ckpt_every, deadline=deadline)
    out = args.out_dir / recipe.model_id / f"{recipe.model_id}.safetensors"
    sha = save_weights(ema.cpu(), out, metadata(recipe, reached, time.time() - t0, args.bf16, args.seed))
    print(f"wrote {out} (step {reached} of {recipe.steps}) sha256={sha}")
    return 0


def export_checkpoint(checkpoint: Path, out: Path, note: str = "") -> str:
    """Write the EMA generator of a `last.pt` as shippable safetensors (a run stopped early, or an interim
    point to compare); returns the sha256."""
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    recipe = PerceptualRecipe(**json.loads(saved["recipe"]))
    model = PlainSR(**recipe.arch_params)
    model.load_state_dict(saved["ema"])
    meta = metadata(recipe, int(saved["step"]), float("nan"), True, 0)
    meta["steps"] = f"{saved['step']} of {recipe.steps}" + (f" ({note})" if note else "")
    return save_weights(model.eval(), out, meta)
