"""How a matting engine runs at full resolution, and what its matte says about the photo.

The network (`engines.families.product_matte`) sees the whole photo shrunk to its working side (padded by
edge replication to a multiple of 32) and returns alpha logits. Here:
- `work_input` / `Matte.from_logits`: the photo in, the working-resolution matte out;
- `Matte.full`: the matte at the photo's resolution, snapped to its edges by a fast guided filter (He and
  Sun 2015): the filter's linear coefficients are fitted at twice the working resolution against the
  photo's luminance and upsampled, so a 12 MP photo costs two bilinear upsamplings, not a network run;
- `Matte.report`: coverage, products, frame sides touched and confidence, from which the worker decides
  whether a background can be removed (`worker.pipeline.background`);
- `background_colours`: the colours behind the product (a push-pull fill of the sure background), which
  un-blend the edge pixels: on white, `I + (1 - a)(white - B)`; cut out, `B + (I - B) / a`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_UNSURE = (0.1, 0.9)  # alpha in this open range is neither product nor background
_PRODUCT_SHARE = 0.01  # a connected part of the matte counts as a product from this share of the photo
_EDGE_SHARE = 0.02  # a frame side is touched when this share of its pixels is product


def work_shape(height: int, width: int, side: int, multiple: int) -> tuple[int, int]:
    """The photo's size scaled so its long side is `side` (never above the photo's own size unless it is
    smaller than one `multiple`)."""
    scale = min(1.0, side / max(height, width))
    return max(multiple, round(height * scale)), max(multiple, round(width * scale))


def work_input(rgb: np.ndarray, side: int, multiple: int) -> tuple[np.ndarray, tuple[int, int]]:
    """((1, 3, H', W') float32 padded to `multiple` by edge replication, (h, w) of the photo inside it)."""
    import torch
    import torch.nn.functional as F

    height, width = work_shape(rgb.shape[0], rgb.shape[1], side, multiple)
    t = torch.from_numpy(np.ascontiguousarray(rgb[..., :3], dtype=np.float32)).permute(2, 0, 1)[None]
    small = F.interpolate(t, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    pad_h, pad_w = -height % multiple, -width % multiple
    if pad_h or pad_w:
        small = F.pad(small, (0, pad_w, 0, pad_h), mode="replicate")
    return small.clamp_(0.0, 1.0).numpy(), (height, width)


def _box(x, radius: int):
    import torch.nn.functional as F

    return F.avg_pool2d(x, 2 * radius + 1, stride=1, padding=radius, count_include_pad=False)


def guided_upsample(alpha: np.ndarray, rgb: np.ndarray, radius: int = 2, eps: float = 1e-3) -> np.ndarray:
    """`alpha` (h, w) brought to `rgb`'s (H, W), its edges following the photo's (fast guided filter)."""
    import torch
    import torch.nn.functional as F

    full_h, full_w = rgb.shape[:2]
    grey_full = torch.from_numpy(np.ascontiguousarray(rgb[..., :3], dtype=np.float32)).mean(dim=2)[None, None]
    low_h, low_w = min(full_h, alpha.shape[0] * 2), min(full_w, alpha.shape[1] * 2)
    guide = F.interpolate(grey_full, size=(low_h, low_w), mode="bilinear", antialias=True, align_corners=False)
    p = F.interpolate(torch.from_numpy(np.ascontiguousarray(alpha))[None, None], size=(low_h, low_w),
                      mode="bilinear", align_corners=False)
    mean_i, mean_p = _box(guide, radius), _box(p, radius)
    cov = _box(guide * p, radius) - mean_i * mean_p
    var = _box(guide * guide, radius) - mean_i * mean_i
    a = cov / (var + eps)
    b = mean_p - a * mean_i
    a, b = _box(a, radius), _box(b, radius)
    a = F.interpolate(a, size=(full_h, full_w), mode="bilinear", align_corners=False)
    b = F.interpolate(b, size=(full_h, full_w), mode="bilinear", align_corners=False)
    return (a * grey_full + b).clamp_(0.0, 1.0)[0, 0].numpy()


@dataclass(frozen=True)
class MatteReport:
    """What the matte says: coverage (mean alpha), products (connected parts of at least 1 % of the
    photo), touches (frame sides the product runs into), confidence (1 - the share of the product's
    pixels whose alpha is neither near 0 nor near 1: low for glass, smoke, white on white)."""

    coverage: float
    products: int
    touches: tuple[str, ...]
    confidence: float

    def as_dict(self) -> dict[str, object]:
        return {"coverage": round(self.coverage, 4), "products": self.products, "touches": list(self.touches),
                "confidence": round(self.confidence, 4)}


@dataclass(frozen=True)
class Matte:
    """A photo's matte at the network's working resolution (h, w) float32 in [0, 1]."""

    alpha: np.ndarray

    @classmethod
    def from_logits(cls, logits: np.ndarray, inside: tuple[int, int]) -> Matte:
        height, width = inside
        from scipy.special import expit  # the logistic without exp overflowing on confident logits

        return cls(expit(np.asarray(logits, dtype=np.float32)[0, 0, :height, :width]).astype(np.float32))

    def full(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W) float32 alpha at the photo's resolution (guided by its luminance)."""
        return guided_upsample(self.alpha, rgb)

    def report(self) -> MatteReport:
        from scipy import ndimage

        alpha = self.alpha
        product = alpha > 0.5
        labels, count = ndimage.label(product)
        sizes = ndimage.sum_labels(np.ones_like(alpha), labels, index=np.arange(1, count + 1)) if count else []
        products = int(sum(1 for s in sizes if s >= _PRODUCT_SHARE * alpha.size))
        sides = {"top": product[0], "bottom": product[-1], "left": product[:, 0], "right": product[:, -1]}
        touches = tuple(side for side, line in sides.items() if line.mean() >= _EDGE_SHARE)
        present = alpha > 0.05
        unsure = (alpha > _UNSURE[0]) & (alpha < _UNSURE[1])
        # The outline is always a pixel or two of partial alpha: not counted against the matte.
        from scipy.ndimage import binary_dilation, binary_erosion

        outline = binary_dilation(product, iterations=2) & ~binary_erosion(product, iterations=2)
        confidence = 1.0 - float((unsure & ~outline).sum()) / max(1.0, float(present.sum()))
        return MatteReport(float(alpha.mean()), products, touches, confidence)


def background_colours(rgb: np.ndarray, alpha: np.ndarray, work: int = 256) -> np.ndarray:
    """(H, W, 3): a smooth estimate of the colours behind the product, from the sure background
    (alpha < 0.05), filled in under the product by a push-pull pyramid at a small working size."""
    import torch
    import torch.nn.functional as F

    from engines.push_pull import PYRAMID_LEVELS, push_pull

    height, width = alpha.shape
    scale = min(1.0, work / max(height, width))
    small = (max(2**PYRAMID_LEVELS, round(height * scale)), max(2**PYRAMID_LEVELS, round(width * scale)))
    image = torch.from_numpy(np.ascontiguousarray(rgb[..., :3], dtype=np.float32)).permute(2, 0, 1)[None]
    known = torch.from_numpy((alpha < 0.05).astype(np.float32))[None, None]
    # Known only where the whole small cell is background, so no product colour leaks into the estimate.
    known_small = -F.max_pool2d(-F.interpolate(known, size=small, mode="bilinear", align_corners=False), 3, 1, 1)
    known_small = (known_small > 0.99).float()
    image_small = F.interpolate(image, size=small, mode="area")
    filled = push_pull(image_small, known_small)
    return F.interpolate(filled, size=(height, width), mode="bilinear", align_corners=False)[0].permute(1, 2, 0).numpy()
