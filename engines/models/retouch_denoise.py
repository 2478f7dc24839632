"""The project's own blind denoiser engine (CompactDenoiser, `engines/archs/compact_denoiser.py`).

The sha256 literal pins the shipped `engines/weights/retouch-denoise.safetensors`; whoever ships new weights
updates it. None means "not shipped yet": loading then fails with WeightsError.
"""

from __future__ import annotations

from engines.spec import ModelSpec, Task, WeightsRef

DENOISE = ModelSpec(
    id="retouch-denoise",
    task=Task.DENOISE,
    scale=1,
    in_channels=3,
    out_channels=3,
    # Two stride-2 downsamplings: inputs must be multiples of 4, and tiles must start on multiples of 4
    # (shared tiling code aligns them) or the strided convs would sample a different grid.
    size_multiple=4,
    min_size=4,
    precisions=("fp32", "fp16", "bf16"),
    tile_size=256,
    # CompactDenoiser(features=32, blocks=2) has a receptive-field radius of 42 input pixels; 48 is the
    # next multiple of size_multiple.
    tile_overlap=48,
    weights=WeightsRef(
        file="retouch-denoise.safetensors",
        sha256="7e93d2894b5c3c713227ac3470d491bf38d9ccd43d7234d4d7050071244bc845",
    ),
    architecture="CompactDenoiser",
    arch_params={"features": 32, "blocks": 2},
    description="blind colour denoiser and JPEG-artifact remover (noise sigma 0-50, JPEG 30-95)",
    license="Apache-2.0",
)

SPECS: tuple[ModelSpec, ...] = (DENOISE,)

DEFAULTS: dict[tuple[Task, int], str] = {(Task.DENOISE, 1): DENOISE.id}
