"""Specs, errors and the registry: the contracts the worker and the trainer rely on."""

from __future__ import annotations

from dataclasses import replace

import pytest

from engines.errors import (
    BackendUnavailable,
    DeviceOutOfMemory,
    EngineError,
    InvalidInput,
    UnknownEngine,
    WeightsError,
)
from engines.families import architectures
from engines.families.compact_denoiser import DENOISE
from engines.families.compact_sr import SR_X4_REAL
from engines.registry import Registry, builtin_registry
from engines.spec import ModelSpec, Task, WeightsRef

BUILTIN_IDS = {"retouch-sr-x2-bicubic", "retouch-sr-x4-bicubic", "retouch-sr-x2-real", "retouch-sr-x4-real",
               "retouch-sr-x2-perceptual", "retouch-sr-x4-perceptual", "retouch-denoise"}


def test_error_tree_reasons_and_retryability() -> None:
    expected = {
        UnknownEngine: ("unknown_engine", False),
        WeightsError: ("bad_weights", False),
        BackendUnavailable: ("backend_unavailable", False),
        DeviceOutOfMemory: ("device_out_of_memory", True),
        InvalidInput: ("invalid_input", False),
    }
    for cls, (reason, retryable) in expected.items():
        assert issubclass(cls, EngineError)
        assert (cls.reason, cls.retryable) == (reason, retryable)
        assert cls("x").reason == reason  # readable from instances too


def test_builtin_registry_lists_the_built_in_engines_with_defaults() -> None:
    registry = builtin_registry()
    assert BUILTIN_IDS <= {s.id for s in registry}
    assert registry.default_for(Task.SUPER_RESOLUTION, 4).id == "retouch-sr-x4-perceptual"
    assert registry.default_for("super_resolution", 2).id == "retouch-sr-x2-perceptual"
    assert registry.default_for(Task.DENOISE, 1).id == "retouch-denoise"
    assert registry.default_for(Task.INPAINT, 1).id == "retouch-inpaint"
    with pytest.raises(UnknownEngine):
        registry.default_for(Task.INPAINT, 2)


def test_builtin_registry_is_built_fresh_each_call() -> None:
    # Given two registries, when one is mutated, then the other is unaffected (no global state).
    a, b = builtin_registry(), builtin_registry()
    a.add(replace(DENOISE, id="extra"))
    assert "extra" in a and "extra" not in b


def test_duplicate_ids_are_refused() -> None:
    registry = Registry([SR_X4_REAL])
    with pytest.raises(ValueError, match="duplicate"):
        registry.add(SR_X4_REAL)


def test_unknown_id_raises_unknown_engine() -> None:
    with pytest.raises(UnknownEngine) as info:
        builtin_registry().get("no-such-engine")
    assert info.value.reason == "unknown_engine"


def test_default_must_match_task_and_scale() -> None:
    registry = Registry([SR_X4_REAL, DENOISE])
    with pytest.raises(ValueError):
        registry.set_default(Task.SUPER_RESOLUTION, 2, SR_X4_REAL.id)
    # Without an explicit default the first registered match answers.
    assert registry.default_for(Task.SUPER_RESOLUTION, 4) is SR_X4_REAL


def test_builtin_specs_build_their_architectures_and_respect_receptive_fields() -> None:
    for spec in builtin_registry():
        net = architectures()[spec.architecture](**spec.arch_params)
        if spec.task in (Task.TONE, Task.MATTING):  # see the whole photo, shrunk: no tiles, no overlap
            assert spec.tile_overlap == 0 and not hasattr(net, "receptive_field"), spec.id
            continue
        assert spec.tile_overlap >= net.receptive_field, spec.id
        assert spec.tile_overlap % spec.size_multiple == 0
        assert spec.size_multiple == getattr(net, "size_multiple", 1)
        assert spec.weights.file == f"{spec.id}.safetensors"


def test_spec_validation_reports_every_problem() -> None:
    with pytest.raises(ValueError) as info:
        replace(SR_X4_REAL, scale=0, precisions=("fp16",), tile_size=10, tile_overlap=8)
    message = str(info.value)
    assert "scale" in message and "fp32" in message and "tile_size" in message


def test_spec_is_frozen_and_arch_params_read_only() -> None:
    with pytest.raises(AttributeError):
        SR_X4_REAL.scale = 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        SR_X4_REAL.arch_params["features"] = 1  # type: ignore[index]


def test_weights_ref_checks_sha256_shape() -> None:
    with pytest.raises(ValueError):
        WeightsRef("x.safetensors", "abc")
    assert WeightsRef("x", "A" * 64).sha256 == "a" * 64
    assert WeightsRef("s3://b/k.pth", None).is_s3


def test_non_sr_tasks_have_scale_one() -> None:
    with pytest.raises(ValueError):
        ModelSpec(id="d", task=Task.DENOISE, scale=2, in_channels=3, out_channels=3, size_multiple=1, min_size=1,
                  precisions=("fp32",), tile_size=64, tile_overlap=8, weights=WeightsRef("d", None),
                  architecture="X")
