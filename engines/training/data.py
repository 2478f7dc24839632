"""Image loading and the in-memory crop cache that training samples batches from.

Decoding ~600 catalogue JPEGs of ~2 MP costs far more CPU than a training step, so each image is
decoded once, optionally shrunk (more texture per pixel, closer to the benchmarks' photos), and cut into
a fixed number of textured crops kept as one uint8 tensor. Flat crops (white studio background, which
most catalogue photos are largely made of) are rejected: they teach nothing and dilute the loss.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}

# Images scikit-image ships inside its wheel (no download): fur, foliage, metal, brick, gravel and grass, the
# texture catalogue photos lack and the denoising benchmarks (BSD, Kodak) are full of. Terms, per each
# image's skimage.data docstring: astronaut and rocket public domain; coffee, chelsea, camera, brick, grass
# and gravel CC0; motorcycle_left/right from the Middlebury 2014 stereo benchmark; color.png is scikit-image's
# synthetic colour wheel (smooth hue ramps). Greyscale ones are used as grey RGB.
NATURAL_PHOTOS = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png",
                  "motorcycle_right.png", "color.png", "brick.png", "grass.png", "gravel.png", "camera.png")


def natural_photo_files() -> list[Path]:
    """Paths of `NATURAL_PHOTOS` in the installed scikit-image (a core dependency)."""
    from importlib.resources import files

    folder = Path(str(files("skimage") / "data"))
    return [folder / name for name in NATURAL_PHOTOS]


def resolve(path: Path) -> Path:
    """Follow a symlink stored as a tiny text file holding its relative target (git checkouts made with
    core.symlinks=false store data-set symlinks that way)."""
    if path.stat().st_size < 256:
        target = path.read_bytes()
        if not target.startswith((b"\x89PNG", b"\xff\xd8")):
            try:
                return resolve((path.parent / target.decode().strip()).resolve())
            except UnicodeDecodeError:
                return path
    return path


def load_rgb(path: Path) -> torch.Tensor:
    """Read an image file as a (3, H, W) float32 tensor in [0, 1] (RGB; alpha and palette dropped)."""
    with Image.open(resolve(path)) as im:
        arr = np.asarray(im.convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def save_rgb(img: torch.Tensor, path: Path) -> None:
    """Write a (3, H, W) [0, 1] tensor as an 8-bit image (format from the suffix)."""
    arr = (img.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def list_images(folder: Path) -> list[Path]:
    """Image files directly in `folder`, sorted by name (the order the train/holdout split uses)."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def split_holdout(files: list[Path], holdout: int) -> tuple[list[Path], list[Path]]:
    """(train, held_aside): the last `holdout` files by sorted name are never trained on."""
    if holdout <= 0:
        return files, []
    return files[:-holdout], files[-holdout:]


def training_files(folder: Path, holdout: int) -> list[Path]:
    """The training split of `folder` (the held-aside tail excluded); FileNotFoundError when it is empty."""
    files, _ = split_holdout(list_images(folder), holdout)
    if not files:
        raise FileNotFoundError(f"no training images in {folder}")
    return files


def cache_path(cache_dir: Path | None, prefix: str, key_parts: list) -> Path | None:
    """`cache_dir/<prefix>-<hash of key_parts>.pt`, the file a crop cache is saved to (None: no caching)."""
    if cache_dir is None:
        return None
    return cache_dir / f"{prefix}-{hashlib.sha256(json.dumps(key_parts).encode()).hexdigest()[:16]}.pt"


def is_textured(crop: np.ndarray, min_std: float = 6.0, max_flat_fraction: float = 0.6) -> bool:
    """True when an (H, W, 3) uint8 crop has enough detail to be worth training on.

    Rejects crops whose grey std is under `min_std` (of 255) or whose pixels are mostly near-white
    (catalogue background).
    """
    grey = crop.astype(np.float32).mean(axis=2)
    if grey.std() < min_std:
        return False
    return float((grey > 245).mean()) <= max_flat_fraction


@dataclass(frozen=True)
class CacheSpec:
    """What a crop cache holds; its hash names the cache file so reruns reuse it."""

    folder: str
    holdout: int
    crop: int
    crops_per_image: int
    shrink: tuple[float, ...]
    seed: int
    # Extra images (e.g. natural_photo_files()), `extra_crops_per_image` crops each, split evenly over the
    # shrink factors.
    extra_files: tuple[str, ...] = ()
    extra_crops_per_image: int = 0

    def key(self) -> str:
        blob = json.dumps(self.__dict__, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def build_crop_cache(spec: CacheSpec, cache_dir: Path | None = None, log=print) -> torch.Tensor:
    """Return (N, 3, crop, crop) uint8 textured crops from the training split of `spec.folder`.

    Each image is shrunk by a factor drawn from `spec.shrink` (PIL antialiased bicubic) and cut at random
    textured positions; everything is drawn from `spec.seed`, so the cache is reproducible. Saved to
    `cache_dir/crops-<key>.pt` when given and loaded from there next time.
    """
    path = cache_dir / f"crops-{spec.key()}.pt" if cache_dir else None
    if path is not None and path.exists():
        return torch.load(path)
    files = training_files(Path(spec.folder), spec.holdout)
    rng = np.random.default_rng([spec.seed, 7919])
    crops: list[np.ndarray] = []
    for i, f in enumerate(files):
        factor = float(rng.choice(spec.shrink))
        crops += textured_crops(shrunk(f, factor), spec.crop, spec.crops_per_image, rng)
        if (i + 1) % 100 == 0:
            log(f"cache: {i + 1}/{len(files)} images, {len(crops)} crops")
    per_factor = spec.extra_crops_per_image // max(len(spec.shrink), 1)
    for f in spec.extra_files:
        for factor in spec.shrink:
            crops += textured_crops(shrunk(Path(f), factor), spec.crop, per_factor, rng)
    return stack_crops(crops, path, f"no textured crops of {spec.crop}px found in {spec.folder}")


def shrunk(path: Path, factor: float) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an image file, resized by `factor` (PIL bicubic, antialiased) unless 1."""
    with Image.open(resolve(path)) as im:
        im = im.convert("RGB")
        if factor != 1.0:
            im = im.resize((round(im.width * factor), round(im.height * factor)), Image.BICUBIC)
        return np.asarray(im)


def textured_crops(arr: np.ndarray, crop: int, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Up to `count` textured `crop`-pixel squares cut at random positions of `arr` (6 tries per crop)."""
    h, w = arr.shape[:2]
    if h < crop or w < crop:
        return []
    out: list[np.ndarray] = []
    for _ in range(count * 6):
        y, x = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
        c = arr[y : y + crop, x : x + crop]
        if is_textured(c):
            out.append(c.copy())
            if len(out) == count:
                break
    return out


def stack_crops(crops: list[np.ndarray], path: Path | None, empty_message: str) -> torch.Tensor:
    """HxWx3 uint8 crops -> one NCHW uint8 tensor, saved to `path` (the crop cache) when given."""
    if not crops:
        raise ValueError(empty_message)
    out = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).contiguous()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(out, path)
    return out


def sample_patches(cache: torch.Tensor, n: int, size: int, rng: np.random.Generator) -> torch.Tensor:
    """Draw `n` random (3, size, size) float patches in [0, 1] with random flips and 90-degree turns."""
    idx = rng.integers(0, cache.shape[0], n)
    full = cache.shape[-1]
    out = []
    for i in idx:
        y, x = rng.integers(0, full - size + 1, 2)
        p = cache[int(i), :, y : y + size, x : x + size]
        k = int(rng.integers(0, 4))
        if k:
            p = torch.rot90(p, k, dims=(1, 2))
        if rng.random() < 0.5:
            p = p.flip(2)
        out.append(p)
    return torch.stack(out).float() / 255
