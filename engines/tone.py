"""How a tone engine runs at full resolution: thumbnail in, per-pixel transform out.

The network (`engines.families.tone_lut`) sees only a thumbnail and returns the parameters of a
per-pixel transform (a 3D LUT and a vignetting gain). Here they are applied to the whole photo with
Pillow's `Color3DLUT` (trilinear, in C, on bands of rows across the cores): 30-40 ms per megapixel on
2 cores with the conversions, whatever the network cost.
The lookup runs on 8-bit values, which is what the encoder writes for every format but 16-bit PNG.

`estimates` measures what the transform does to the photo's thumbnail: the exposure change, the colour
cast it removes from what ends up neutral, and the mean colour difference the quality gate judges.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache

import numpy as np

THUMBNAIL_SIDE = 128


def thumbnail(rgb: np.ndarray, side: int = THUMBNAIL_SIDE) -> np.ndarray:
    """(1, 3, side, side) float32: the whole photo (float in [0, 1], or its `to_uint8`) squashed to a square,
    as the network was trained."""
    from PIL import Image

    pixels = rgb if rgb.dtype == np.uint8 else to_uint8(rgb)
    small = Image.fromarray(pixels).resize((side, side), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return (np.asarray(small, dtype=np.float32) / 255.0).transpose(2, 0, 1)[None].copy()


def to_uint8(rgb: np.ndarray, scale: np.ndarray | None = None) -> np.ndarray:
    """RGB of (H, W, 3|4) float in [0, 1] as rounded 8-bit: what the lookup and the thumbnail read.

    scale: an (H, W) gain applied in the same pass (the vignetting correction), so a photo is read once."""
    factor = np.float32(255.0) if scale is None else (np.float32(255.0) * scale)[..., None]
    scaled = np.multiply(rgb[..., :3], factor, dtype=np.float32)  # in place from here: one float copy per photo
    np.clip(scaled, 0.0, 255.0, out=scaled)
    scaled += 0.5
    return scaled.astype(np.uint8)


def unpack(params: np.ndarray) -> tuple[np.ndarray, float]:
    """Network output (1, 1, 1, 3 * size**3 + 1) -> (lut (3, size, size, size) as (c, r, g, b), gain)."""
    flat = np.asarray(params, dtype=np.float32).reshape(-1)
    size = round(((flat.size - 1) / 3) ** (1 / 3))
    if 3 * size**3 + 1 != flat.size:
        raise ValueError(f"{flat.size} tone parameters are not a 3 x n^3 LUT plus a gain")
    return flat[:-1].reshape(3, size, size, size), float(flat[-1])


def radial_r2(height: int, width: int) -> np.ndarray:
    """Squared normalised distance from the centre (0 centre, 1 corners), as `network.radial_r2`."""
    v = np.linspace(-1.0, 1.0, height, dtype=np.float32)[:, None]
    u = np.linspace(-1.0, 1.0, width, dtype=np.float32)[None, :]
    return (u * u) / 2.0 + (v * v) / 2.0


# Below this corner gain (0.1 % brighter corners) vignetting is not worth a pass over the photo.
MIN_VIGNETTING_GAIN = 1e-3


def apply_params(rgb: np.ndarray, lut: np.ndarray, gain: float, quantised: np.ndarray | None = None) -> np.ndarray:
    """Apply the vignetting gain, then the LUT, to (H, W, 3|4) float in [0, 1]; returns float32 (H, W, 3).

    quantised: `to_uint8(rgb)` when the caller has it already (the engine made its thumbnail from it)."""
    from PIL import Image, ImageFilter

    size = lut.shape[1]
    if abs(gain) > MIN_VIGNETTING_GAIN:
        radial = radial_r2(*rgb.shape[:2])
        radial *= np.float32(gain)
        radial += np.float32(1.0)
        pixels = to_uint8(rgb, radial)
    else:
        pixels = quantised if quantised is not None else to_uint8(rgb)
    # Pillow's table: channels fastest, then r, then g, then b; ours is (c, r, g, b).
    table = np.clip(lut, 0.0, 1.0).transpose(3, 2, 1, 0).reshape(-1)
    lookup = ImageFilter.Color3DLUT((size, size, size), table)
    out = np.empty_like(pixels)
    # Pillow looks up without the GIL: bands of rows on every core (2 cores: 23 -> 16 ms per megapixel).
    bands = _row_bands(pixels.shape[0])

    def look_up(band: slice) -> None:
        out[band] = np.asarray(Image.fromarray(pixels[band]).filter(lookup))

    if len(bands) == 1:
        look_up(bands[0])
    else:
        list(_pool().map(look_up, bands))
    return np.multiply(out, np.float32(1 / 255), dtype=np.float32)


def _row_bands(height: int, min_rows: int = 256) -> list[slice]:
    count = max(1, min(os.cpu_count() or 1, height // min_rows))
    edges = np.linspace(0, height, count + 1).astype(int)
    return [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]


@cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="tone-lookup")


@dataclass(frozen=True)
class ToneEstimates:
    """What a predicted transform does to this photo, in photographers' terms (measured on its thumbnail).

    exposure_stops: change of the mean luminance, in linear light (+1: the photo was a stop too dark).
    cast_removed: mean CIELAB (a*, b*) taken away from the pixels the correction leaves near-neutral
        (whites, greys: chroma below 8), i.e. the cast they had (+b*: yellow, -b*: blue; +a*: magenta).
    vignetting_gain: the corner gain applied (0 = none).
    mean_delta_e: the mean CIEDE2000 change, what the quality gate compares with its threshold.
    """

    exposure_stops: float
    cast_removed: tuple[float, float]
    vignetting_gain: float
    mean_delta_e: float

    def as_dict(self) -> dict:
        return {"exposure_stops": round(self.exposure_stops, 3),
                "cast_removed_ab": [round(v, 2) for v in self.cast_removed],
                "vignetting_gain": round(self.vignetting_gain, 3), "mean_delta_e": round(self.mean_delta_e, 2)}


def _linear(v: np.ndarray) -> np.ndarray:
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def estimates(before: np.ndarray, after: np.ndarray, gain: float) -> ToneEstimates:
    """From a thumbnail (H, W, 3) before and after the transform."""
    from skimage.color import deltaE_ciede2000, rgb2lab

    weights = np.array([0.2126, 0.7152, 0.0722])
    y_before = float((_linear(before) @ weights).mean())
    y_after = float((_linear(after) @ weights).mean())
    lab_before, lab_after = rgb2lab(before), rgb2lab(after)
    neutral = np.hypot(lab_after[..., 1], lab_after[..., 2]) < 8.0
    cast = (lab_before[neutral][:, 1:] - lab_after[neutral][:, 1:]).mean(axis=0) if neutral.any() else np.zeros(2)
    return ToneEstimates(exposure_stops=math.log2(max(y_after, 1e-4) / max(y_before, 1e-4)),
                         cast_removed=(float(cast[0]), float(cast[1])), vignetting_gain=gain,
                         mean_delta_e=float(deltaE_ciede2000(lab_before, lab_after).mean()))


@dataclass(frozen=True)
class ToneTransform:
    """A tone engine's prediction for one photo: apply it (any resolution), or preview it on the thumbnail
    it was predicted from, which is what the quality gate and `estimates` judge."""

    lut: np.ndarray  # (3, size, size, size) as (c, r, g, b)
    gain: float
    thumbnail: np.ndarray  # (side, side, 3) float in [0, 1]: the photo as the network saw it

    @classmethod
    def from_params(cls, params: np.ndarray, seen: np.ndarray) -> ToneTransform:
        """`params` the network returned for the thumbnail `seen` ((1, 3, side, side), as `thumbnail`)."""
        lut, gain = unpack(params)
        return cls(lut=lut, gain=gain, thumbnail=seen[0].transpose(1, 2, 0))

    def apply(self, rgb: np.ndarray, quantised: np.ndarray | None = None) -> np.ndarray:
        return apply_params(rgb, self.lut, self.gain, quantised)

    def preview(self) -> tuple[np.ndarray, np.ndarray]:
        """(the thumbnail, the thumbnail corrected): the photo before and after, at a glance."""
        return self.thumbnail, self.apply(self.thumbnail)
