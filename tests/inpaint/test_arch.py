"""CompactInpainter: shapes, size rule, compositing keeps unmasked pixels, torch vs ONNX Runtime parity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engines.families.compact_inpainter.network import SIZE_MULTIPLE, CompactInpainter
from engines.masked_fill import boundary_continuation, fill
from engines.training.inpaint_eval import torch_process
from engines.training.patch_discriminator import PatchDiscriminator

# Parity bound between torch and ONNX Runtime (CPU, fp32) for the generator; measured ~1e-6.
ONNX_ATOL = 1e-4


def _net(seed: int = 0) -> CompactInpainter:
    torch.manual_seed(seed)
    net = CompactInpainter(features=8, bottleneck=16, blocks=2).eval()
    # Random init leaves the tail near zero; scale it so parity is checked on outputs of a useful size.
    with torch.no_grad():
        net.tail.weight.mul_(20)
    return net


@pytest.mark.parametrize(("n", "h", "w"), [(1, 64, 64), (2, 64, 72), (1, 96, 80)])
def test_output_shape(n: int, h: int, w: int) -> None:
    net = _net()
    x, m = torch.rand(n, 3, h, w), (torch.rand(n, 1, h, w) > 0.5).float()
    with torch.inference_mode():
        y = net(x, m)
    assert y.shape == (n, 3, h, w) and torch.isfinite(y).all()


def test_size_rule_is_enforced() -> None:
    with pytest.raises(ValueError, match="multiples of 8"):
        _net()(torch.rand(1, 3, 68, 72), torch.zeros(1, 1, 68, 72))
    with pytest.raises(ValueError, match=">= 64"):
        _net()(torch.rand(1, 3, 32, 72), torch.zeros(1, 1, 32, 72))
    assert SIZE_MULTIPLE == 8 and CompactInpainter.task == "inpaint"


def test_hole_content_is_ignored() -> None:
    # Given two images that differ only inside the hole, Then the prediction is identical.
    net = _net()
    x = torch.rand(1, 3, 64, 64)
    m = torch.zeros(1, 1, 64, 64)
    m[..., 8:20, 10:24] = 1
    x2 = x.clone()
    x2[..., 8:20, 10:24] = torch.rand(1, 3, 12, 14)
    with torch.inference_mode():
        torch.testing.assert_close(net(x, m), net(x2, m), rtol=0, atol=0)


def test_composite_preserves_unmasked_pixels() -> None:
    rng = np.random.default_rng(0)
    image = rng.random((37, 45, 3), dtype=np.float32)  # odd size: the process pads to 8 and crops
    mask = np.zeros((37, 45), np.float32)
    mask[5:20, 7:30] = 1
    out = torch_process(_net())(image, mask)
    np.testing.assert_array_equal(out[mask < 0.5], image[mask < 0.5])
    assert not np.allclose(out[mask > 0.5], image[mask > 0.5])


def test_fill_keeps_every_known_pixel_and_shrinks_large_canvases() -> None:
    rng = np.random.default_rng(1)
    image = rng.random((300, 200, 3), dtype=np.float32)
    mask = np.zeros((300, 200), np.float32)
    mask[100:160, 50:120] = 1
    seen = []

    def process(img: np.ndarray, m: np.ndarray) -> np.ndarray:
        seen.append(img.shape)
        return np.where(m[..., None] > 0.5, 0.5, img).astype(np.float32)

    out = fill(process, image, mask, work_side=96, feather=3)
    assert max(seen[0][:2]) == 96
    np.testing.assert_array_equal(out[mask < 0.5], image[mask < 0.5])
    # Deep inside, the hole holds the process's fill plus a smooth boundary correction (here: noise
    # residual ~ 0 mean).
    assert abs(float(out[120:140, 70:100].mean()) - 0.5) < 0.05


def test_inward_feather_blends_the_hole_edge_towards_the_photo() -> None:
    # Given a photo of two flat colours and a process that fills with a third, the first ring inside the
    # hole is mostly the photo's colour next to it, the feather's depth in is all fill, and without a
    # feather the hole is all fill.
    image = np.zeros((64, 64, 3), np.float32)
    image[:, :32] = 0.8
    mask = np.zeros((64, 64), np.float32)
    mask[20:44, 20:44] = 1

    def process(img: np.ndarray, m: np.ndarray) -> np.ndarray:
        return np.where(m[..., None] > 0.5, 0.4, img).astype(np.float32)

    out = fill(process, image, mask, feather=3)
    assert out[30, 20, 0] == pytest.approx(0.75 * 0.8 + 0.25 * 0.4)  # ring 1 on the light side
    assert out[30, 43, 0] == pytest.approx(0.25 * 0.4)  # ring 1 on the dark side
    assert out[32, 32, 0] == pytest.approx(0.4) and out[20 + 3, 32, 0] == pytest.approx(0.4)
    values, ring = boundary_continuation(image, mask, 3)
    assert ring[20, 30] == 1 and ring[22, 30] == 3 and ring[23, 30] == 0 and ring[10, 10] == 0
    np.testing.assert_array_equal(fill(process, image, mask, feather=0)[mask > 0.5], np.float32(0.4))


def test_what_the_hole_held_never_reaches_the_working_canvas() -> None:
    # Given the same photo with a red sticker or a black patch under the hole, the process sees the same
    # working canvas: the shrink's resampling taps cannot carry the sticker's colour into the known pixels.
    rng = np.random.default_rng(2)
    image = rng.random((400, 320, 3), dtype=np.float32) * 0.5 + 0.25
    mask = np.zeros((400, 320), np.float32)
    mask[150:250, 100:230] = 1
    seen = []

    def process(img: np.ndarray, m: np.ndarray) -> np.ndarray:
        seen.append(img.copy())
        return img

    for under in ((1.0, 0.0, 0.0), (0.0, 0.0, 0.0)):
        fill(process, np.where(mask[..., None] > 0.5, np.float32(under), image), mask, work_side=96)
    np.testing.assert_array_equal(seen[0], seen[1])


def test_push_pull_keeps_known_pixels_and_fills_smoothly() -> None:
    from engines.push_pull import push_pull

    x = torch.rand(2, 3, 64, 80)
    known = torch.ones(2, 1, 64, 80)
    known[..., 20:40, 30:60] = 0
    g = push_pull(x, known)
    torch.testing.assert_close(g * known, x * known)
    # A flat image with a hole is filled with the same flat colour.
    flat = torch.full((1, 3, 64, 64), 0.3)
    torch.testing.assert_close(push_pull(flat, known[:1, :, :, :64]), flat, atol=1e-4, rtol=0)


def test_fill_meets_the_photo_at_the_hole_edge() -> None:
    # Given a smooth photo and a process whose fill is off by a smooth 0.2 (a colour cast), the boundary
    # correction brings the fill back to the photo at the hole's edge.
    yy, xx = np.mgrid[0:200, 0:240].astype(np.float32)
    image = np.stack([xx / 240, yy / 200, 0.5 + 0 * xx], axis=2)
    mask = np.zeros((200, 240), np.float32)
    mask[60:140, 80:170] = 1

    def process(img: np.ndarray, m: np.ndarray) -> np.ndarray:
        return np.where(m[..., None] > 0.5, img + 0.2, img).astype(np.float32)

    out = fill(process, image, mask, work_side=100, feather=0)
    _, ring = boundary_continuation(image, mask, 2)
    rim = ring > 0  # hole pixels within 2 px of its edge
    assert np.abs(out[rim] - image[rim]).mean() < 0.05


def test_discriminator_shapes() -> None:
    d = PatchDiscriminator(features=8)
    logits, feats = d(torch.rand(2, 3, 64, 64), torch.zeros(2, 1, 64, 64), features=True)
    assert logits.shape[:2] == (2, 1) and len(feats) == 4


def _own_export(net: torch.nn.Module, path) -> None:
    x, m = torch.rand(1, 3, 64, 72), (torch.rand(1, 1, 64, 72) > 0.6).float()
    axes = {k: {0: "batch", 2: "height", 3: "width"} for k in ("input", "mask", "output")}
    torch.onnx.export(net, (x, m), str(path), input_names=["input", "mask"], output_names=["output"],
                      dynamic_axes=axes, opset_version=17, dynamo=False)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_onnx_parity(tmp_path) -> None:
    ort = pytest.importorskip("onnxruntime")
    from engines.backends.onnx_export import INPUT_NAME, MASK_NAME, OUTPUT_NAME, export_onnx
    from engines.families.compact_inpainter import INPAINT
    from engines.loaded import CallAdapter, LoadedModel, state_dict_sha256

    net = _net(3)
    spec = INPAINT.__class__(**{**INPAINT.__dict__, "arch_params": {"features": 8, "bottleneck": 16, "blocks": 2}})
    loaded = LoadedModel(spec=spec, module=CallAdapter(net), weights_sha256=state_dict_sha256(net))
    # The shared exporter (two inputs, dynamic H/W, verified against torch) ...
    shared = export_onnx(loaded, tmp_path)
    # ... and a minimal opset-17 export of our own, both checked on shapes neither was traced with.
    own = tmp_path / "own.onnx"
    _own_export(net, own)
    g = torch.Generator().manual_seed(7)
    for path in (shared, own):
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        for n, h, w in ((1, 64, 88), (2, 80, 120)):
            x = torch.rand(n, 3, h, w, generator=g)
            m = (torch.rand(n, 1, h, w, generator=g) > 0.7).float()
            with torch.inference_mode():
                ref = net(x, m).numpy()
            out = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy(), MASK_NAME: m.numpy()})[0]
            assert out.shape == ref.shape
            np.testing.assert_allclose(out, ref, rtol=0, atol=ONNX_ATOL)
