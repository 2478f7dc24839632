"""Training and evaluation composites for the product matting family.

A composite is a catalogue product (cut from its white studio ground by `matte_truth.product_matte`, its
edge colours freed of the white they were blended with) placed over a background, with the product's
matte as the truth. Backgrounds, per draw:
- photos: the images scikit-image ships in its wheel (`BACKGROUND_PHOTOS`) and the training catalogue
  photos that are *not* on white (models on coloured sets, lifestyle shots), random crops, jittered;
- tables: two of those stacked, a floor or table top under a wall;
- procedural: flat colours, linear and radial gradients, smooth colour noise, stripes, checks;
- white: a near-white studio ground, so that a photo already on white keeps its product whole.
A cast shadow (the matte, shifted, squashed and blurred) darkens the background under the product in 40 %
of draws; several products share the frame in 15 %; blur, noise and JPEG follow, as uploads have them.

Evaluation uses held-aside products over the BSD100 and Set14 photos (evaluation-only data: never a
training background), so every figure is on products and backgrounds the network never saw.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from engines.training.data import list_images, natural_photo_files, resolve
from engines.training.matte_truth import ground_colour, product_matte

# More of scikit-image's bundled images (microscopy, astronomy, documents, a chessboard): busy, unnatural
# backgrounds a product may still stand in front of (a poster, a screen, a printed page).
EXTRA_SKIMAGE = ("hubble_deep_field.jpg", "ihc.png", "coins.png", "page.png", "text.png", "retina.jpg",
                 "moon.png", "chessboard_RGB.png", "clock_motion.png", "horse.png", "logo.png")


@dataclass(frozen=True)
class Product:
    """A product cut out of its photo: foreground colours (h, w, 3) uint8 and alpha (h, w) uint8, cropped
    to the matte's bounding box; `touches` says which frame sides ("top", "bottom", "left", "right") the
    product was cut by in its photo, so a composite keeps it against the same side."""

    rgb: np.ndarray
    alpha: np.ndarray
    touches: frozenset[str]


def load_photo(path: Path, long_side: int) -> np.ndarray:
    """HxWx3 uint8, shrunk so its long side is at most `long_side` (JPEG draft mode decodes it small)."""
    with Image.open(resolve(path)) as im:
        im.draft("RGB", (long_side * 2, long_side * 2))
        im = im.convert("RGB")
        im.thumbnail((long_side, long_side), Image.Resampling.LANCZOS)
        return np.asarray(im).copy()


def cut_out(rgb: np.ndarray) -> Product | None:
    """The product of a photo on white, or None (`product_matte` refused it)."""
    alpha = product_matte(rgb)
    if alpha is None:
        return None
    ground = ground_colour(rgb)
    assert ground is not None
    # Edge pixels are product blended with the white ground: un-blend them, or every composite would carry
    # a white fringe. Where alpha is tiny the colour is unknowable; the pixel's own colour is kept there.
    a = alpha[..., None]
    freed = (rgb.astype(np.float32) - (1.0 - a) * ground) / np.maximum(a, 1e-3)
    colours = np.where(a > 0.1, np.clip(freed, 0, 255), rgb).astype(np.uint8)
    rows, cols = np.flatnonzero(alpha.max(axis=1) > 0.05), np.flatnonzero(alpha.max(axis=0) > 0.05)
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    height, width = alpha.shape
    touches = frozenset(side for side, hit in (("top", top <= 1), ("bottom", bottom >= height - 1),
                                               ("left", left <= 1), ("right", right >= width - 1)) if hit)
    return Product(colours[top:bottom, left:right].copy(), (alpha[top:bottom, left:right] * 255).round()
                   .astype(np.uint8), touches)


def load_products(paths: list[Path], long_side: int = 480, log=print) -> tuple[list[Product], list[np.ndarray]]:
    """(products cut from the photos on white, the other photos as backgrounds)."""
    products, others = [], []
    for path in paths:
        rgb = load_photo(path, long_side)
        product = cut_out(rgb)
        if product is not None:
            products.append(product)
        elif ground_colour(rgb) is None:  # not on white at all: a background (rejected white shots are neither)
            others.append(rgb)
    log(f"matting data: {len(products)} products cut out, {len(others)} photos kept as backgrounds, "
        f"{len(paths) - len(products) - len(others)} unused")
    return products, others


def background_photos(extra: list[np.ndarray], long_side: int = 640) -> list[np.ndarray]:
    from importlib.resources import files

    folder = Path(str(files("skimage") / "data"))
    paths = natural_photo_files() + [folder / name for name in EXTRA_SKIMAGE if (folder / name).exists()]
    return [load_photo(path, long_side) for path in paths] + extra


def eval_backgrounds(data_dir: Path, long_side: int = 512) -> list[np.ndarray]:
    """BSD100 and Set14 photos: evaluation-only backgrounds the network never trains on."""
    found = []
    for name in ("BSD100", "Set14"):
        folder = data_dir / "sr-bench" / name / "HR_x2"  # the full-size photos (HR_x4 is the same, cropped)
        if folder.is_dir():
            found += [load_photo(path, long_side) for path in list_images(folder)]
    return found


# -- backgrounds -------------------------------------------------------------------------------------------

def _crop_resized(photo: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    height, width, _ = photo.shape
    side = int(min(height, width) * rng.uniform(0.4, 1.0))
    y, x = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
    crop = Image.fromarray(photo[y : y + side, x : x + side]).resize((size, size), Image.Resampling.BILINEAR)
    out = np.asarray(crop).astype(np.float32)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    gain, offset = rng.uniform(0.6, 1.3, 3), rng.uniform(-30, 30)
    return np.clip(out * gain + offset, 0, 255)


def _procedural(size: int, rng: np.random.Generator) -> np.ndarray:
    kind = rng.integers(0, 5)
    colour_a, colour_b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    if kind == 0:  # flat
        t = np.zeros((size, size), np.float32)
    elif kind == 1:  # linear gradient
        angle = rng.uniform(0, 2 * np.pi)
        t = (np.cos(angle) * xx + np.sin(angle) * yy)
        t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
    elif kind == 2:  # radial gradient (a spot-lit wall)
        cy, cx = rng.uniform(0, 1, 2)
        t = np.clip(np.hypot(yy - cy, xx - cx) / rng.uniform(0.5, 1.2), 0, 1)
    elif kind == 3:  # smooth colour noise (bokeh, foliage out of focus)
        cells = int(rng.integers(2, 12))
        noise = rng.uniform(0, 255, (cells, cells, 3)).astype(np.uint8)
        return np.asarray(Image.fromarray(noise).resize((size, size), Image.Resampling.BICUBIC)).astype(np.float32)
    else:  # stripes or checks
        period = rng.uniform(0.03, 0.3)
        t = (np.floor(xx / period) % 2) if rng.random() < 0.5 else ((np.floor(xx / period) + np.floor(yy / period)) % 2)
    return colour_a * (1 - t[..., None]) + colour_b * t[..., None]


def _near_white(size: int, rng: np.random.Generator) -> np.ndarray:
    base = rng.uniform(236, 255) + rng.uniform(-4, 4, 3)
    vignette = np.linspace(-1, 1, size)[None, :] ** 2 + np.linspace(-1, 1, size)[:, None] ** 2
    return np.clip(base - rng.uniform(0, 14) * vignette[..., None] / 2, 0, 255)


def draw_background(size: int, photos: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """(size, size, 3) float32 in 0-255."""
    pick = rng.random()
    if pick < 0.40:
        return _crop_resized(photos[int(rng.integers(len(photos)))], size, rng)
    if pick < 0.55:  # a table or floor under a wall
        wall = _crop_resized(photos[int(rng.integers(len(photos)))], size, rng) if rng.random() < 0.5 \
            else _procedural(size, rng)
        table = _crop_resized(photos[int(rng.integers(len(photos)))], size, rng)
        horizon = int(size * rng.uniform(0.4, 0.85))
        wall[horizon:] = table[horizon:]
        return wall
    if pick < 0.85:
        return _procedural(size, rng)
    return _near_white(size, rng)


# -- composites --------------------------------------------------------------------------------------------

def _place(product: Product, size: int, rng: np.random.Generator, scale: tuple[float, float]
           ) -> tuple[np.ndarray, np.ndarray, int, int]:
    """The product resized for a `size` canvas, and where its top-left corner goes (may be off-canvas)."""
    height, width = product.alpha.shape
    fit = size / max(height, width) * rng.uniform(*scale)
    new_h, new_w = max(4, int(round(height * fit))), max(4, int(round(width * fit)))
    rgb = np.asarray(Image.fromarray(product.rgb).resize((new_w, new_h), Image.Resampling.BILINEAR), np.float32)
    alpha = np.asarray(Image.fromarray(product.alpha).resize((new_w, new_h), Image.Resampling.BILINEAR),
                       np.float32) / 255
    y = int(rng.integers(min(0, size - new_h), max(0, size - new_h) + 1))
    x = int(rng.integers(min(0, size - new_w), max(0, size - new_w) + 1))
    # A product the frame cut (a model's legs) stays cut by the same side, not floating mid-canvas.
    if "bottom" in product.touches:
        y = size - new_h
    elif "top" in product.touches:
        y = 0
    if "left" in product.touches:
        x = 0
    elif "right" in product.touches:
        x = size - new_w
    return rgb, alpha, y, x


def _paste(canvas: np.ndarray, layer: np.ndarray, y: int, x: int) -> tuple[slice, slice, np.ndarray]:
    """The canvas window under `layer` at (y, x), and the part of the layer inside the canvas."""
    size_h, size_w = canvas.shape[:2]
    h, w = layer.shape[:2]
    y0, x0, y1, x1 = max(y, 0), max(x, 0), min(y + h, size_h), min(x + w, size_w)
    return slice(y0, y1), slice(x0, x1), layer[y0 - y : y1 - y, x0 - x : x1 - x]


def _shadow(matte: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A cast shadow: the matte moved down and aside, squashed towards its base, blurred."""
    size = matte.shape[0]
    dy, dx = int(size * rng.uniform(0.0, 0.08)), int(size * rng.uniform(-0.08, 0.08))
    shifted = np.roll(np.roll(matte, dy, axis=0), dx, axis=1)
    radius = size * rng.uniform(0.01, 0.05)
    blurred = Image.fromarray((shifted * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(radius))
    return np.asarray(blurred, np.float32) / 255 * rng.uniform(0.2, 0.6)


def _degrade(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = Image.fromarray(np.clip(image, 0, 255).round().astype(np.uint8))
    if rng.random() < 0.2:
        out = out.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.5)))
    arr = np.asarray(out, np.float32)
    if rng.random() < 0.5:
        arr = arr + rng.normal(0, rng.uniform(1, 6), arr.shape)
    out = Image.fromarray(np.clip(arr, 0, 255).round().astype(np.uint8))
    if rng.random() < 0.5:
        buffer = io.BytesIO()
        out.save(buffer, "JPEG", quality=int(rng.integers(45, 96)))
        out = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    return np.asarray(out)


def composite(products: list[Product], photos: list[np.ndarray], size: int, rng: np.random.Generator,
              *, scale: tuple[float, float] = (0.45, 1.0), several: float = 0.15, shadow: float = 0.4,
              degrade: bool = True, background: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One (size, size, 3) uint8 composite and its (size, size) float32 truth matte; over `background`
    (a photo, cropped and resized) when given, else over a drawn one."""
    if background is None:
        background = draw_background(size, photos, rng)
    else:
        background = _crop_resized(background, size, rng)
    count = 1 + int(rng.random() < several) * int(rng.integers(1, 3))
    layers = []
    truth = np.zeros((size, size), np.float32)
    for _ in range(count):
        product = products[int(rng.integers(len(products)))]
        rgb, alpha, y, x = _place(product, size, rng, scale if count == 1 else (0.3, 0.6))
        if rng.random() < 0.5 and not product.touches & {"left", "right"}:
            rgb, alpha, x = rgb[:, ::-1], alpha[:, ::-1], size - x - alpha.shape[1]
        rgb = np.clip(rgb * rng.uniform(0.9, 1.1, 3), 0, 255)
        layers.append((rgb, alpha, y, x))
        ys, xs, part = _paste(truth, alpha, y, x)
        truth[ys, xs] = part + truth[ys, xs] * (1 - part)
    if rng.random() < shadow:
        background *= 1.0 - _shadow(truth, rng)[..., None]
    image = background
    for rgb, alpha, y, x in layers:
        ys, xs, part = _paste(image, alpha, y, x)
        _, _, colours = _paste(image, rgb, y, x)
        image[ys, xs] = colours * part[..., None] + image[ys, xs] * (1 - part[..., None])
    image = _degrade(image, rng) if degrade else np.clip(image, 0, 255).round().astype(np.uint8)
    return image, truth
