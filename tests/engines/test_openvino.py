"""The OpenVINO backend runs the same ONNX export as ONNX Runtime: fp32 agrees with torch, bf16 within the
precision bound, and masked engines take their mask."""

from __future__ import annotations

import numpy as np
import pytest

from engines.session import Engine, load_model

pytest.importorskip("openvino")

ENGINE_ATOL = 1e-4  # fp32 graphs, as for ONNX Runtime (tests/inpaint/test_engine.py)
BOUND_DB = 45.0  # bf16 against fp32, as tests/engines/test_precision.py


def _photo(side: int = 64) -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[100 : 100 + side, 180 : 180 + side].astype(np.float32) / 255)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1 / max(float(np.mean((a - b) ** 2)), 1e-12)))


@pytest.mark.parametrize("model_id", ["retouch-sr-x2-perceptual", "retouch-denoise"])
def test_fp32_matches_torch_and_bf16_stays_within_the_bound(model_id: str, tmp_path) -> None:
    model = load_model(model_id)
    image = _photo()
    reference = Engine(model, backend="torch", precision="fp32", warm_up=False).process(image)
    with Engine(model, backend="openvino", precision="fp32", cache_dir=tmp_path, warm_up=False) as engine:
        assert (engine.backend_name, engine.precision) == ("openvino", "fp32")
        np.testing.assert_allclose(engine.process(image), reference, rtol=0, atol=ENGINE_ATOL)
    with Engine(model, backend="openvino", precision="bf16", cache_dir=tmp_path, warm_up=False) as engine:
        assert engine.precision == "bf16"
        assert _psnr(engine.process(image), reference) >= BOUND_DB


def test_a_masked_engine_fills_through_openvino(tmp_path) -> None:
    model = load_model("retouch-inpaint")
    image = _photo(96)
    mask = np.zeros((96, 96), np.float32)
    mask[30:60, 30:60] = 1
    reference = Engine(model, backend="torch", precision="fp32", warm_up=False).fill(image, mask)
    with Engine(model, backend="openvino", cache_dir=tmp_path, precision="fp32", warm_up=False) as engine:
        out = engine.fill(image, mask)
    np.testing.assert_array_equal(out[mask < 0.5], image[mask < 0.5])
    np.testing.assert_allclose(out, reference, rtol=0, atol=ENGINE_ATOL)


def test_openvino_refuses_cuda_and_half_precision(tmp_path) -> None:
    from engines.backends.openvino_backend import OpenVinoBackend
    from engines.errors import BackendUnavailable

    model = load_model("retouch-sr-x2-real")
    with pytest.raises(BackendUnavailable, match="CPU only"):
        OpenVinoBackend(model, "cuda", tmp_path)
    with pytest.raises((BackendUnavailable, ValueError)):
        OpenVinoBackend(model, "cpu", tmp_path, "fp16")
