"""torch vs ONNX Runtime parity, the exported ONNX graph, and backend selection.

Measured on this machine (fp32, CPU, a 37x53 image plus a batch of two tiles): max |torch - ORT| is
8.3e-7 / 1.1e-6 / 2.8e-6 for seeded random CompactSR x2 / x4 / CompactDenoiser, and 2.4e-7 for the shipped
retouch-sr-x2-bicubic and -x4-bicubic weights. PARITY_ATOL (1e-4) is the stated tolerance:
two orders above float32 reordering noise, two below 1/255.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from engines.backends.onnx_export import INPUT_NAME, OPSET, OUTPUT_NAME, export_onnx
from engines.backends.onnxruntime_backend import OnnxRuntimeBackend
from engines.backends.torch_backend import TorchBackend
from engines.errors import BackendUnavailable, WeightsError
from engines.registry import builtin_registry
from engines.session import Engine
from engines.spec import Task
from engines.weights_io import load_builtin

PARITY_ATOL = 1e-4


def _parity(model, cache) -> float:  # noqa: ANN001
    rng = np.random.default_rng(0)
    image = rng.random((37, 53, 3), dtype=np.float32)
    m = model.spec.size_multiple
    side = model.spec.tile_size  # within the engine's budget (a matting engine's is its working side)
    tiles = rng.random((2, 3, min(side, max(8 * m, model.spec.min_size)), min(side, max(12 * m, model.spec.min_size))),
                       dtype=np.float32)
    inpaint = model.spec.task is Task.INPAINT  # its contract needs a mask (1 = fill)
    mask = (rng.random((37, 53)) < 0.2).astype(np.float32) if inpaint else None
    masks = (rng.random((2, 1, *tiles.shape[2:])) < 0.2).astype(np.float32) if inpaint else None
    with Engine(model, backend="torch", device="cpu", cache_dir=cache) as t, \
            Engine(model, backend="onnxruntime", device="cpu", cache_dir=cache) as o:
        assert (t.backend_name, o.backend_name) == ("torch", "onnxruntime")
        a, b = t.process(image, mask=mask), o.process(image, mask=mask)
        # And the raw batch hook, on a batch of two tiles.
        c, d = t.run_batch(tiles, masks), o.run_batch(tiles, masks)
    channels = 4 if model.spec.task is Task.MATTING else 3  # a matting engine returns the photo with its matte
    assert a.shape == b.shape == (37 * model.spec.scale, 53 * model.spec.scale, channels)
    return max(float(np.abs(a - b).max()), float(np.abs(c - d).max()))


@pytest.mark.parametrize("name", ["sr-x2", "sr-x4", "denoise"])
def test_torch_onnxruntime_parity_random_init(name: str, random_models: dict, export_cache) -> None:  # noqa: ANN001
    diff = _parity(random_models[name], export_cache)
    print(f"\n{name}: max |torch - onnxruntime| = {diff:.2e}")
    assert diff <= PARITY_ATOL


@pytest.mark.parametrize("model_id", sorted(s.id for s in builtin_registry()))
def test_torch_onnxruntime_parity_shipped_weights(model_id: str, export_cache) -> None:  # noqa: ANN001
    spec = builtin_registry().get(model_id)
    try:
        model = load_builtin(spec)
    except WeightsError as exc:
        pytest.skip(f"{model_id}: shipped weights not available yet ({exc})")
    diff = _parity(model, export_cache)
    print(f"\n{model_id}: max |torch - onnxruntime| = {diff:.2e}")
    assert diff <= PARITY_ATOL


@pytest.mark.parametrize("name", ["sr-x4", "denoise"])
def test_exported_onnx_is_valid_with_dynamic_shapes(name: str, random_models: dict, export_cache) -> None:  # noqa: ANN001
    # The TensorRT builder consumes this same file: names and dynamic dims are what its profile expects.
    path = export_onnx(random_models[name], export_cache)
    graph = onnx.load(str(path))
    onnx.checker.check_model(graph, full_check=True)
    assert max(o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")) >= max(17, OPSET)
    (inp,) = graph.graph.input
    (out,) = graph.graph.output
    assert (inp.name, out.name) == (INPUT_NAME, OUTPUT_NAME)
    dims = inp.type.tensor_type.shape.dim
    assert len(dims) == 4 and dims[1].dim_value == 3
    for axis in (0, 2, 3):  # batch, height, width are symbolic, not fixed numbers
        assert dims[axis].dim_param and not dims[axis].dim_value


def test_export_is_cached_by_weights_hash(random_models: dict, export_cache, make_random) -> None:  # noqa: ANN001
    first = export_onnx(random_models["sr-x2"], export_cache)
    again = export_onnx(random_models["sr-x2"], export_cache)
    other = make_random(random_models["sr-x2"].spec, seed=7)
    assert first == again
    assert other.weights_sha256 != random_models["sr-x2"].weights_sha256
    # (Not exported here: a different hash names a different file, which is what the key test asserts.)
    from engines.backends.onnx_export import export_key

    assert export_key(other) != export_key(random_models["sr-x2"])


def test_auto_on_cpu_picks_onnxruntime(random_models: dict, export_cache) -> None:  # noqa: ANN001
    with Engine(random_models["denoise"], device="cpu", cache_dir=export_cache) as engine:
        assert engine.backend_name == "onnxruntime" and engine.device == "cpu"


def test_unavailable_backends_are_refused_with_reason(random_models: dict, export_cache) -> None:  # noqa: ANN001
    model = random_models["sr-x2"]
    with pytest.raises(BackendUnavailable):
        TorchBackend(model, "cpu", "fp16")  # half precision is a CUDA-only choice
    with pytest.raises(BackendUnavailable):
        OnnxRuntimeBackend(model, "cpu", export_cache, "fp16")
    with pytest.raises(BackendUnavailable):
        Engine(model, backend="tensorrt", device="cpu", cache_dir=export_cache)
    with pytest.raises(BackendUnavailable):
        Engine(model, backend="tflite", cache_dir=export_cache)


def test_torch_backend_follows_the_lifecycle(random_models: dict) -> None:  # noqa: ANN001
    backend = TorchBackend(random_models["sr-x2"], "cpu")
    with pytest.raises(RuntimeError):
        backend.run(np.zeros((1, 3, 8, 8), np.float32))
    backend.load()
    backend.warm_up(16, 16, batch=2)
    out = backend.run(np.full((2, 3, 8, 8), 0.5, np.float32))
    assert out.shape == (2, 3, 16, 16) and out.dtype == np.float32
    backend.close()
    backend.close()  # idempotent


def test_onnx_cache_lookups_report_miss_then_hit(random_models: dict, tmp_path) -> None:  # noqa: ANN001
    """The first load exports (a miss), the next reuses the file (a hit); the worker counts both."""
    first = Engine(random_models["sr-x2"], backend="onnxruntime", device="cpu", cache_dir=tmp_path, warm_up=False)
    second = Engine(random_models["sr-x2"], backend="onnxruntime", device="cpu", cache_dir=tmp_path, warm_up=False)
    assert first.cache_lookups == {"onnx": "miss"} and second.cache_lookups == {"onnx": "hit"}
    first.close()
    second.close()
