"""What a model family is: its networks, specs and defaults, and how a file of its format becomes a spec.

A family is one folder under `engines/families/` whose `__init__.py` defines `FAMILY`; `FAMILIES` in
`engines/families/__init__.py` lists them, one line each. Nothing here imports torch: the network class
is reached through `Family.network()`, so building the registry (the worker's planner does) stays cheap.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engines.spec import ModelSpec, Task, WeightsRef

# (model id, weights, the network's constructor arguments) -> the spec to run that file with.
SpecForWeights = Callable[[str, WeightsRef, Mapping[str, Any]], ModelSpec]


@dataclass(frozen=True)
class Family:
    """One model family.

    name: folder name, e.g. "compact_sr".
    task: what every model of the family does; masked engines (inpainting) take a mask beside the image.
    architecture: the network's name as written in its safetensors metadata (`arch`).
    network_path: "module:Class" of the network, imported on first use.
    specs / defaults: the shipped models and which one serves each (task, scale).
    spec_for_weights: builds the spec for a file of this family loaded by path (operator-trained weights):
        task, scale, size rules, tiling and working resolution come from the family, never guessed.
    training: "module:function" registering the family's `retouch train <family-model>` sub-command, if any.
    """

    name: str
    task: Task
    architecture: str
    network_path: str
    specs: tuple[ModelSpec, ...]
    defaults: Mapping[tuple[Task, int], str]
    spec_for_weights: SpecForWeights
    training: str | None = None
    card_notes: Mapping[str, str] = field(default_factory=dict)

    def network(self) -> type:
        module, _, name = self.network_path.partition(":")
        return getattr(importlib.import_module(module), name)

    @property
    def masked(self) -> bool:
        return self.task is Task.INPAINT
