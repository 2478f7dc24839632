"""The inpainting spec through engineer A's engine: open_engine + Engine.process(image, mask=...) on the
torch and ONNX Runtime backends, with a custom registry (the built-in one is wired by the lead)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from engines.families.compact_inpainter import INPAINT
from engines.families.compact_inpainter.network import CompactInpainter
from engines.masked_fill import fill
from engines.registry import Registry
from engines.spec import Task, WeightsRef
from engines.training.inpaint_train import save_generator
from engines.weights_io import WEIGHTS_DIR

ENGINE_ATOL = 1e-4  # torch vs ONNX Runtime on the same canvas (fp32)


def test_spec_matches_contract() -> None:
    assert INPAINT.task is Task.INPAINT and INPAINT.scale == 1
    assert INPAINT.size_multiple == CompactInpainter.size_multiple
    net = CompactInpainter(**INPAINT.arch_params)
    assert INPAINT.tile_overlap <= INPAINT.tile_size // 2
    assert sum(p.numel() for p in net.parameters()) * 4 < 5_000_000  # ships < 5 MB in fp32


@pytest.fixture
def registry(tmp_path) -> Registry:
    torch.manual_seed(0)
    net = CompactInpainter(**INPAINT.arch_params)
    path = tmp_path / "retouch-inpaint.safetensors"
    sha = save_generator(net, path, {"arch": "CompactInpainter", "arch_params": json.dumps(dict(INPAINT.arch_params)),
                                     "model_id": INPAINT.id})
    spec = replace(INPAINT, weights=WeightsRef(file=str(path), sha256=sha))
    return Registry([spec])


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_engine_process_with_mask_on_torch_and_onnxruntime(registry, tmp_path) -> None:
    from engines.session import open_engine

    rng = np.random.default_rng(0)
    image = rng.random((70, 90, 3), dtype=np.float32)
    mask = np.zeros((70, 90), np.float32)
    mask[20:45, 30:60] = 1
    outs = {}
    for backend in ("torch", "onnxruntime"):
        with open_engine("retouch-inpaint", backend=backend, device="cpu", registry=registry,
                         cache_dir=tmp_path / "cache") as engine:
            out = engine.process(image, mask=mask)
            assert out.shape == image.shape
            np.testing.assert_array_equal(out[mask < 0.5], image[mask < 0.5])
            outs[backend] = out
            # The working-resolution path on top of the engine: known pixels are untouched.
            big = rng.random((200, 160, 3), dtype=np.float32)
            bmask = np.zeros((200, 160), np.float32)
            bmask[50:90, 40:100] = 1
            filled = fill(lambda i, m: engine.process(i, mask=m), big, bmask, work_side=64, feather=2)
            assert filled.shape == big.shape
            np.testing.assert_array_equal(filled[bmask < 0.5], big[bmask < 0.5])
    np.testing.assert_allclose(outs["onnxruntime"], outs["torch"], rtol=0, atol=ENGINE_ATOL)


def test_engine_refuses_missing_mask(registry, tmp_path) -> None:
    from engines.errors import InvalidInput
    from engines.session import open_engine

    with open_engine("retouch-inpaint", backend="torch", device="cpu", registry=registry,
                     cache_dir=tmp_path / "cache") as engine, pytest.raises(InvalidInput):
        engine.process(np.zeros((32, 32, 3), np.float32))


def test_shipped_weights_match_spec() -> None:
    path = WEIGHTS_DIR / INPAINT.weights.file
    if INPAINT.weights.sha256 is None or not path.is_file():
        pytest.skip("retouch-inpaint weights not shipped in this checkout")
    from engines.training.inpaint_train import load_generator
    from engines.weights_io import sha256_file

    assert sha256_file(path) == INPAINT.weights.sha256
    assert path.stat().st_size < 5_000_000
    model, meta = load_generator(path)
    assert json.loads(meta["arch_params"]) == dict(INPAINT.arch_params)
    assert meta["model_id"] == INPAINT.id and meta["seed"] and meta["trained_with"]


@pytest.mark.slow
def test_an_operator_lama_fills_through_the_same_masked_path_at_its_own_working_side(tmp_path) -> None:
    # Given LaMa weights (spandrel's LaMa with random weights, saved as an operator would hand them over:
    # nothing can be downloaded here), When loaded by path and asked to fill a box on a 600 x 480 photo,
    # Then spandrel names it, the spec gives it its own working side (512), and the known pixels keep
    # their values while the box is generated.
    from spandrel.architectures.LaMa import LaMa

    from engines.session import open_engine

    torch.manual_seed(0)
    path = tmp_path / "big-lama.pth"
    torch.save(LaMa(in_nc=4).state_dict(), path)  # big-lama's layout: RGB and the mask in, RGB out
    image = np.random.default_rng(2).random((600, 480, 3), dtype=np.float32)
    mask = np.zeros((600, 480), np.float32)
    mask[250:350, 200:300] = 1
    with open_engine(str(path), backend="torch", device="cpu", cache_dir=tmp_path / "cache") as engine:
        assert engine.spec.task is Task.INPAINT and engine.spec.architecture == "LaMa"
        assert engine.spec.work_side == 512 and engine.spec.crop_side is None
        out = engine.fill(image, mask)
    assert out.shape == image.shape
    np.testing.assert_array_equal(out[mask < 0.5], image[mask < 0.5])
    assert np.abs(out[mask > 0.5] - image[mask > 0.5]).mean() > 0.01
