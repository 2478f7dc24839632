"""`retouch eval matte`: the matting engine on products and backgrounds it never saw.

- Composites: each held-aside catalogue product on white (the last 25 photos of products/train by name)
  cut out with `matte_truth` and placed over BSD100 and Set14 photos (evaluation-only data, never a
  training background), `COMPOSITES_PER_PRODUCT` each, 640x640, seeded. The engine's full-resolution
  matte is compared with the truth: IoU at 0.5, the boundary F-score (Perazzi et al. 2016: outline
  pixels matched within 1 % of the diagonal) and the mean absolute alpha error.
- On white: the same held-aside photos as they are (already on white) put on white by the worker's
  background step: PSNR of the output against the input and the share of the product (by its extracted
  matte) the engine cut away; nothing should change.
- `--save-dir` writes side-by-sides (composite | engine matte | truth | on white), and with `--real-lr`
  real photos without truth (input | matte | on white).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from engines.training import matte_data
from engines.training.data import list_images, split_holdout

SEED = 2024
SIZE = 640
COMPOSITES_PER_PRODUCT = 4


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    p, t = pred > 0.5, truth > 0.5
    union = (p | t).sum()
    return float((p & t).sum() / union) if union else 1.0


def _outline(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    return mask & ~ndimage.binary_erosion(mask, border_value=1)


def boundary_f(pred: np.ndarray, truth: np.ndarray, tolerance: float = 0.01) -> float:
    """F-score of the outlines of pred > 0.5 and truth > 0.5, a pixel matching within `tolerance` x the
    image diagonal (DAVIS's contour accuracy)."""
    from scipy import ndimage

    p, t = _outline(pred > 0.5), _outline(truth > 0.5)
    if not p.any() and not t.any():
        return 1.0
    if not p.any() or not t.any():
        return 0.0
    reach = max(1.0, tolerance * float(np.hypot(*pred.shape)))
    near_t = ndimage.distance_transform_edt(~t) <= reach
    near_p = ndimage.distance_transform_edt(~p) <= reach
    precision, recall = float(near_t[p].mean()), float(near_p[t].mean())
    return 2 * precision * recall / max(precision + recall, 1e-9)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.round(a * 255) - np.round(b * 255)) ** 2))
    return 10 * np.log10(255.0**2 / max(mse, 1e-12))


def put_on_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The photo on white by its full-resolution matte, as the worker's background step makes it."""
    from engines.matting import background_colours
    from worker.pipeline.background import replace

    return replace(rgb, alpha, background_colours(rgb, alpha), "white")


def on_white(engine, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the photo on white, the engine's full-resolution matte of it)."""
    alpha = engine.matte(rgb).full(rgb)
    return put_on_white(rgb, alpha), alpha


def strip(images: list[np.ndarray], height: int = 320) -> np.ndarray:
    """Images side by side at one height (greyscale mattes shown as grey RGB)."""
    tiles = []
    for image in images:
        arr = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)
        im = Image.fromarray((np.clip(arr, 0, 1) * 255).round().astype(np.uint8))
        tiles.append(np.asarray(im.resize((max(1, round(im.width * height / im.height)), height))))
    return np.concatenate(tiles, axis=1)


def evaluate(data_dir: Path, model: str, *, holdout: int, limit: int | None, save_dir: Path | None,
             log=print) -> dict:
    from engines.session import open_engine

    _, held = split_holdout(list_images(data_dir / "products" / "train"), holdout)
    held = held[:limit] if limit else held
    backgrounds = matte_data.eval_backgrounds(data_dir)
    if not backgrounds:
        raise FileNotFoundError(f"no BSD100/Set14 photos under {data_dir / 'sr-bench'}")
    rng = np.random.default_rng(SEED)
    rows: list[dict] = []
    white_rows: list[dict] = []
    seconds = []
    with open_engine(model) as engine:
        for path in held:
            photo = matte_data.load_photo(path, 1024)
            product = matte_data.cut_out(photo)
            if product is None:
                continue
            for k in range(COMPOSITES_PER_PRODUCT):
                background = backgrounds[int(rng.integers(len(backgrounds)))]
                image, truth = matte_data.composite([product], [], SIZE, rng, several=0.0, shadow=0.3,
                                                    background=background, scale=(0.5, 0.95))
                rgb = image.astype(np.float32) / 255
                started = time.perf_counter()
                alpha = engine.matte(rgb).full(rgb)
                seconds.append(time.perf_counter() - started)
                rows.append({"photo": path.name, "iou": iou(alpha, truth), "boundary_f": boundary_f(alpha, truth),
                             "mae": float(np.abs(alpha - truth).mean())})
                if save_dir is not None and k == 0:
                    white = put_on_white(rgb, alpha)  # the matte measured above, not a second run
                    Image.fromarray(strip([rgb, alpha, truth, white])).save(
                        save_dir / f"composite-{path.stem}.png")
            rgb = photo.astype(np.float32) / 255
            white, alpha = on_white(engine, rgb)
            extracted = matte_data.product_matte(photo)
            cut = float(((alpha < 0.5) & (extracted > 0.5)).sum() / max(1, (extracted > 0.5).sum()))
            white_rows.append({"photo": path.name, "psnr": psnr(white, rgb), "cut_away": cut})
            if save_dir is not None:
                Image.fromarray(strip([rgb, alpha, white])).save(save_dir / f"on-white-{path.stem}.png")
    log(f"{len(rows)} composites of {len(white_rows)} held-aside products")
    return {
        "composites": len(rows),
        "products": len(white_rows),
        "iou_mean": float(np.mean([r["iou"] for r in rows])),
        "iou_min": float(np.min([r["iou"] for r in rows])),
        "share_iou_095": float(np.mean([r["iou"] >= 0.95 for r in rows])),
        "boundary_f_mean": float(np.mean([r["boundary_f"] for r in rows])),
        "mae_mean": float(np.mean([r["mae"] for r in rows])),
        "on_white_psnr_mean": float(np.mean([r["psnr"] for r in white_rows])),
        "on_white_psnr_min": float(np.min([r["psnr"] for r in white_rows])),
        "on_white_cut_away_mean": float(np.mean([r["cut_away"] for r in white_rows])),
        "ms_per_640_composite": 1000 * float(np.median(seconds)),
        "rows": rows,
        "on_white_rows": white_rows,
    }


def real_side_by_sides(folder: Path, model: str, save_dir: Path, limit: int = 12, log=print) -> list[Path]:
    """input | matte | on white for real photos without truth; also logs what the matte reports."""
    from engines.session import open_engine
    from engines.training.tone_eval import read

    written = []
    with open_engine(model) as engine:
        for path in list_images(folder)[:limit]:
            rgb = read(path, long_side=768)
            matte = engine.matte(rgb)
            white, alpha = on_white(engine, rgb)
            out = save_dir / f"real-{folder.name}-{path.stem}.png"
            Image.fromarray(strip([rgb, alpha, white], height=280)).save(out)
            log(f"{out.name}: {json.dumps(matte.report().as_dict())}")
            written.append(out)
    return written


def format_table(result: dict) -> str:
    return "\n".join([
        f"composites: {result['composites']} ({result['products']} held-aside products over BSD100/Set14)",
        f"  IoU mean {result['iou_mean']:.4f}, min {result['iou_min']:.4f}, "
        f"share >= 0.95: {100 * result['share_iou_095']:.0f} %",
        f"  boundary F {result['boundary_f_mean']:.4f}, alpha MAE {result['mae_mean']:.4f}",
        f"  {result['ms_per_640_composite']:.0f} ms per 640x640 matte",
        f"on white as shot: PSNR vs input mean {result['on_white_psnr_mean']:.2f} dB, "
        f"min {result['on_white_psnr_min']:.2f} dB; product cut away {100 * result['on_white_cut_away_mean']:.2f} %",
    ])


def eval_matte_from_args(args: argparse.Namespace) -> int:
    import torch

    torch.set_num_threads(args.threads)
    model = args.model or "retouch-matte"
    if args.save_dir is not None:
        args.save_dir.mkdir(parents=True, exist_ok=True)
    try:
        result = evaluate(args.data_dir, model, holdout=25, limit=args.limit, save_dir=args.save_dir,
                          log=lambda m: print(m, file=sys.stderr))
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.real_lr is not None and args.save_dir is not None:
        real_side_by_sides(args.real_lr, model, args.save_dir,
                           log=lambda m: print(m, file=sys.stderr))  # stdout stays the table or the JSON
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_table(result))
    return 0
