"""The sha256 each shipped weights file must hash to, kept as data beside the files (`weights/sha256.json`).

Specs name their weights with `builtin_weights(model_id)`; `retouch train ... --ship` re-pins with `pin`.
Nothing rewrites Python source to ship a model. An id without a pin means "not shipped yet": loading it
fails with WeightsError.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from engines.spec import WeightsRef

PINS_FILE = Path(__file__).resolve().parent / "weights" / "sha256.json"


@cache
def _pins(path: Path = PINS_FILE) -> dict[str, str]:
    return json.loads(path.read_text()) if path.exists() else {}


def builtin_weights(model_id: str) -> WeightsRef:
    """`engines/weights/<model_id>.safetensors` with its pinned sha256 (None when not shipped yet)."""
    return WeightsRef(file=f"{model_id}.safetensors", sha256=_pins().get(model_id))


def pin(model_id: str, sha256: str, path: Path = PINS_FILE) -> None:
    """Record `sha256` as the hash `model_id`'s shipped file must have."""
    pins = dict(json.loads(path.read_text())) if path.exists() else {}
    pins[model_id] = sha256.lower()
    path.write_text(json.dumps(dict(sorted(pins.items())), indent=2) + "\n")
    _pins.cache_clear()
