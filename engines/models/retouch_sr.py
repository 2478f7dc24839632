"""The project's own compact super-resolution engines (CompactSR, `engines/archs/compact_sr.py`).

The sha256 literals below pin the shipped `engines/weights/<id>.safetensors`; whoever ships new weights
updates them (one literal per model). None means "not shipped yet": loading then fails with WeightsError.
"""

from __future__ import annotations

from engines.spec import ModelSpec, Task, WeightsRef

# CompactSR(features=48, blocks=8): receptive field blocks + 2 = 10 LR pixels; 16 leaves slack for the
# bicubic skip and keeps tiled == whole-image to float rounding (tests/engines/test_tiling.py measures it).
_ARCH_PARAMS = {"features": 48, "blocks": 8}
_TILE_SIZE = 256  # LR pixels: a 256x256 tile is 1024x1024 out at x4, ~0.3 GB of activations in fp32
_TILE_OVERLAP = 16


def _spec(model_id: str, scale: int, weights: WeightsRef, description: str) -> ModelSpec:
    return ModelSpec(
        id=model_id,
        task=Task.SUPER_RESOLUTION,
        scale=scale,
        in_channels=3,
        out_channels=3,
        size_multiple=1,
        min_size=1,
        precisions=("fp32", "fp16", "bf16"),
        tile_size=_TILE_SIZE,
        tile_overlap=_TILE_OVERLAP,
        weights=weights,
        architecture="CompactSR",
        arch_params={"scale": scale, **_ARCH_PARAMS},
        description=description,
        license="Apache-2.0",
    )


SR_X2_BICUBIC = _spec(
    "retouch-sr-x2-bicubic",
    2,
    WeightsRef(
        file="retouch-sr-x2-bicubic.safetensors",
        sha256="58674fee98ee0403656181e2a4931f186ef021beec25d4e01f01fdf83d211af9",
    ),
    "x2 super-resolution for clean, bicubic-like downscaled images",
)

SR_X4_BICUBIC = _spec(
    "retouch-sr-x4-bicubic",
    4,
    WeightsRef(
        file="retouch-sr-x4-bicubic.safetensors",
        sha256="b90fe78bc7c81c8fefab9c622e7d7e932f5dfff0e2ce4989bd1289cb094fe2ff",
    ),
    "x4 super-resolution for clean, bicubic-like downscaled images",
)

SR_X2_REAL = _spec(
    "retouch-sr-x2-real",
    2,
    WeightsRef(
        file="retouch-sr-x2-real.safetensors",
        sha256="3ca1695b575f1f8250e6b99547f3f0ebaeabd05b9ed859ac14d64810ffe43ba4",
    ),
    "x2 super-resolution for real photos (blur, noise, JPEG)",
)

SR_X4_REAL = _spec(
    "retouch-sr-x4-real",
    4,
    WeightsRef(
        file="retouch-sr-x4-real.safetensors",
        sha256="0c7fc6bd27724381879ecba955f688b257bfa1ce92e389c2b607c6e0f0b59f49",
    ),
    "x4 super-resolution for real photos (blur, noise, JPEG)",
)

SPECS: tuple[ModelSpec, ...] = (SR_X2_BICUBIC, SR_X4_BICUBIC, SR_X2_REAL, SR_X4_REAL)

# Real photos are what sellers upload, so the "real" variants are the defaults.
DEFAULTS: dict[tuple[Task, int], str] = {
    (Task.SUPER_RESOLUTION, 2): SR_X2_REAL.id,
    (Task.SUPER_RESOLUTION, 4): SR_X4_REAL.id,
}
