"""plain_sr: perceptual super-resolution for listing photos (PlainSR, `network.py`).

Trained on the catalogue photos with pixel, gradient, distillation (Real-ESRGAN x4plus as teacher) and
adversarial losses (`engines/training/perceptual_train.py`); the default for real photos where it beats
the compact_sr models (its model cards hold the tables).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engines.families.base import Family
from engines.pins import builtin_weights
from engines.spec import ModelSpec, Task, WeightsRef

_TILE_SIZE = 192  # LR pixels: 768x768 out at x4; 64-channel activations of 26 layers stay ~0.3 GB in fp32


def _tile_overlap(blocks: int) -> int:
    from engines.families.plain_sr.network import receptive_field

    return receptive_field(blocks) + 6  # slack over the receptive field: tiled == whole image to rounding


def _spec(model_id: str, weights: WeightsRef, description: str, params: Mapping[str, Any],
          license: str = "Apache-2.0") -> ModelSpec:
    return ModelSpec(
        id=model_id,
        task=Task.SUPER_RESOLUTION,
        scale=int(params["scale"]),
        in_channels=3,
        out_channels=3,
        size_multiple=1,
        min_size=1,
        precisions=("fp32", "fp16", "bf16", "int8"),  # int8: measured bound in tests/engines/test_precision.py
        tile_size=_TILE_SIZE,
        tile_overlap=_tile_overlap(int(params.get("blocks", 12))),
        weights=weights,
        architecture="PlainSR",
        arch_params=dict(params),
        description=description,
        license=license,
    )


SR_X4_PERCEPTUAL = _spec("retouch-sr-x4-perceptual", builtin_weights("retouch-sr-x4-perceptual"),
                         "x4 super-resolution for listing photos, trained for perceived quality",
                         {"scale": 4, "features": 64, "blocks": 12})
SR_X2_PERCEPTUAL = _spec("retouch-sr-x2-perceptual", builtin_weights("retouch-sr-x2-perceptual"),
                         "x2 super-resolution for listing photos, trained for perceived quality",
                         {"scale": 2, "features": 64, "blocks": 6})

SPECS: tuple[ModelSpec, ...] = (SR_X4_PERCEPTUAL, SR_X2_PERCEPTUAL)

# The auto defaults for super-resolution: measured against compact_sr's "real" models and Real-ESRGAN x4plus
# in the model cards.
DEFAULTS: dict[tuple[Task, int], str] = {
    (Task.SUPER_RESOLUTION, 2): SR_X2_PERCEPTUAL.id,
    (Task.SUPER_RESOLUTION, 4): SR_X4_PERCEPTUAL.id,
}


def spec_for_weights(model_id: str, weights: WeightsRef, params: Mapping[str, Any]) -> ModelSpec:
    """A PlainSR file trained by an operator (`retouch train retouch-sr-x4-perceptual ...`)."""
    return _spec(model_id, weights, "operator-trained PlainSR", {"scale": 4, "features": 64, "blocks": 12, **params},
                 license="unknown (operator-supplied)")


FAMILY = Family(
    name="plain_sr",
    task=Task.SUPER_RESOLUTION,
    architecture="PlainSR",
    network_path="engines.families.plain_sr.network:PlainSR",
    specs=SPECS,
    defaults=DEFAULTS,
    spec_for_weights=spec_for_weights,
    training="engines.training.subcommands:register_plain_sr",
)
