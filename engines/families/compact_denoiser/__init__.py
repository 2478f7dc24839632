"""compact_denoiser: the project's own blind denoiser engine (CompactDenoiser, `network.py`).

The sha256 literal pins the shipped `engines/weights/retouch-denoise.safetensors`; whoever ships new weights
updates it. None means "not shipped yet": loading then fails with WeightsError.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from engines.families.base import Family
from engines.pins import builtin_weights
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
    weights=builtin_weights("retouch-denoise"),
    architecture="CompactDenoiser",
    arch_params={"features": 32, "blocks": 2},
    description="blind colour denoiser and JPEG-artifact remover (noise sigma 0-50, JPEG 30-95)",
    license="Apache-2.0",
)

SPECS: tuple[ModelSpec, ...] = (DENOISE,)

DEFAULTS: dict[tuple[Task, int], str] = {(Task.DENOISE, 1): DENOISE.id}


def spec_for_weights(model_id: str, weights: WeightsRef, params: Mapping[str, Any]) -> ModelSpec:
    """A CompactDenoiser file trained by an operator: our size rules, an overlap covering its depth."""
    from engines.families.compact_denoiser.network import SIZE_MULTIPLE, receptive_field

    blocks = {"blocks": int(params["blocks"])} if "blocks" in params else {}
    overlap = -(-receptive_field(**blocks) // SIZE_MULTIPLE) * SIZE_MULTIPLE
    tile = max(DENOISE.tile_size, -(-(3 * overlap + 16) // SIZE_MULTIPLE) * SIZE_MULTIPLE)
    return dataclasses.replace(DENOISE, id=model_id, weights=weights, arch_params=dict(params), tile_size=tile,
                               tile_overlap=overlap, description="operator-trained CompactDenoiser",
                               license="unknown (operator-supplied)")


FAMILY = Family(
    name="compact_denoiser",
    task=Task.DENOISE,
    architecture="CompactDenoiser",
    network_path="engines.families.compact_denoiser.network:CompactDenoiser",
    specs=SPECS,
    defaults=DEFAULTS,
    spec_for_weights=spec_for_weights,
    training="engines.training.subcommands:register_compact_denoiser",
)
