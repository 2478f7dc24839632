"""Looks: where the colours go after the tone engine has made a photo neutral.

A look is a global colour transform relative to neutral: per-channel tone curves (brightness, contrast,
warmth) and a saturation factor. `neutral` changes nothing; `bright` lifts the mid-tones and adds a little
colour; a shop's own look is fitted from its reference photos (`retouch look fit REF... -o look.json`):
the tone engine makes each reference neutral, and the curves and saturation that lead from those neutral
versions back to the references are the shop's style. Because it is relative to neutral, a look never
pulls a black jacket towards the average brightness of the references, as matching absolute statistics
would.

Applied as a 17^3 3D LUT (`engines.tone.apply_params`): ~30 ms per megapixel whatever the look.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from worker.errors import InvalidRequest

KNOTS = np.linspace(0.0, 1.0, 9)
LUT_SIZE = 17
_LUMA = np.array([0.299, 0.587, 0.114])


@dataclass(frozen=True)
class Look:
    """curves: per channel (R, G, B), the output at each of `KNOTS` (piecewise linear between them)."""

    name: str
    curves: tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]
    saturation: float = 1.0

    def to_json(self) -> str:
        return json.dumps({"name": self.name, "curves": [list(c) for c in self.curves],
                           "saturation": self.saturation}, indent=2)

    @classmethod
    def from_dict(cls, data: dict) -> Look:
        curves = tuple(tuple(float(v) for v in curve) for curve in data["curves"])
        if len(curves) != 3 or any(len(c) != len(KNOTS) for c in curves):
            raise ValueError(f"a look has 3 curves of {len(KNOTS)} points")
        if any(np.any(np.diff(c) < -1e-6) for c in curves):
            raise ValueError("a look's curves must not decrease (they would invert tones)")
        saturation = float(data.get("saturation", 1.0))
        if not 0.0 <= saturation <= 2.0:
            raise ValueError(f"saturation {saturation} is outside [0, 2]")
        return cls(name=str(data.get("name", "custom")), curves=curves, saturation=saturation)  # type: ignore[arg-type]

    def lut(self) -> np.ndarray:
        """(3, s, s, s) as (c, r, g, b): the look sampled on a grid."""
        grid = np.linspace(0.0, 1.0, LUT_SIZE)
        r, g, b = np.meshgrid(grid, grid, grid, indexing="ij")
        rgb = np.stack([np.interp(channel, KNOTS, curve) for channel, curve in zip((r, g, b), self.curves,
                                                                                   strict=True)], axis=-1)
        luma = (rgb * _LUMA).sum(axis=-1, keepdims=True)
        rgb = np.clip(luma + self.saturation * (rgb - luma), 0.0, 1.0)
        return rgb.transpose(3, 0, 1, 2).astype(np.float32)


def _identity_curve() -> tuple[float, ...]:
    return tuple(float(k) for k in KNOTS)


def _lift(gamma: float) -> tuple[float, ...]:
    return tuple(float(k**gamma) for k in KNOTS)


BUILTIN_LOOKS = {
    "neutral": Look("neutral", (_identity_curve(),) * 3),  # type: ignore[arg-type]
    # Mid-tones lifted by about a third of a stop, black and white points kept; 8 % more colour.
    "bright": Look("bright", (_lift(0.85),) * 3, saturation=1.08),  # type: ignore[arg-type]
}


def load_look(name: str) -> Look:
    """A built-in look by name, or a look JSON from a path or `s3://` URI; InvalidRequest if unusable."""
    if name in BUILTIN_LOOKS:
        return BUILTIN_LOOKS[name]
    return _load_look_file(name)


@cache
def _load_look_file(source: str) -> Look:
    try:
        if source.startswith("s3://"):
            from engines.weights_io import s3_client
            from worker.settings import StorageSettings

            bucket, _, key = source[5:].partition("/")
            client = s3_client(StorageSettings().s3_endpoint_url)  # the worker's store (MinIO, RGW, moto)
            text = client.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        else:
            text = Path(source).read_text()
        return Look.from_dict(json.loads(text))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InvalidRequest(f"look {source!r} is neither {', '.join(BUILTIN_LOOKS)} nor a usable look file: "
                             f"{error}") from None
    except Exception as error:  # botocore errors: the look's object is missing or unreadable
        raise InvalidRequest(f"look {source!r} could not be read: {error}") from None


def apply_look(pixels: np.ndarray, look: Look) -> np.ndarray:
    """(H, W, 3|4) float in [0, 1] -> the same with the look applied to RGB (alpha kept)."""
    if look.name == "neutral" and look == BUILTIN_LOOKS["neutral"]:
        return pixels
    from engines.tone import apply_params

    rgb = apply_params(pixels[..., :3], look.lut(), 0.0)
    return rgb if pixels.shape[2] == 3 else np.concatenate([rgb, pixels[..., 3:]], axis=2)


def fit_look(pairs: list[tuple[np.ndarray, np.ndarray]], name: str) -> Look:
    """The look leading from neutral to styled: `pairs` of (neutral, styled) (H, W, 3) images in [0, 1].

    Curves: per channel, the mean styled value of the neutral pixels around each knot (then made monotone).
    Saturation: the ratio of the styled to the curved images' mean distance from grey."""
    neutral = np.concatenate([n.reshape(-1, 3) for n, _ in pairs]).astype(np.float64)
    styled = np.concatenate([s.reshape(-1, 3) for _, s in pairs]).astype(np.float64)
    width = KNOTS[1] - KNOTS[0]
    curves = []
    for c in range(3):
        points = []
        for knot in KNOTS:
            near = np.abs(neutral[:, c] - knot) < width / 2
            # Knots with too few pixels keep the identity: no evidence of a style there.
            points.append(float(styled[near, c].mean()) if near.sum() >= 50 else float(knot))
        curves.append(tuple(np.maximum.accumulate(np.clip(points, 0.0, 1.0)).tolist()))
    curved = np.stack([np.interp(neutral[:, c], KNOTS, curves[c]) for c in range(3)], axis=1)

    def colourfulness(x: np.ndarray) -> float:
        return float(np.abs(x - (x @ _LUMA)[:, None]).mean())

    saturation = float(np.clip(colourfulness(styled) / max(colourfulness(curved), 1e-6), 0.5, 1.5))
    return Look(name=name, curves=tuple(curves), saturation=round(saturation, 4))  # type: ignore[arg-type]
