"""Model families: one folder each, one line each in `FAMILIES`.

A family folder holds its network (`network.py`) and, in its `__init__.py`, its specs, defaults and
`spec_for_weights` as one `Family` value (`engines.families.base`). The registry, the weights loader,
`retouch models list` and the trainer find everything through `FAMILIES`; adding a family is a folder
and a line here. Importing this module imports no torch.
"""

from __future__ import annotations

from engines.errors import WeightsError
from engines.families import compact_denoiser, compact_inpainter, compact_sr, plain_sr, product_matte, tone_lut
from engines.families.base import Family

FAMILIES: tuple[Family, ...] = (
    compact_sr.FAMILY,
    compact_denoiser.FAMILY,
    compact_inpainter.FAMILY,
    plain_sr.FAMILY,
    tone_lut.FAMILY,
    product_matte.FAMILY,
)


def family_for_architecture(architecture: str) -> Family:
    """The family whose network is written `architecture` in safetensors metadata; WeightsError if none."""
    for family in FAMILIES:
        if family.architecture == architecture:
            return family
    raise WeightsError(f"architecture {architecture!r} is not one of {sorted(f.architecture for f in FAMILIES)}")


def architectures() -> dict[str, type]:
    """Network class per architecture name (imports torch)."""
    return {family.architecture: family.network() for family in FAMILIES}


__all__ = ["FAMILIES", "Family", "architectures", "family_for_architecture"]
