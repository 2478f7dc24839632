"""tone_lut: tone and colour correction by image-adaptive 3D LUTs (ToneLUT, `network.py`).

A tone engine never tiles: its network sees a thumbnail of the whole photo and returns a per-pixel
transform that `engines.tone` applies at full resolution (`Engine.process` routes Task.TONE there).
Trained self-supervised on the catalogue photos (`engines/training/tone_train.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engines.families.base import Family
from engines.pins import builtin_weights
from engines.spec import ModelSpec, Task, WeightsRef

_THUMBNAIL = 128  # the side the network sees; also the "tile" budget: one thumbnail per call


def _spec(model_id: str, weights: WeightsRef, description: str, params: Mapping[str, Any],
          license: str = "Apache-2.0") -> ModelSpec:
    return ModelSpec(
        id=model_id,
        task=Task.TONE,
        scale=1,
        in_channels=3,
        out_channels=3,
        size_multiple=1,
        min_size=1,
        # fp32 only: a LUT predicted in bf16 (8 mantissa bits) would shift colours by a level or more,
        # and the network costs a few milliseconds per photo anyway.
        precisions=("fp32",),
        tile_size=_THUMBNAIL,
        tile_overlap=0,
        weights=weights,
        architecture="ToneLUT",
        arch_params=dict(params),
        description=description,
        license=license,
    )


TONE = _spec("retouch-tone", builtin_weights("retouch-tone"),
             "tone and colour: exposure, white balance, contrast, gamma, saturation, vignetting (3D LUTs)",
             {"size": 17, "luts": 3, "features": 16, "confidence": True})

SPECS: tuple[ModelSpec, ...] = (TONE,)
DEFAULTS: dict[tuple[Task, int], str] = {(Task.TONE, 1): TONE.id}


def spec_for_weights(model_id: str, weights: WeightsRef, params: Mapping[str, Any]) -> ModelSpec:
    """A ToneLUT file trained by an operator (`retouch train retouch-tone ...`)."""
    return _spec(model_id, weights, "operator-trained ToneLUT", {"size": 17, "luts": 3, "features": 16, **params},
                 license="unknown (operator-supplied)")


FAMILY = Family(
    name="tone_lut",
    task=Task.TONE,
    architecture="ToneLUT",
    network_path="engines.families.tone_lut.network:ToneLUT",
    specs=SPECS,
    defaults=DEFAULTS,
    spec_for_weights=spec_for_weights,
    training="engines.training.subcommands:register_tone_lut",
)
