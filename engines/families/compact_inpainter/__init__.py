"""compact_inpainter: the project's own inpainting / outpainting engine (CompactInpainter, `network.py`).

Interchangeable with operator-supplied inpainting models that spandrel loads (LaMa, `MaskedImageModel
Descriptor`): same task (`inpaint`), same call `model(image, mask)` with mask 1 = generate, the same
size multiple (8; our minimum side is 64, LaMa's 16, for the push-pull pyramid) and the same tile hint as
`engines.weights_io` gives LaMa (1024), with an overlap covering the ~316 px receptive field.

How it runs (`Engine.fill`, `engines/masked_fill.py` and the model card): the canvas is shrunk so its longest
side is the spec's `work_side` (192, the canvas side it was trained at), filled there in one
tile, and the fill is upsampled and composited into the full-resolution photo, its edge feathered a few
pixels inward; thin side bands (3:4 outpainted to 4:5) are filled on strips of the canvas at 1,024 px
instead, a framing it was also trained on. Run directly at full resolution, `tile_size` keeps a 1024 px
canvas in one tile (CPU: ~1-2 s with 2 threads); larger images are tiled with a 320 px margin; the global-context vector
still differs per tile, so prefer the working-resolution path (the worker uses it).

The sha256 literal pins the shipped `engines/weights/retouch-inpaint.safetensors`; whoever ships new weights
updates it. None means "not shipped yet": loading then fails with WeightsError.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from engines.families.base import Family
from engines.pins import builtin_weights
from engines.spec import ModelSpec, Task, WeightsRef

INPAINT = ModelSpec(
    id="retouch-inpaint",
    task=Task.INPAINT,
    scale=1,
    in_channels=3,
    out_channels=3,
    # Three stride-2 stages.
    size_multiple=8,
    min_size=64,
    # fp32 only: the mask-aware global-context sum over the 1/8-resolution grid can exceed fp16's range
    # on large canvases, and no half-precision run has been measured.
    precisions=("fp32",),
    tile_size=1024,
    tile_overlap=320,  # >= the network's receptive field (316 px), a multiple of size_multiple
    weights=builtin_weights("retouch-inpaint"),
    architecture="CompactInpainter",
    arch_params={"features": 16, "bottleneck": 96, "blocks": 4},
    description="inpainting and outpainting (boxes, strokes, border bands) for product photos",
    license="Apache-2.0",
    work_side=192,  # the canvas side it was trained at (--canvas-side 192); see its card
    strips=True,  # also trained on border strips at listing resolution (--strips)
)

# The same network fine-tuned for texture on hole windows (`retouch train retouch-inpaint-texture`): holes
# that fit a window are filled on the window at up to 384 px (`crop_side`), so a 5 % box on a listing is
# filled near full resolution; bands and the largest holes take the whole-canvas and strip paths at 192 px,
# as retouch-inpaint does. Not registered until weights that beat retouch-inpaint ship: `retouch eval
# inpaint --model FILE` measures a candidate with this spec's fill paths.
INPAINT_TEXTURE = dataclasses.replace(
    INPAINT,
    id="retouch-inpaint-texture",
    weights=builtin_weights("retouch-inpaint-texture"),
    description="inpainting with texture: stickers, tags, text and clutter removed from products",
    crop_side=384,
)

SPECS: tuple[ModelSpec, ...] = (INPAINT,)

DEFAULTS: dict[tuple[Task, int], str] = {(Task.INPAINT, 1): INPAINT.id}


def spec_for_weights(model_id: str, weights: WeightsRef, params: Mapping[str, Any]) -> ModelSpec:
    """A CompactInpainter file trained by an operator: a masked engine, run like ours."""
    return dataclasses.replace(INPAINT, id=model_id, weights=weights, arch_params=dict(params),
                               description="operator-trained CompactInpainter", license="unknown (operator-supplied)")


FAMILY = Family(
    name="compact_inpainter",
    task=Task.INPAINT,
    architecture="CompactInpainter",
    network_path="engines.families.compact_inpainter.network:CompactInpainter",
    specs=SPECS,
    defaults=DEFAULTS,
    spec_for_weights=spec_for_weights,
    training="engines.training.subcommands:register_compact_inpainter",
)
