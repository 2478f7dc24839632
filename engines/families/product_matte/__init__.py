"""product_matte: the product's soft alpha matte in front of any background (ProductMatte, `network.py`).

A matting engine never tiles: which pixels are product is a whole-photo question, so the network sees the
photo shrunk to `WORK_SIDE` on its long side and `engines.matting` brings the matte back to full
resolution, snapped to the photo's edges. Trained on catalogue products cut from their white grounds and
composited over other backgrounds (`engines/training/matte_train.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engines.families.base import Family
from engines.pins import builtin_weights
from engines.spec import ModelSpec, Task, WeightsRef

WORK_SIDE = 256  # the long side the network sees (the scale it was trained at: 256-px composites); one call per photo
_DEFAULT_PARAMS = {"widths": [16, 32, 64, 96, 128]}


def _spec(model_id: str, weights: WeightsRef, description: str, params: Mapping[str, Any],
          license: str = "Apache-2.0") -> ModelSpec:
    return ModelSpec(
        id=model_id,
        task=Task.MATTING,
        scale=1,
        in_channels=3,
        out_channels=1,
        size_multiple=32,
        min_size=32,
        precisions=("fp32", "fp16", "bf16"),
        tile_size=WORK_SIDE,
        tile_overlap=0,
        weights=weights,
        architecture="ProductMatte",
        arch_params=dict(params),
        description=description,
        license=license,
    )


MATTE = _spec("retouch-matte", builtin_weights("retouch-matte"),
              "product matting: the product's alpha in front of any background", _DEFAULT_PARAMS)

SPECS: tuple[ModelSpec, ...] = (MATTE,)
DEFAULTS: dict[tuple[Task, int], str] = {(Task.MATTING, 1): MATTE.id}


def spec_for_weights(model_id: str, weights: WeightsRef, params: Mapping[str, Any]) -> ModelSpec:
    """A ProductMatte file trained by an operator (`retouch train retouch-matte ...`)."""
    return _spec(model_id, weights, "operator-trained ProductMatte", {**_DEFAULT_PARAMS, **params},
                 license="unknown (operator-supplied)")


FAMILY = Family(
    name="product_matte",
    task=Task.MATTING,
    architecture="ProductMatte",
    network_path="engines.families.product_matte.network:ProductMatte",
    specs=SPECS,
    defaults=DEFAULTS,
    spec_for_weights=spec_for_weights,
    training="engines.training.subcommands:register_product_matte",
)
