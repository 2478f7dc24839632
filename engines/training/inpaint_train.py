"""Training loop for the inpainting engine (`retouch train retouch-inpaint`): seeded, resumable, CPU-friendly.

Data: the catalogue photos of `products/train` minus the held-aside tail (`data.split_holdout`, the same
rule as the SR/denoise trainer). By default (`canvas_side` = 192, the shipped model) every sample is a
whole canvas at the engine's working side with a canvas-scale hole (`engines.training.inpaint_canvas`):
the framing the engine fills and the evaluation measures.

`canvas_side=0` (`--canvas-side 0`) is the session-1 crop mode, kept for comparison: photos shrunk so
their longest side is one of `WORK_SIDES`, cut into a fixed number of crops kept in memory (flat white
crops at a low rate), batches drawn with `data.sample_patches`, masks from `masks.random_mask` (strokes /
boxes / border bands). It learned nothing beyond the push-pull prior (see the model card).

Losses: L1 (or, `hole_loss="l2"`, squared error: what masked PSNR measures) on the hole (weight 1) and on
the known pixels (`VALID_WEIGHT`; the prediction there is used by the feathered composite), then from
`adv_start` on a spectral-norm PatchGAN hinge loss on the composite plus discriminator feature matching
against the real image.

Every batch and mask is drawn from `numpy.random.default_rng([seed, step])`, and checkpoints hold both
networks, both optimizers (and the spectral-norm power-iteration vectors), so a resumed run reproduces
the uninterrupted one on the same machine and thread count.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from engines.families.compact_inpainter.network import CompactInpainter
from engines.training import perceptual
from engines.training.core import TrainingRun, autocast, catalogue_folder, deadline_of, lr_at, set_lr
from engines.training.data import (
    cache_path,
    list_images,
    resolve,
    sample_patches,
    split_holdout,
    stack_crops,
    training_files,
)
from engines.training.inpaint_canvas import build_canvas_cache, canvas_validation_set, sample_canvas_batch
from engines.training.inpaint_holes import hole_validation_set, load_hole_photos, sample_hole_batch
from engines.training.inpaint_strips import build_strip_cache, sample_strip_batch
from engines.training.masks import box_mask, outpaint_mask, random_mask
from engines.training.model_io import save_weights
from engines.training.patch_discriminator import PatchDiscriminator
from engines.weights_io import load_network

MODEL_ID = "retouch-inpaint"
ARCH = "CompactInpainter"
WORK_SIDES = (320, 384, 448)
VALID_WEIGHT = 0.5


@dataclass(frozen=True)
class InpaintRecipe:
    """Schedule and architecture of `retouch-inpaint`; command-line flags override single fields.

    The defaults are the first run of the shipped model's chain; its card lists the fine-tunes' flags
    (`--init`, `--lr`, `--strips`...) and the measured results.
    canvas_side: N > 0 trains on whole canvases whose longest side is N (`inpaint_canvas`); 0 on crops.
    patch, box_area (crop mode only): crop side (multiple of 8) and box sizes as a fraction of the crop
    (larger than the 5-20 % of a whole canvas that evaluation uses: a crop is ~40 % of a canvas side).
    adv_start: first step with the adversarial + feature-matching losses (reconstruction only before).
    hole_loss: "l1" or "l2" (squared error: what masked PSNR measures), over the hole and known pixels.
    strips (canvas mode): share of batches that are border strips at listing resolution with a band along
    the border (`inpaint_strips`): what the fill's strip path for thin side bands runs on.
    adv_weight: hinge-loss weight; squared-error gradients are ~4x smaller than L1's, hence 0.003 with l2.
    hole_windows: share of batches that are windows cut around a hole over the product at listing size
    (`inpaint_holes`: what the texture engine's window path runs on); the rest follow `canvas_side`.
    texture_weight: weight of `texture_loss` (local gradient energy against the truth's), 0 = off.
    """

    steps: int = 5000
    batch: int = 8
    lr: float = 1e-3
    d_lr: float = 4e-4
    patch: int = 128
    features: int = 16
    bottleneck: int = 96
    blocks: int = 4
    d_features: int = 32
    adv_start: int = 4000
    adv_weight: float = 0.003
    fm_weight: float = 0.05
    box_area: tuple[float, float] = (0.05, 0.35)
    canvas_side: int = 192
    hole_loss: str = "l2"
    strips: float = 0.0
    hole_windows: float = 0.0
    texture_weight: float = 0.0

    @property
    def arch_params(self) -> dict[str, int]:
        return {"features": self.features, "bottleneck": self.bottleneck, "blocks": self.blocks}


# The texture engine: the shipped generator fine-tuned on hole windows (3 batches in 4) and whole canvases
# (so outpainting keeps what it learned), for texture: L1 instead of squared error, the critic from the
# start at a weight that shows, and the local gradient-energy loss. Not shipped: 750 steps of this recipe
# (and of --texture-weight 4 --adv-weight 0.05) left the validation windows' texture at 0.44-0.48 of the
# truth's (0.43 at the start), with grid-aligned streaks at weight 4; 937 k parameters and a CPU-hour do
# not draw fabric. Kept so a larger generator or a GPU burst starts from a measured recipe.
TEXTURE_MODEL_ID = "retouch-inpaint-texture"
TEXTURE_RECIPE = InpaintRecipe(steps=4000, lr=4e-4, adv_start=100, adv_weight=0.02, fm_weight=0.1,
                               hole_loss="l1", hole_windows=0.75, texture_weight=1.0)
RECIPES = {MODEL_ID: InpaintRecipe(), TEXTURE_MODEL_ID: TEXTURE_RECIPE}


# -- data ---------------------------------------------------------------------------------------------


def shrink_to(path: Path, side: int) -> np.ndarray:
    """Decode an image as RGB uint8 with its longest side resized to `side` (antialiased bicubic)."""
    with Image.open(resolve(path)) as im:
        scale = side / max(im.size)
        size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
        im.draft("RGB", size)  # JPEG: decode at a reduced DCT scale when that is still >= size
        im = im.convert("RGB")
        return np.asarray(im.resize(size, Image.BICUBIC))


def build_scene_cache(folder: Path, holdout: int, crop: int, per_image: int, seed: int,
                      cache_dir: Path | None = None, log=print) -> torch.Tensor:
    """(N, 3, crop, crop) uint8 crops of training photos shrunk to a working resolution (see module doc).

    Reproducible from `seed`; saved as `cache_dir/inpaint-crops-<key>.pt` and reused when present.
    """
    path = cache_path(cache_dir, "inpaint-crops", [str(folder), holdout, crop, per_image, seed, list(WORK_SIDES)])
    if path is not None and path.exists():
        return torch.load(path)
    files = training_files(folder, holdout)
    rng = np.random.default_rng([seed, 31337])
    crops: list[np.ndarray] = []
    for i, f in enumerate(files):
        arr = shrink_to(f, int(rng.choice(WORK_SIDES)))
        h, w = arr.shape[:2]
        if h < crop or w < crop:
            continue
        got = 0
        for _ in range(per_image * 8):
            y, x = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
            c = arr[y : y + crop, x : x + crop]
            flat = float((c.astype(np.float32).mean(axis=2) > 245).mean()) > 0.9
            if flat and rng.random() > 0.15:
                continue
            crops.append(c.copy())
            got += 1
            if got == per_image:
                break
        if (i + 1) % 100 == 0:
            log(f"cache: {i + 1}/{len(files)} images, {len(crops)} crops")
    return stack_crops(crops, path, f"no {crop}px crops found in {folder}")


def sample_batch(cache: torch.Tensor, recipe: InpaintRecipe,
                 rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (N, 3, P, P) in [0, 1], masks (N, 1, P, P) in {0, 1}) for one step, all from `rng`."""
    images = sample_patches(cache, recipe.batch, recipe.patch, rng)
    masks = np.stack([random_mask(recipe.patch, recipe.patch, rng, recipe.box_area) for _ in range(recipe.batch)])
    return images, torch.from_numpy(masks)[:, None]


def validation_set(folder: Path, holdout: int, n: int = 6, size: int = 160,
                   seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Fixed (image, mask) pairs: centre crops of held-aside photos at working resolution, one box mask
    (5-20 %) and one outpainting mask each."""
    _, held = split_holdout(list_images(folder), holdout)
    rng = np.random.default_rng([seed, 104729])
    pairs = []
    for f in held[:n]:
        arr = shrink_to(f, 384)
        h, w = arr.shape[:2]
        side = min(size, h // 8 * 8, w // 8 * 8)
        y, x = (h - side) // 2, (w - side) // 2
        img = torch.from_numpy(arr[y : y + side, x : x + side].copy()).permute(2, 0, 1).float()[None] / 255
        for m in (box_mask(side, side, rng), outpaint_mask(side, side, rng, (0.05, 0.25))):
            pairs.append((img, torch.from_numpy(m)[None, None]))
    return pairs


def masked_squared_error(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> tuple[float, float]:
    """(sum of squared errors in 8-bit levels over the masked pixels, RGB, rounded; masked value count)."""
    a = (pred.clamp(0, 1) * 255).round().double()
    b = (target.clamp(0, 1) * 255).round().double()
    m = mask.expand_as(a).double()
    return float((((a - b) ** 2) * m).sum()), float(m.sum())


def _psnr(sse: float, count: float) -> float:
    mse = sse / max(count, 1.0)
    return float("inf") if mse == 0 else 10 * float(np.log10(255.0**2 / mse))


@torch.no_grad()
def _composites(model: nn.Module, pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> list[torch.Tensor]:
    """Each pair's image with its hole filled by `model` (in eval mode; train mode is restored)."""
    model.eval()
    out = [img * (1 - m) + model(img, m).clamp(0, 1) * m for img, m in pairs]
    model.train()
    return out


def validate(model: nn.Module, pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """Masked-region PSNR of the composite over `pairs`, squared error pooled over all their hole pixels
    (as `retouch eval inpaint` pools it: a plain band filled exactly does not make the mean infinite)."""
    sse, count = 0.0, 0.0
    for comp, (img, m) in zip(_composites(model, pairs), pairs, strict=True):
        e, n = masked_squared_error(comp, img, m)
        sse, count = sse + e, count + n
    return _psnr(sse, count)


def validate_texture(model: nn.Module, pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """Mean over `pairs` of the hole's texture relative to the truth's (`perceptual.masked_sharpness_ratio`)."""
    return float(np.mean([perceptual.masked_sharpness_ratio(comp[0], img[0], m[0, 0])
                          for comp, (img, m) in zip(_composites(model, pairs), pairs, strict=True)]))


# -- losses -------------------------------------------------------------------------------------------


def reconstruction_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                        kind: str = "l1") -> torch.Tensor:
    """Mean error over hole pixels + VALID_WEIGHT x mean error over known pixels; error = |d| ("l1") or d^2
    ("l2"). Means are over all hole pixels of the batch, so a large hole weighs as its pixel count, as in
    the pooled masked PSNR of `retouch eval inpaint`."""
    diff = pred - target
    err = (diff.abs() if kind == "l1" else diff.square()).mean(dim=1, keepdim=True)
    hole = (err * mask).sum() / mask.sum().clamp(min=1)
    valid = (err * (1 - mask)).sum() / (1 - mask).sum().clamp(min=1)
    return hole + VALID_WEIGHT * valid


def gradient_energy(image: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) Sobel gradient magnitude of the luma of (N, 3, H, W) RGB in [0, 1] (zero-padded): the
    operator behind `retouch eval`'s texture column, on [0, 1] values and differentiable."""
    y = (image * image.new_tensor([0.299, 0.587, 0.114])[None, :, None, None]).sum(dim=1, keepdim=True)
    return perceptual.gradient_magnitude(y, perceptual.SOBEL_X, padding=1, eps=1e-6)


def texture_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, cell: int = 8) -> torch.Tensor:
    """L1 between the local gradient energy of `pred` and `target` (mean over `cell` x `cell` cells), over
    the cells that touch the hole. It asks for as much texture as the truth has in each part of the hole,
    not for the same pixels: a fill whose weave is shifted by a thread still scores well, a blur does not.
    Stands in for a perceptual (VGG) loss, which cannot be had here (no pretrained networks)."""
    ep = F.avg_pool2d(gradient_energy(pred), cell)
    et = F.avg_pool2d(gradient_energy(target), cell)
    m = F.max_pool2d(mask, cell)
    return ((ep - et).abs() * m).sum() / m.sum().clamp(min=1)


# -- loop ---------------------------------------------------------------------------------------------


def train(recipe: InpaintRecipe, data: Path, out_dir: Path, seed: int = 0, holdout: int = 25, resume: bool = False,
          val_every: int = 250, ckpt_every: int = 250, cache_crops: int | None = None, device: str = "cpu",
          log=print, stop_at: int | None = None, val_images: int = 6, bf16: bool = False,
          init: Path | None = None, model_id: str = MODEL_ID, deadline: float | None = None) -> nn.Module:
    """Train CompactInpainter on `data` (minus the held-aside tail); returns the generator (eval mode).

    `init`: a generator `.safetensors` (e.g. the shipped weights) to start from instead of random weights;
    the critic and both optimizers start fresh. Ignored when resuming.

    Writes `out_dir/retouch-inpaint/last.pt` every `ckpt_every` steps and at the end, and `log.jsonl`.
    `stop_at` ends early (checkpointed) with the schedule still planned for `recipe.steps`.
    `bf16`: the generator's forward pass runs under bfloat16 autocast (about 2x faster on CPUs with
    AVX512-BF16); the critic, whose spectral-norm power iteration wants float32, and all losses stay float32.
    """
    torch.manual_seed(seed)
    g = CompactInpainter(**recipe.arch_params).to(device)
    d = PatchDiscriminator(features=recipe.d_features).to(device)
    opt_g = torch.optim.Adam(g.parameters(), lr=recipe.lr, betas=(0.9, 0.99))
    opt_d = torch.optim.Adam(d.parameters(), lr=recipe.d_lr, betas=(0.5, 0.99))
    run = TrainingRun(out_dir / model_id, seed, {"g": g, "d": d, "opt_g": opt_g, "opt_d": opt_d}, recipe.steps,
                      log_every=25, val_every=val_every, ckpt_every=ckpt_every, round_to=5,
                      meta={"recipe": json.dumps(asdict(recipe))}, log=log)
    start = run.resume(device) if resume else 0
    if start == 0 and init is not None:
        start_from, _ = load_generator(Path(init))
        g.load_state_dict(start_from.state_dict())
        log(f"init: generator from {init}")

    t0 = time.time()
    if recipe.canvas_side:
        canvases = build_canvas_cache(data, holdout, recipe.canvas_side, out_dir / "cache", log)
        log(f"cache: {len(canvases['square'])} canvases at {recipe.canvas_side}px in {time.time() - t0:.1f}s")
        val = canvas_validation_set(data, holdout, recipe.canvas_side, n=val_images, seed=seed)
        if recipe.strips:
            border = build_strip_cache(data, holdout, out_dir / "cache", log)
            log(f"cache: {border.shape[0]} border strips in {time.time() - t0:.1f}s")
        if recipe.hole_windows:
            holes = load_hole_photos(data, holdout, log)
            hole_val = hole_validation_set(data, holdout, n=val_images + 2, seed=seed)
            log(f"cache: {len(holes.photos)} photos at listing size in {time.time() - t0:.1f}s")
    else:
        crop = recipe.patch + recipe.patch // 4
        per_image = cache_crops or max(2, 3000 // max(len(list_images(data)) - holdout, 1))
        cache = build_scene_cache(data, holdout, crop, per_image, seed, out_dir / "cache", log)
        log(f"cache: {cache.shape[0]} crops of {crop}px in {time.time() - t0:.1f}s")
        val = validation_set(data, holdout, n=val_images, seed=seed)
    g.train()
    d.train()

    def one_step(step: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        # Only draw for `strips` and `hole_windows` when in use, so earlier recipes keep their random stream.
        if recipe.hole_windows and rng.random() < recipe.hole_windows:
            img, mask = sample_hole_batch(holes, recipe.batch, rng)
        elif recipe.canvas_side and recipe.strips and rng.random() < recipe.strips:
            img, mask = sample_strip_batch(border, recipe.batch, rng)
        elif recipe.canvas_side:
            img, mask = sample_canvas_batch(canvases, recipe.batch, rng)
        else:
            img, mask = sample_batch(cache, recipe, rng)
        img, mask = img.to(device), mask.to(device)
        set_lr(opt_g, lr_at(step, recipe.steps, recipe.lr))
        with autocast(device, bf16):
            pred = g(img, mask)
        pred = pred.float()
        comp = img * (1 - mask) + pred * mask
        parts = {"rec": reconstruction_loss(pred, img, mask, recipe.hole_loss)}
        rec = parts["rec"]
        if recipe.texture_weight:
            parts["tex"] = texture_loss(comp, img, mask)
            rec = rec + recipe.texture_weight * parts["tex"]
        if step >= recipe.adv_start:
            # Critic step on the detached composite, then the generator's hinge + feature matching.
            set_lr(opt_d, lr_at(step - recipe.adv_start, recipe.steps - recipe.adv_start, recipe.d_lr))
            d_real = d(img, mask)
            d_fake = d(comp.detach(), mask)
            loss_d = F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            fake_logits, fake_feats = d(comp, mask, features=True)
            with torch.no_grad():
                _, real_feats = d(img, mask, features=True)
            parts["adv"] = -fake_logits.mean()
            fm = sum(F.l1_loss(a, b) for a, b in zip(fake_feats, real_feats, strict=True))
            parts["fm"] = fm / len(fake_feats)
            parts["d"] = loss_d.detach()
            loss = rec + recipe.adv_weight * parts["adv"] + recipe.fm_weight * parts["fm"]
        else:
            loss = rec
        opt_g.zero_grad(set_to_none=True)
        loss.backward()
        opt_g.step()
        return parts

    end = recipe.steps if stop_at is None else min(stop_at, recipe.steps)
    def validation() -> dict[str, float]:
        scores = {"val_masked_psnr": validate(g, val)}
        if recipe.hole_windows:
            scores["val_hole_psnr"] = validate(g, hole_val)
            scores["val_hole_texture"] = validate_texture(g, hole_val)
        return scores

    run.loop(start, end, one_step, validate=validation,
             extra=lambda: {"lr": round(opt_g.param_groups[0]["lr"], 7)}, deadline=deadline)
    return g.eval()


def save_generator(g: nn.Module, path: Path, metadata: dict[str, str]) -> str:
    """Write the generator as safetensors (fp32) with string metadata; returns the file's sha256."""
    return save_weights(g, path, metadata)


def load_generator(path: Path) -> tuple[CompactInpainter, dict[str, str]]:
    """Rebuild CompactInpainter from a safetensors file written by `save_generator` (eval mode, CPU)."""
    model, meta = load_network(path)
    if meta.get("arch") != ARCH:
        raise ValueError(f"{path}: metadata arch {meta.get('arch')!r} is not {ARCH}")
    return model, meta


def recipe_from_args(args: argparse.Namespace) -> InpaintRecipe:
    """The model's recipe (`RECIPES`) with the flags `retouch train` shares with the other trainers applied."""
    base = RECIPES[getattr(args, "model_id", MODEL_ID)]
    fields = {"steps": args.steps, "batch": args.batch, "lr": args.lr, "features": args.features,
              "blocks": args.blocks, "adv_start": args.adv_start, "patch": args.patch,
              "canvas_side": args.canvas_side, "hole_loss": args.loss, "strips": args.strips,
              "adv_weight": args.adv_weight, "hole_windows": getattr(args, "hole_windows", None),
              "texture_weight": getattr(args, "texture_weight", None)}
    recipe = replace(base, **{k: v for k, v in fields.items() if v is not None})
    if args.steps is not None and args.adv_start is None and base.adv_start == InpaintRecipe().adv_start:
        # The from-scratch recipe turns its critic on for the last fifth of however many steps it runs.
        recipe = replace(recipe, adv_start=recipe.steps * 4 // 5)
    return recipe


def train_inpaint_from_args(args: argparse.Namespace) -> int:
    """`retouch train retouch-inpaint` handler; accepts the SR/denoise trainer's argument names."""
    torch.set_num_threads(int(args.threads))
    recipe = recipe_from_args(args)
    if recipe.canvas_side % 8 or 0 < recipe.canvas_side < 80:  # the 4:5 view is then >= 64 px wide
        print(f"error: --canvas-side {recipe.canvas_side} must be a multiple of 8 and at least 80", file=sys.stderr)
        return 2
    if not 0 <= recipe.strips <= 1 or (recipe.strips and not recipe.canvas_side):
        print(f"error: --strips {recipe.strips} must be a share in [0, 1], with whole canvases (--canvas-side > 0)",
              file=sys.stderr)
        return 2
    data = catalogue_folder(args)
    if data is None:
        return 2
    out_dir = Path(args.out_dir)
    seed = int(args.seed)
    t0 = time.time()
    model_id = getattr(args, "model_id", MODEL_ID)
    g = train(recipe, Path(data), out_dir, seed=seed, holdout=int(args.holdout),
              resume=bool(args.resume), val_every=int(args.val_every),
              ckpt_every=int(args.ckpt_every), cache_crops=args.cache_crops,
              device=args.device, bf16=bool(args.bf16),
              init=args.init, model_id=model_id, deadline=deadline_of(args))
    elapsed = time.time() - t0
    command = "retouch train " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if len(sys.argv) > 2 else ""
    meta = {"arch": ARCH, "arch_params": json.dumps(recipe.arch_params, sort_keys=True), "model_id": model_id,
            "task": "inpaint",
            "trained_with": command, "seed": str(seed), "recipe": json.dumps(asdict(recipe), sort_keys=True),
            "holdout": str(args.holdout), "train_seconds": f"{elapsed:.0f}",
            "precision": "bf16 autocast (generator)" if args.bf16 else "fp32",
            "data": "magento/magento2-sample-data pub/media/catalog/product (OSL-3.0 / AFL-3.0)"}
    out = out_dir / model_id / f"{model_id}.safetensors"
    sha = save_generator(g, out, meta)
    print(f"wrote {out} sha256={sha} after {elapsed:.0f}s")
    ship = args.ship
    if ship is not None:
        Path(ship).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out, Path(ship) / out.name)
        print(f"copied to {Path(ship) / out.name}; pin its sha256 in engines/weights/sha256.json (engines.pins.pin)")
    return 0
