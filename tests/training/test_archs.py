"""The compact architectures keep the tensor contract and export to ONNX with dynamic H/W."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from engines.families import architectures
from engines.families.compact_denoiser.network import SIZE_MULTIPLE, CompactDenoiser
from engines.families.compact_sr.network import CompactSR, receptive_field


@pytest.mark.parametrize("scale", [1, 2, 3, 4])
def test_compact_sr_shapes(scale: int) -> None:
    model = CompactSR(scale, features=8, blocks=2).eval()
    assert model(torch.rand(2, 3, 7, 9)).shape == (2, 3, 7 * scale, 9 * scale)


def test_untrained_compact_sr_is_close_to_bicubic() -> None:
    # The tail starts small, so a fresh network is a gentle residual over bicubic (fast early training).
    torch.manual_seed(0)
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        out = CompactSR(2).eval()(x)
    base = torch.nn.functional.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False)
    assert float((out - base).abs().mean()) < 0.05


def test_receptive_field_bounds_influence() -> None:
    # A change at one LR pixel must not reach output pixels farther than the stated receptive field.
    torch.manual_seed(0)
    model = CompactSR(2, features=8, blocks=3).eval()
    x = torch.rand(1, 3, 40, 40)
    y = x.clone()
    y[..., 20, 20] += 1
    diff = (model(x) - model(y)).abs().sum(1)[0]
    rows = torch.nonzero(diff.sum(1) > 0).flatten()
    reach_lr = max(abs(int(rows.min()) // 2 - 20), abs(int(rows.max()) // 2 - 20))
    assert reach_lr <= receptive_field(3)


def test_denoiser_shape_and_size_multiple() -> None:
    model = CompactDenoiser(features=4, blocks=1).eval()
    assert model(torch.rand(1, 3, 12, 8)).shape == (1, 3, 12, 8)
    assert model.size_multiple == SIZE_MULTIPLE == 4
    with pytest.raises(ValueError, match="multiples of 4"):
        model(torch.rand(1, 3, 10, 8))


def test_registry_names() -> None:
    # The names are the safetensors "arch" metadata of the shipped weights; other archs may sit beside them.
    assert architectures()["CompactSR"] is CompactSR and architectures()["CompactDenoiser"] is CompactDenoiser


@pytest.mark.parametrize("name", ["CompactSR", "CompactDenoiser"])
def test_onnx_export_dynamic_hw_matches_torch(name: str, tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    model = (CompactSR(4, features=8, blocks=2) if name == "CompactSR" else CompactDenoiser(features=4, blocks=1))
    model.eval()
    path = tmp_path / "m.onnx"
    torch.onnx.export(model, (torch.rand(1, 3, 16, 16),), str(path), opset_version=17, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "n", 2: "h", 3: "w"}}, dynamo=False)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for h, w in [(16, 16), (20, 28)]:
        x = torch.rand(1, 3, h, w)
        got = sess.run(None, {"x": x.numpy()})[0]
        want = model(x).detach().numpy()
        assert got.shape == want.shape
        # ONNX Resize(cubic) and torch bicubic treat the outermost pixels slightly differently.
        assert np.abs(got - want)[..., 4:-4, 4:-4].max() < 1e-4
        assert np.abs(got - want).max() < 2e-2
