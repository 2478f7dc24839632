"""Border strips at listing resolution: training samples for thin outpainting bands.

A 3:4 photo outpainted to 4:5 gets two bands of ~3 % of the width: ~25 px on a 1,024 px canvas, ~5 px at
the 192 px working side of the whole-canvas fill, too thin for anything but a blur there. So the engine
fills thin side bands on strips of the canvas at `STRIP_SCALE` (`engines.masked_fill`, strip path), and
these samples teach it that framing: the outermost `STRIP_WIDTH` columns of every training photo framed at
`STRIP_SCALE` px tall, the photo's own border on the outside (left strips mirrored, so the border is
always on the right in the cache), `STRIP_ROWS` rows drawn at random per sample, and a band of
`STRIP_BANDS` px along the border as the hole; flipped left-right at random.

The truth under the band is the photo's real border, exactly what `retouch eval inpaint` scores.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from engines.masked_fill import STRIP_MAX_BAND, STRIP_SCALE, STRIP_WIDTH
from engines.training.data import cache_path, training_files
from engines.training.inpaint_canvas import frame
from engines.training.masks import band_mask

STRIP_ROWS = 512
STRIP_BANDS = (8, STRIP_MAX_BAND)


def border_strips(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(right strip, mirrored left strip) of a photo framed 4:5 at `STRIP_SCALE` px tall: STRIP_SCALE x
    STRIP_WIDTH x 3 uint8 each, the photo's border in the last column."""
    arr = frame(path, "portrait", STRIP_SCALE)
    return arr[:, -STRIP_WIDTH:], arr[:, :STRIP_WIDTH][:, ::-1]


def build_strip_cache(folder: Path, holdout: int, cache_dir: Path | None = None, log=print) -> torch.Tensor:
    """(2N, 3, STRIP_SCALE, STRIP_WIDTH) uint8: both border strips of every training photo (the held-aside
    tail excluded). Deterministic; saved as `cache_dir/inpaint-strips-<key>.pt` and reused."""
    path = cache_path(cache_dir, "inpaint-strips", [str(folder), holdout, STRIP_SCALE, STRIP_WIDTH])
    if path is not None and path.exists():
        return torch.load(path)
    strips = []
    files = training_files(folder, holdout)
    for i, f in enumerate(files):
        strips.extend(border_strips(f))
        if (i + 1) % 100 == 0:
            log(f"cache: {i + 1}/{len(files)} photos' border strips")
    out = torch.from_numpy(np.stack(strips)).permute(0, 3, 1, 2).contiguous()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(out, path)
    return out


def sample_strip_batch(cache: torch.Tensor, batch: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (N, 3, STRIP_ROWS, STRIP_WIDTH) in [0, 1], masks (N, 1, ...)): a band along each strip's
    border, all drawn from `rng`."""
    rows = min(STRIP_ROWS, cache.shape[-2])
    images, masks = [], []
    for i in rng.integers(0, cache.shape[0], batch):
        y = int(rng.integers(0, cache.shape[-2] - rows + 1))
        img = cache[int(i), :, y : y + rows]
        mask = band_mask(rows, cache.shape[-1], right=int(rng.integers(STRIP_BANDS[0], STRIP_BANDS[1] + 1)))
        if rng.random() < 0.5:
            img, mask = img.flip(2), mask[:, ::-1].copy()
        images.append(img)
        masks.append(mask)
    return torch.stack(images).float() / 255, torch.from_numpy(np.stack(masks))[:, None]
