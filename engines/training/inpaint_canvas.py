"""Whole-canvas training samples for the inpainter: the photo as the engine sees it, not a crop of it.

The engine fills at a working resolution (the canvas shrunk so its longest side is `side`, see
`engines/masked_fill.py`), and `retouch eval inpaint` puts a 5-20 % box on the whole canvas or outpaints
side bands of a whole (square or 4:5) canvas. Crops of a canvas (`inpaint_train.build_scene_cache`) hide
what decides those fills: where the product sits on the canvas and how its silhouette continues towards
the border. So this sampler trains on exactly those two framings of every training photo:

- "portrait": the photo shrunk to `side` px tall and centre-cropped to 4:5 (almost all catalogue photos
  are 4:5 already), W = side * 4/5 rounded down to the size multiple of 8;
- "square": the centre square of the photo (what the 1:1 outpainting test starts from) shrunk to `side`.

Each view is cached `JITTER` px larger than it is used, so a random crop moves the product by a few pixels
between epochs; a batch is one framing (all its tensors share a shape), flipped left-right at random
(never turned: gravity is part of a product photo's prior).

Masks (`canvas_mask`): a 5-20 % box (as evaluated), symmetric side bands (a canvas widened around the
photo; total width 4-30 %), any other border bands (`masks.outpaint_mask`), or free-form strokes.
Thin side bands (3:4 outpainted to 4:5: ~5 px a side here) are trained at listing resolution instead, on
border strips (`inpaint_strips`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from engines.training.data import cache_path, list_images, resolve, split_holdout, training_files
from engines.training.masks import BOX_AREA, band_mask, box_mask, outpaint_mask, stroke_mask

JITTER = 8
VIEWS = ("portrait", "square")
# Probability of each view per batch, and of each mask kind per sample (box, side bands, other bands,
# strokes): weighted towards what `retouch eval inpaint` measures.
VIEW_WEIGHTS = (0.6, 0.4)
MASK_WEIGHTS = (0.4, 0.3, 0.1, 0.2)


def view_shape(view: str, side: int) -> tuple[int, int]:
    """(H, W) of a training view at working side `side` (multiples of 8)."""
    if view == "square":
        return side, side
    return side, side * 4 // 5 // 8 * 8


def frame(path: Path, view: str, side: int, margin: int = 0) -> np.ndarray:
    """Decode a photo and frame it as `view` at `side` px (+ `margin` on each axis): HxWx3 uint8."""
    h_out, w_out = (n + margin for n in view_shape(view, side))
    with Image.open(resolve(path)) as im:
        im = im.convert("RGB")
        w, h = im.size
        # Centre crop to the view's aspect, then one antialiased resize.
        aspect = w_out / h_out
        if w / h > aspect:
            cw, ch = round(h * aspect), h
        else:
            cw, ch = w, round(w / aspect)
        x0, y0 = (w - cw) // 2, (h - ch) // 2
        im = im.crop((x0, y0, x0 + cw, y0 + ch)).resize((w_out, h_out), Image.BICUBIC)
        return np.asarray(im)


def build_canvas_cache(folder: Path, holdout: int, side: int, cache_dir: Path | None = None,
                       log=print) -> dict[str, torch.Tensor]:
    """{view: (N, 3, H + JITTER, W + JITTER) uint8} for every training photo (the held-aside tail excluded).

    Deterministic (no random draws); saved as `cache_dir/inpaint-canvas-<key>.pt` and reused.
    """
    path = cache_path(cache_dir, "inpaint-canvas", [str(folder), holdout, side, JITTER, list(VIEWS)])
    if path is not None and path.exists():
        return torch.load(path)
    files = training_files(folder, holdout)
    views: dict[str, list[np.ndarray]] = {v: [] for v in VIEWS}
    for i, f in enumerate(files):
        for v in VIEWS:
            views[v].append(frame(f, v, side, JITTER))
        if (i + 1) % 100 == 0:
            log(f"cache: {i + 1}/{len(files)} canvases")
    out = {v: torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2).contiguous() for v, arrs in views.items()}
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(out, path)
    return out


def side_bands(h: int, w: int, rng: np.random.Generator, total: tuple[float, float] = (0.04, 0.3)) -> np.ndarray:
    """Left and right bands (a photo centred on a wider canvas) covering a fraction `total` of the width."""
    both = max(2, round(float(rng.uniform(*total)) * w))
    left = both // 2
    return band_mask(h, w, left=left, right=both - left)


def canvas_mask(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """One training hole for a whole canvas, kinds drawn with `MASK_WEIGHTS` (see module doc)."""
    p = np.asarray(MASK_WEIGHTS, dtype=np.float64)
    kind = int(rng.choice(len(p), p=p / p.sum()))
    if kind == 0:
        return box_mask(h, w, rng, BOX_AREA)
    if kind == 1:
        return side_bands(h, w, rng)
    if kind == 2:
        return outpaint_mask(h, w, rng)
    return stroke_mask(h, w, rng)


def sample_canvas_batch(cache: dict[str, torch.Tensor], batch: int,
                        rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (N, 3, H, W) in [0, 1], masks (N, 1, H, W)) of one view, all drawn from `rng`."""
    view = VIEWS[int(rng.choice(len(VIEWS), p=np.asarray(VIEW_WEIGHTS) / sum(VIEW_WEIGHTS)))]
    pool = cache[view]
    h, w = pool.shape[-2] - JITTER, pool.shape[-1] - JITTER
    images, masks = [], []
    for i in rng.integers(0, pool.shape[0], batch):
        y, x = (int(v) for v in rng.integers(0, JITTER + 1, 2))
        img = pool[int(i), :, y : y + h, x : x + w]
        if rng.random() < 0.5:
            img = img.flip(2)
        images.append(img)
        masks.append(canvas_mask(h, w, rng))
    return torch.stack(images).float() / 255, torch.from_numpy(np.stack(masks))[:, None]


def canvas_validation_set(folder: Path, holdout: int, side: int, n: int = 6,
                          seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Fixed pairs from held-aside photos at the working side: a box on the 4:5 canvas and 12.5 % side bands
    on the square one (the shapes of the `retouch eval inpaint` tests)."""
    _, held = split_holdout(list_images(folder), holdout)
    rng = np.random.default_rng([seed, 104729])
    pairs = []
    for f in held[:n]:
        for view in VIEWS:
            arr = frame(f, view, side)
            h, w = arr.shape[:2]
            mask = box_mask(h, w, rng) if view == "portrait" else band_mask(h, w, left=w // 8, right=w // 8)
            img = torch.from_numpy(arr.copy()).permute(2, 0, 1).float()[None] / 255
            pairs.append((img, torch.from_numpy(mask)[None, None]))
    return pairs
