"""TensorRT: the pure parts (profiles, cache keys) everywhere; build and run only with tensorrt + CUDA."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import onnx
import pytest

from engines.backends.onnx_export import INPUT_NAME, export_onnx
from engines.backends.tensorrt_backend import (
    OptimizationProfile,
    engine_cache_key,
    engine_file_name,
    profile_for,
    tensorrt_available,
)
from engines.families.compact_denoiser import DENOISE
from engines.families.compact_sr import SR_X4_REAL
from engines.tiling import plan_tiles

KEY_ARGS = {
    "model_sha256": "a" * 64, "onnx_key": "k1", "trt_version": "10.3.0", "compute_capability": (8, 9),
    "precision": "fp16", "profile": profile_for(SR_X4_REAL),
}


@pytest.mark.parametrize("spec", [SR_X4_REAL, DENOISE])
def test_profile_covers_every_tile_the_tiler_makes(spec) -> None:  # noqa: ANN001
    profile = profile_for(spec, max_batch=4)
    lo, opt, hi = profile.min, profile.opt, profile.max
    assert lo[1] == opt[1] == hi[1] == spec.in_channels
    assert all(lo[i] <= opt[i] <= hi[i] for i in range(4))
    assert hi[2] == hi[3] == spec.tile_size and opt[0] == 4
    for dim in (lo[2], lo[3], opt[2], hi[2]):
        assert dim % spec.size_multiple == 0
    # Given images from 1 pixel to several tiles (and the OOM-halved budget), every tile fits the profile.
    for h, w in [(1, 1), (1, 500), (17, 33), (250, 250), (1024, 768)]:
        for tile in (spec.tile_size, spec.tile_size // 2):
            plan = plan_tiles(h, w, tile_size=max(tile, lo[2]), margin=spec.tile_overlap, multiple=spec.size_multiple,
                              min_size=spec.min_size)
            assert lo[2] <= plan.tile_h <= hi[2] and lo[3] <= plan.tile_w <= hi[3], (h, w, tile, plan)


def test_profile_for_mask_has_one_channel() -> None:
    p = profile_for(DENOISE).for_channels(1)
    assert p.min[1] == p.opt[1] == p.max[1] == 1


def test_profile_rejects_bad_opt_batch() -> None:
    with pytest.raises(ValueError):
        profile_for(SR_X4_REAL, max_batch=2, opt_batch=3)


@pytest.mark.parametrize(
    "change",
    [{"model_sha256": "b" * 64}, {"onnx_key": "k2"}, {"trt_version": "10.4.0"}, {"compute_capability": (9, 0)},
     {"precision": "fp32"}, {"profile": profile_for(SR_X4_REAL, max_batch=8)},
     {"profile": profile_for(replace(SR_X4_REAL, tile_size=512))}],
)
def test_cache_key_changes_with_every_component(change: dict) -> None:
    assert engine_cache_key(**KEY_ARGS) != engine_cache_key(**{**KEY_ARGS, **change})


def test_cache_key_is_stable_and_file_name_readable() -> None:
    key = engine_cache_key(**KEY_ARGS)
    assert key == engine_cache_key(**dict(KEY_ARGS)) and len(key) == 64
    name = engine_file_name("retouch-sr-x4-real", key, "10.3.0", (8, 9), "fp16")
    assert name == f"retouch-sr-x4-real-trt10.3.0-sm89-fp16-{key[:16]}.engine"


def test_profile_description_is_unambiguous() -> None:
    a = OptimizationProfile((1, 3, 8, 8), (4, 3, 256, 256), (4, 3, 256, 256))
    assert a.describe() == "1x3x8x8_4x3x256x256_4x3x256x256"


def test_onnx_for_tensorrt_has_profile_input_name_and_dynamic_hw(random_models: dict, export_cache) -> None:  # noqa: ANN001
    graph = onnx.load(str(export_onnx(random_models["denoise"], export_cache)))
    onnx.checker.check_model(graph)
    (inp,) = [i for i in graph.graph.input if i.name == INPUT_NAME]
    dims = inp.type.tensor_type.shape.dim
    assert all(dims[a].dim_param for a in (0, 2, 3)), "batch/H/W must be dynamic for the optimisation profile"


@pytest.mark.gpu
@pytest.mark.skipif(not tensorrt_available(), reason="needs the tensorrt package and a CUDA device")
def test_tensorrt_builds_caches_and_matches_torch(random_models: dict, tmp_path) -> None:  # noqa: ANN001
    from engines.session import Engine

    model = random_models["sr-x4"]
    image = np.random.default_rng(0).random((300, 200, 3), dtype=np.float32)
    with Engine(model, backend="torch", device="cuda", precision="fp32", cache_dir=tmp_path) as ref:
        expected = ref.process(image)
    with Engine(model, backend="tensorrt", device="cuda", precision="fp16", cache_dir=tmp_path) as trt_engine:
        assert trt_engine.backend_name == "tensorrt"
        out = trt_engine.process(image)
    engines = list((tmp_path / "tensorrt").glob("*.engine"))
    assert len(engines) == 1
    assert np.abs(out - expected).max() <= 4 / 255  # FP16 inside TensorRT
    # A second open reuses the cached engine instead of rebuilding.
    mtime = engines[0].stat().st_mtime
    with Engine(model, backend="tensorrt", device="cuda", precision="fp16", cache_dir=tmp_path):
        pass
    assert engines[0].stat().st_mtime == mtime
