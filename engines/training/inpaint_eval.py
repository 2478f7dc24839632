"""`retouch eval inpaint`: the inpainting engine beside classical baselines on held-aside product photos.

Protocol (deterministic; every random choice comes from `numpy.random.default_rng([SEED, image index])`):
- Images: the held-aside tail of products/train (last 25 by sorted name, never trained on; the same
  split as the SR/denoise evaluation), each shrunk (antialiased) so its longest side is `CANVAS` px: a
  1024 px listing canvas.
- box: one box covering 5-20 % of the canvas. Methods: retouch-inpaint (at its working resolution, then
  composited at full resolution with a feathered mask), OpenCV Telea and Navier-Stokes (cv2.inpaint,
  radius 5, at full resolution).
- box-product: one box covering 3-8 % of the canvas placed over the product (the first of 40 draws with
  at least 80 % of its pixels on the product, else the draw with the most; photos not on white use their
  busy pixels), drawn from its own random stream so the other tests keep their draws. What sellers cover:
  a sticker or tag on the product, where a blurred fill shows. Methods: Telea, Navier-Stokes,
  retouch-inpaint and retouch-inpaint-texture (on windows around the hole, `crop_side`).
- outpaint-4:5: the photo (about 4:5) centre-cropped to 3:4 and outpainted back to its original width
  (two side bands, ~3 % of the width each). Baselines: edge-replicate padding, Telea.
- outpaint-1:1: a square centre crop of the photo, cropped to 3:4 and outpainted back to square (two
  side bands of 12.5 % each).
  Most catalogue photos sit on a flat white background, where edge replication is exact; outpainting
  cases whose truth band is not flat are reported again as "<test> textured".
- Every method is given the canvas with the hole blanked to black, never the ground truth under it.
- Metrics: PSNR over the masked pixels (RGB, 8-bit; squared error pooled over all images, so a plain
  white band that a method reproduces exactly does not make the mean infinite); SSIM (RGB, 11x11
  Gaussian) of each hole's bounding box grown by 8 px, area-weighted; seam: mean
  |grad(result) - grad(truth)| (8-bit levels, forward differences in x and y,
  averaged over RGB) over pixels within 2 px of the mask boundary, on both sides; lower is better, 0 when
  the result's transitions match the truth's. It also counts texture the fill lacks just inside the hole;
  step: the same difference only for the pixel pairs that straddle the boundary (one known, one filled):
  the discontinuity a seam is;
  texture: the hole's mean Sobel gradient magnitude (luma) over the truth's
  (`perceptual.masked_sharpness_ratio`), per image, then averaged over the images whose truth there is
  not flat (mean gradient of at least FLAT_GRADIENT): 1 is the truth's texture, a blur is far below;
  gmsd: GMSD (Xue et al. 2014) of each hole's bounding box grown by 8 px, area-weighted; lower is better.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from engines.families.compact_inpainter import INPAINT, INPAINT_TEXTURE
from engines.masked_fill import DEFAULT_FEATHER, fill, resize, window_around
from engines.spec import ModelSpec
from engines.tiling import pad_to_size_rule
from engines.training.data import list_images, load_rgb, split_holdout
from engines.training.extras import opencv
from engines.training.masks import band_mask, box_mask
from engines.training.perceptual import gmsd, masked_sharpness_ratio
from engines.training.quality import ssim

MODEL_ID = INPAINT.id
TEXTURE_ID = INPAINT_TEXTURE.id
WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
HOLDOUT = 25
SEED = 5
CANVAS = 1024
PRODUCT_BOX_AREA = (0.03, 0.08)
# A hole whose truth has a mean Sobel gradient below this (8-bit luma) is flat: no texture ratio for it.
FLAT_GRADIENT = 2.0
SEAM_BAND = 2
BBOX_GROW = 8

Method = Callable[[np.ndarray, np.ndarray], np.ndarray]
# Side-by-sides show input | Telea | old | new | truth for the product boxes.
HIDDEN_IN_STRIPS = {"box-product": ("navier-stokes",)}


@dataclass
class Row:
    """Mean metrics of one method on one test over `n` images."""

    test: str
    method: str
    n: int
    psnr: float
    ssim: float
    seam: float
    step: float
    seconds: float
    texture: float = math.nan
    gmsd: float = math.nan


# -- methods ------------------------------------------------------------------------------------------


def torch_process(model: torch.nn.Module, multiple: int = 8,
                  min_size: int = 64) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """process(image, mask) for a raw CompactInpainter: pad (reflect, replicate where the image is too small
    to reflect) to the size rule, run, crop, composite."""

    def run(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        h, w = mask.shape
        x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]
        m = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None, None]
        x, m = pad_to_size_rule(x, multiple, min_size), pad_to_size_rule(m, multiple, min_size)
        with torch.inference_mode():
            y = model(x, m)[..., :h, :w].clamp(0, 1)[0].permute(1, 2, 0).numpy()
        hard = (mask > 0.5)[..., None]
        return np.where(hard, y, image).astype(np.float32)

    return run


def model_method(model: torch.nn.Module, work_side: int, feather: int, strips: bool = True,
                 crop_side: int | None = None) -> Method:
    process = torch_process(model)
    return lambda image, mask: fill(process, image, mask, work_side=work_side, feather=feather, strips=strips,
                                    crop_side=crop_side)


def cv2_method(flag_name: str, radius: int = 5) -> Method:
    cv2 = opencv()
    flag = getattr(cv2, flag_name)

    def run(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        img8 = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
        out = cv2.inpaint(img8, (mask > 0.5).astype(np.uint8), radius, flag)
        return out.astype(np.float32) / 255

    return run


def edge_replicate(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Outpainting baseline: the known rectangle's edge pixels repeated outward (np.pad mode="edge")."""
    rows = np.where((mask < 0.5).any(axis=1))[0]
    cols = np.where((mask < 0.5).any(axis=0))[0]
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    h, w = mask.shape
    return np.pad(image[y0:y1, x0:x1], ((y0, h - y1), (x0, w - x1), (0, 0)), mode="edge")


# -- metrics ------------------------------------------------------------------------------------------


def _u8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0, 1) * 255).round()


def masked_mse(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    """Mean squared error (8-bit levels^2) over the masked pixels of HxWx3 [0, 1] images."""
    m = mask > 0.5
    return float(((_u8(pred)[m] - _u8(truth)[m]) ** 2).mean())


def psnr_from_mse(mse: float) -> float:
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def _hole_boxes(mask: np.ndarray, grow: int = BBOX_GROW, least: int = 11) -> list[tuple[slice, slice, float]]:
    """Per connected hole: its bounding box grown by `grow` px (at least `least` px a side) and its area."""
    cv2 = opencv()
    n, _, stats, _ = cv2.connectedComponentsWithStats((mask > 0.5).astype(np.uint8), connectivity=8)
    h, w = mask.shape
    boxes = []
    for x, y, bw, bh, area in stats[1:n]:
        y0, y1 = max(0, y - grow), min(h, y + bh + grow)
        x0, x1 = max(0, x - grow), min(w, x + bw + grow)
        if y1 - y0 < least:
            y0, y1 = max(0, min(y0, h - least)), min(h, max(y1, least))
        if x1 - x0 < least:
            x0, x1 = max(0, min(x0, w - least)), min(w, max(x1, least))
        boxes.append((slice(y0, y1), slice(x0, x1), float(area)))
    return boxes


def _per_hole(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray,
              measure: Callable[[torch.Tensor, torch.Tensor], float], empty: float) -> float:
    """`measure` of each hole's grown bounding box, averaged weighted by hole area."""
    total, acc = 0.0, 0.0
    for rows, cols, area in _hole_boxes(mask):
        a = torch.from_numpy(np.ascontiguousarray(pred[rows, cols])).permute(2, 0, 1)
        b = torch.from_numpy(np.ascontiguousarray(truth[rows, cols])).permute(2, 0, 1)
        acc += area * measure(a, b)
        total += area
    return acc / total if total else empty


def region_ssim(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    """SSIM over the mask: per connected hole, the SSIM of its bounding box grown by BBOX_GROW px (at least
    11 px a side for the window), averaged weighted by hole area."""
    return _per_hole(pred, truth, mask, ssim, 1.0)


def region_gmsd(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    """GMSD over the mask, per hole's grown bounding box as `region_ssim` (0 = the truth's gradients)."""
    return _per_hole(pred, truth, mask, gmsd, 0.0)


def hole_texture(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    """The hole's gradient energy relative to the truth's (1 = as textured as the truth)."""
    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)

    return masked_sharpness_ratio(t(pred), t(truth), torch.from_numpy(mask), min_truth=FLAT_GRADIENT)


def seam_error(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray, band: int = SEAM_BAND) -> float:
    """Mean |grad(pred) - grad(truth)| in 8-bit levels over pixels within `band` px of the mask boundary.

    Forward differences in x and y, averaged over RGB and the two directions; a gradient is counted
    when either of its two pixels is in the band. Image-border bands are excluded (no boundary there).
    """
    m = torch.from_numpy((mask > 0.5).astype(np.float32))[None, None]
    dil = F.max_pool2d(m, 2 * band + 1, stride=1, padding=band)
    ero = 1 - F.max_pool2d(1 - m, 2 * band + 1, stride=1, padding=band)
    ring = ((dil - ero) > 0.5)[0, 0].numpy()
    a, b = _u8(pred), _u8(truth)
    errs = []
    for axis in (0, 1):
        da, db = np.diff(a, axis=axis), np.diff(b, axis=axis)
        sel = ring[:-1, :] | ring[1:, :] if axis == 0 else ring[:, :-1] | ring[:, 1:]
        if sel.any():
            errs.append(np.abs(da - db).mean(axis=2)[sel])
    return float(np.concatenate(errs).mean()) if errs else 0.0


def boundary_step_error(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    """Mean |(pred[b] - pred[a]) - (truth[b] - truth[a])| in 8-bit levels, averaged over RGB, over the pixel
    pairs (a, b) adjacent in x or y with one in the hole and one known: the jump across the boundary that
    the truth does not have."""
    hole = mask > 0.5
    a, b = _u8(pred), _u8(truth)
    errs = []
    for axis in (0, 1):
        crossing = np.diff(hole, axis=axis)
        if crossing.any():
            errs.append(np.abs(np.diff(a, axis=axis) - np.diff(b, axis=axis)).mean(axis=2)[crossing])
    return float(np.concatenate(errs).mean()) if errs else 0.0


# -- tests --------------------------------------------------------------------------------------------


def canvas(path: Path, side: int = CANVAS) -> np.ndarray:
    """A held-aside photo as HxWx3 float32, shrunk so its longest side is `side` (never enlarged)."""
    img = load_rgb(path).permute(1, 2, 0).numpy()
    h, w = img.shape[:2]
    s = min(1.0, side / max(h, w))
    return resize(img, round(h * s), round(w * s)) if s < 1 else img


def cases(img: np.ndarray, rng: np.random.Generator,
          rng_product: np.random.Generator) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{test: (ground truth, mask)} for one canvas; `rng_product` draws box-product's box alone."""
    h, w = img.shape[:2]
    out = {"box": (img, box_mask(h, w, rng))}
    # 4:5 -> crop to 3:4 -> outpaint back: bands on the sides of the original canvas.
    keep = min(w, round(h * 3 / 4))
    left = (w - keep) // 2
    if w - keep >= 2:
        out["outpaint-4:5"] = (img, band_mask(h, w, left=left, right=w - keep - left))
    # square centre crop -> 3:4 -> back to square.
    side = min(h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    sq = img[y0 : y0 + side, x0 : x0 + side]
    keep = round(side * 3 / 4)
    left = (side - keep) // 2
    out["outpaint-1:1"] = (sq, band_mask(side, side, left=left, right=side - keep - left))
    out["box-product"] = (img, product_box_mask(img, rng_product))
    return out


def product_box_mask(img: np.ndarray, rng: np.random.Generator, area: tuple[float, float] = PRODUCT_BOX_AREA,
                     tries: int = 40, on_product: float = 0.8) -> np.ndarray:
    """A box of `area` of the canvas over the product (module doc, box-product)."""
    from engines.training.inpaint_holes import product_region

    product = product_region((np.clip(img, 0, 1) * 255).round().astype(np.uint8))
    best, best_share = None, -1.0
    for _ in range(tries):
        mask = box_mask(*img.shape[:2], rng, area)
        share = float(product[mask > 0.5].mean())
        if share >= on_product:
            return mask
        if share > best_share:
            best, best_share = mask, share
    return best


def is_textured(truth: np.ndarray, mask: np.ndarray, min_std: float = 2.0) -> bool:
    """True when the ground truth under the mask is not one flat colour (std over 2 levels of 255): a
    plain studio background makes outpainting trivial for edge replication (PSNR infinite)."""
    return float(_u8(truth)[mask > 0.5].std(axis=0).max()) > min_std


def evaluate(methods: dict[str, dict[str, Method]], files: list[Path], save_dir: Path | None = None,
             log: Callable[[str], None] | None = None, side: int = CANVAS) -> list[Row]:
    """Run `methods[test][name]` on every file's cases; returns one row per (test, method).

    PSNR is computed from the squared error pooled over all masked pixels of all images (finite unless
    every image is exact); SSIM, seam, step and seconds are per-image means. Outpainting cases whose truth
    is not flat are also reported as "<test> textured".
    """
    acc: dict[tuple[str, str], list[tuple[float, ...]]] = {}
    for i, f in enumerate(files):
        img = canvas(f, side)
        rng = np.random.default_rng([SEED, i])
        for test, (truth, mask) in cases(img, rng, np.random.default_rng([SEED, i, 1])).items():
            tests = [test]
            if test.startswith("outpaint") and is_textured(truth, mask):
                tests.append(f"{test} textured")
            # Every method gets the hole blanked: none can see the ground truth it is scored against.
            given = (truth * (1 - mask[..., None])).astype(np.float32)
            shown = [given]
            for name, method in methods.get(test, {}).items():
                t0 = time.perf_counter()
                out = method(given, mask)
                dt = time.perf_counter() - t0
                vals = (masked_mse(out, truth, mask), float((mask > 0.5).sum()), region_ssim(out, truth, mask),
                        seam_error(out, truth, mask), boundary_step_error(out, truth, mask), dt,
                        hole_texture(out, truth, mask), region_gmsd(out, truth, mask))
                for t in tests:
                    acc.setdefault((t, name), []).append(vals)
                if name not in HIDDEN_IN_STRIPS.get(test, ()):
                    shown.append(out)
            if save_dir is not None:
                save_dir.mkdir(parents=True, exist_ok=True)
                from PIL import Image

                if test == "box-product":  # the hole and its surroundings, at 100 %
                    rows, cols = np.nonzero(mask > 0.5)
                    y0, y1, x0, x1 = window_around((rows.min(), rows.max() + 1, cols.min(), cols.max() + 1),
                                                   mask.shape)
                    shown = [a[y0:y1, x0:x1] for a in shown]
                    truth = truth[y0:y1, x0:x1]
                strip = np.concatenate([*shown, truth], axis=1)
                Image.fromarray(_u8(strip).astype(np.uint8)).save(save_dir / f"{test.replace(':', 'x')}-{f.stem}.png")
        if log is not None:
            log(f"eval: {i + 1}/{len(files)} {f.name}")
    rows = []
    for (test, name), vals in sorted(acc.items(), key=lambda kv: kv[0][0]):
        v = np.asarray(vals, dtype=np.float64)
        pooled = float((v[:, 0] * v[:, 1]).sum() / v[:, 1].sum())
        with warnings.catch_warnings():  # a column of NaN only (texture on flat bands) stays NaN, quietly
            warnings.simplefilter("ignore", RuntimeWarning)
            means = np.nanmean(v[:, 2:], axis=0)
        rows.append(Row(test, name, len(vals), psnr_from_mse(pooled), *(float(x) for x in means)))
    return rows


Candidate = tuple[str, torch.nn.Module, ModelSpec]
"""(method name, generator, the spec whose fill paths it runs with)."""


def build_methods(models: list[Candidate], feather: int, work_side: int | None = None) -> dict[str, dict[str, Method]]:
    """Baselines and each model, per test; `work_side` overrides every model's whole-canvas side."""
    telea, ns = cv2_method("INPAINT_TELEA"), cv2_method("INPAINT_NS")
    box: dict[str, Method] = {"telea": telea, "navier-stokes": ns}
    product: dict[str, Method] = {"telea": telea, "navier-stokes": ns}
    outp: dict[str, Method] = {"edge-replicate": edge_replicate, "telea": telea}
    for name, model, spec in models:
        side = work_side or spec.work_side
        for d in (box, product, outp):
            d[name] = model_method(model, side, feather, strips=spec.strips, crop_side=spec.crop_side)
        if name == MODEL_ID:
            # The same model with thin side bands filled on the whole canvas too (no strip path).
            outp[f"{MODEL_ID} (whole canvas)"] = model_method(model, side, feather, strips=False)
    return {"box": box, "box-product": product, "outpaint-4:5": outp, "outpaint-1:1": dict(outp)}


def format_table(rows: list[Row]) -> str:
    """A fixed-width table plus, per test and model, the margin over the best baseline."""
    lines = [f"{'test':<22} {'method':<34} {'n':>3} {'PSNR dB':>8} {'SSIM':>7} {'seam':>6} {'step':>6} "
             f"{'texture':>7} {'GMSD':>7} {'s/img':>6}", "-" * 115]
    for r in rows:
        lines.append(f"{r.test:<22} {r.method:<34} {r.n:>3} {r.psnr:>8.2f} {r.ssim:>7.4f} {r.seam:>6.2f} "
                     f"{r.step:>6.2f} {r.texture:>7.3f} {r.gmsd:>7.4f} {r.seconds:>6.2f}")
    for test in dict.fromkeys(r.test for r in rows):
        base = "telea" if test.startswith("box") else "edge-replicate"
        ref = [r for r in rows if r.test == test and r.method == base]
        for ours in (r for r in rows if r.test == test and r.method in (MODEL_ID, TEXTURE_ID)):
            if ref:
                lines.append(f"{test}: {ours.method} - {base} = {ours.psnr - ref[0].psnr:+.2f} dB PSNR, texture "
                             f"{ours.texture:.3f} vs {ref[0].texture:.3f}, GMSD {ours.gmsd:.4f} vs {ref[0].gmsd:.4f}, "
                             f"step {ours.step:.2f} vs {ref[0].step:.2f}")
    return "\n".join(lines)


def eval_inpaint_from_args(args: argparse.Namespace) -> int:
    """`retouch eval inpaint` handler (argument names as `retouch eval`, plus optional work_side/save_dir)."""
    torch.set_num_threads(int(args.threads))
    data_dir = Path(args.data_dir or "")
    folder = data_dir / "products" / "train"
    if not folder.is_dir():
        print(f"error: {folder} does not exist (give --data-dir)", file=sys.stderr)
        return 2
    _, held = split_holdout(list_images(folder), HOLDOUT)
    limit = args.limit
    files = held[:limit] if limit else held
    from engines.training.inpaint_train import load_generator

    weights_dir = Path(args.weights_dir or WEIGHTS_DIR)
    paths = {MODEL_ID: weights_dir / f"{MODEL_ID}.safetensors",
             TEXTURE_ID: Path(args.model) if args.model else weights_dir / f"{TEXTURE_ID}.safetensors"}
    specs = {MODEL_ID: INPAINT, TEXTURE_ID: INPAINT_TEXTURE}
    models = []
    for name, path in paths.items():
        if path.is_file():
            models.append((name, load_generator(path)[0], specs[name]))
        else:
            print(f"warning: {path} not found; {name} left out", file=sys.stderr)
    work_side = args.work_side
    methods = build_methods(models, DEFAULT_FEATHER, work_side)
    log = None if args.json else (lambda s: print(s, file=sys.stderr))
    side = args.canvas or CANVAS
    rows = evaluate(methods, files, args.save_dir, log, side)
    if args.json:
        print(json.dumps({"canvas": side, "work_side": work_side or INPAINT.work_side, "feather": DEFAULT_FEATHER,
                          "images": [f.name for f in files], "rows": [asdict(r) for r in rows]}, indent=1))
    else:
        print(format_table(rows))
    return 0
