"""compact_sr: the project's own compact super-resolution engines (CompactSR, `network.py`).

The sha256 literals below pin the shipped `engines/weights/<id>.safetensors`; whoever ships new weights
updates them (one literal per model). None means "not shipped yet": loading then fails with WeightsError.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engines.families.base import Family
from engines.pins import builtin_weights
from engines.spec import ModelSpec, Task, WeightsRef

# CompactSR(features=48, blocks=8): receptive field blocks + 2 = 10 LR pixels; 16 leaves slack for the
# bicubic skip and keeps tiled == whole-image to float rounding (tests/engines/test_tiling.py measures it).
_ARCH_PARAMS = {"features": 48, "blocks": 8}
_TILE_SIZE = 256  # LR pixels: a 256x256 tile is 1024x1024 out at x4, ~0.3 GB of activations in fp32
_TILE_OVERLAP = 16


def _spec(model_id: str, scale: int, weights: WeightsRef, description: str,
          arch_params: Mapping[str, Any] | None = None, tile_overlap: int = _TILE_OVERLAP,
          license: str = "Apache-2.0") -> ModelSpec:
    return ModelSpec(
        id=model_id,
        task=Task.SUPER_RESOLUTION,
        scale=scale,
        in_channels=3,
        out_channels=3,
        size_multiple=1,
        min_size=1,
        precisions=("fp32", "fp16", "bf16", "int8"),  # int8: measured bound in tests/engines/test_precision.py
        tile_size=_TILE_SIZE,
        tile_overlap=tile_overlap,
        weights=weights,
        architecture="CompactSR",
        arch_params=dict(arch_params) if arch_params is not None else {"scale": scale, **_ARCH_PARAMS},
        description=description,
        license=license,
    )


SR_X2_BICUBIC = _spec(
    "retouch-sr-x2-bicubic",
    2,
    builtin_weights("retouch-sr-x2-bicubic"),
    "x2 super-resolution for clean, bicubic-like downscaled images",
)

SR_X4_BICUBIC = _spec(
    "retouch-sr-x4-bicubic",
    4,
    builtin_weights("retouch-sr-x4-bicubic"),
    "x4 super-resolution for clean, bicubic-like downscaled images",
)

SR_X2_REAL = _spec(
    "retouch-sr-x2-real",
    2,
    builtin_weights("retouch-sr-x2-real"),
    "x2 super-resolution for real photos (blur, noise, JPEG)",
)

SR_X4_REAL = _spec(
    "retouch-sr-x4-real",
    4,
    builtin_weights("retouch-sr-x4-real"),
    "x4 super-resolution for real photos (blur, noise, JPEG)",
)

SPECS: tuple[ModelSpec, ...] = (SR_X2_BICUBIC, SR_X4_BICUBIC, SR_X2_REAL, SR_X4_REAL)

# The defaults for real photos are plain_sr's perceptual models, which beat these on every measure of
# `retouch eval perceptual` (their cards hold the tables); these stay registered for the standard tables
# and for anyone who pins them.
DEFAULTS: dict[tuple[Task, int], str] = {}


def spec_for_weights(model_id: str, weights: WeightsRef, params: Mapping[str, Any]) -> ModelSpec:
    """A CompactSR file trained by an operator (`retouch train`), possibly deeper than ours."""
    from engines.families.compact_sr.network import receptive_field

    blocks = {"blocks": int(params["blocks"])} if "blocks" in params else {}
    overlap = max(_TILE_OVERLAP, receptive_field(**blocks) + 6)
    return _spec(model_id, int(params.get("scale", 2)), weights, "operator-trained CompactSR", params,
                 tile_overlap=overlap, license="unknown (operator-supplied)")


FAMILY = Family(
    name="compact_sr",
    task=Task.SUPER_RESOLUTION,
    architecture="CompactSR",
    network_path="engines.families.compact_sr.network:CompactSR",
    specs=SPECS,
    defaults=DEFAULTS,
    spec_for_weights=spec_for_weights,
    training="engines.training.subcommands:register_compact_sr",
)
