"""One explicit registry of model specs, built in one place (`builtin_registry`) and passed in as a value.

No import-time registration and no decorators: `builtin_registry` iterates `engines.families.FAMILIES`
(one folder and one line per family). Tests build their own `Registry` with whatever specs they need.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from engines.errors import UnknownEngine
from engines.spec import ModelSpec, Task

__all__ = ["Registry", "builtin_registry"]


class Registry:
    """An ordered set of `ModelSpec`s keyed by id, with a per-(task, scale) default."""

    def __init__(self, specs: Iterable[ModelSpec] = (), defaults: dict[tuple[Task, int], str] | None = None):
        self._specs: dict[str, ModelSpec] = {}
        self._defaults: dict[tuple[Task, int], str] = {}
        for spec in specs:
            self.add(spec)
        for (task, scale), model_id in (defaults or {}).items():
            self.set_default(task, scale, model_id)

    def add(self, spec: ModelSpec) -> None:
        """Add a spec; a second spec with an id already present is refused with ValueError."""
        if spec.id in self._specs:
            raise ValueError(f"duplicate engine id {spec.id!r}")
        self._specs[spec.id] = spec

    def set_default(self, task: Task | str, scale: int, model_id: str) -> None:
        """Make `model_id` the answer to `default_for(task, scale)`; it must be registered and match."""
        spec = self.get(model_id)
        task = Task(task)
        if spec.task is not task or spec.scale != scale:
            raise ValueError(f"{model_id} is {spec.task} x{spec.scale}, not a default for {task} x{scale}")
        self._defaults[(task, scale)] = model_id

    def get(self, model_id: str) -> ModelSpec:
        """The spec with this id; raises UnknownEngine (permanent) when absent."""
        try:
            return self._specs[model_id]
        except KeyError:
            raise UnknownEngine(f"unknown engine {model_id!r}; known: {', '.join(self._specs) or 'none'}") from None

    def default_for(self, task: Task | str, scale: int = 1) -> ModelSpec:
        """The default engine for a task and scale: the one set explicitly, else the first registered match.

        Raises UnknownEngine when no registered engine does that task at that scale.
        """
        task = Task(task)
        if (task, scale) in self._defaults:
            return self._specs[self._defaults[(task, scale)]]
        for spec in self._specs.values():
            if spec.task is task and spec.scale == scale:
                return spec
        raise UnknownEngine(f"no engine for {task} at scale {scale}")

    def __iter__(self) -> Iterator[ModelSpec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._specs


def builtin_registry() -> Registry:
    """The project's own engines: every family's specs and defaults."""
    from engines.families import FAMILIES

    registry = Registry([spec for family in FAMILIES for spec in family.specs])
    for family in FAMILIES:
        for (task, scale), model_id in family.defaults.items():
            registry.set_default(task, scale, model_id)
    return registry
