"""The tone engine: a thumbnail in, a per-pixel transform out, applied at any resolution without tiles."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data

from engines.families.tone_lut.network import ToneLUT, apply_torch, identity_lut
from engines.session import open_engine
from engines.tone import ToneTransform, apply_params, estimates, thumbnail
from engines.training import tone_perturb


def product_on_white() -> np.ndarray:
    """A catalogue-like photo: a textured object (scikit-image's coffee cup, CC0) on a white studio ground."""
    photo = np.ones((300, 240, 3), np.float32)
    photo[50:250, 30:210] = data.coffee()[100:300, 150:330].astype(np.float32) / 255
    return photo


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / max(np.mean((a.astype(np.float64) - b) ** 2), 1e-12)))


def test_an_untrained_network_leaves_photos_alone() -> None:
    # The basis LUTs start at zero and the head's output is zeroed: the identity transform.
    net = ToneLUT().eval()
    torch.nn.init.zeros_(net.head.weight)
    photo = product_on_white()
    seen = thumbnail(photo)
    with torch.no_grad():
        params = net(torch.from_numpy(seen)).numpy()
    out = ToneTransform.from_params(params, seen).apply(photo)
    assert np.abs(out - np.round(photo * 255) / 255).max() < 1e-6


def test_a_confidence_model_judging_a_photo_good_maps_it_to_the_identity(tmp_path) -> None:
    from safetensors.torch import save_file

    from engines.training.tone_train import init_confidence_from

    torch.manual_seed(0)
    plain = ToneLUT().eval()
    torch.nn.init.normal_(plain.basis, std=0.05)  # a plain model that changes photos
    path = tmp_path / "plain.safetensors"
    save_file({k: v.contiguous() for k, v in plain.state_dict().items()}, str(path))
    # Started from the plain model, the confidence head says "needs correcting" (0.88) ...
    net = ToneLUT(confidence=True).eval()
    init_confidence_from(net, path, log=lambda _m: None)
    seen = torch.from_numpy(thumbnail(product_on_white()))
    with torch.no_grad():
        _, needs = net.params_and_needs(seen)
        assert needs is not None and abs(float(needs[0]) - 0.88) < 0.01
        assert torch.equal(net.head.weight[:4], plain.head.weight)
        # ... and once it judges the photo good, the transform is the identity whatever the tables hold
        net.head.bias[-1] = -30.0
        params, needs = net.params_and_needs(seen)
    lut, gain = net.unpack(params)
    assert float(needs[0]) < 1e-9 and torch.allclose(lut[0], identity_lut(17), atol=1e-6) and abs(float(gain[0])) < 1e-9


def test_pillow_lookup_agrees_with_the_differentiable_one_used_in_training() -> None:
    torch.manual_seed(0)
    lut = (identity_lut(17) + 0.08 * torch.randn(3, 17, 17, 17)).clamp(0, 1)  # the engine clips its tables
    photo = np.round(product_on_white() * 255) / 255
    fast = apply_params(photo, lut.numpy(), 0.0)
    with torch.no_grad():
        slow = apply_torch(torch.from_numpy(photo).permute(2, 0, 1)[None], lut[None], torch.zeros(1))
    assert np.abs(fast - slow[0].permute(1, 2, 0).numpy()).max() <= 1 / 255  # Pillow: 8-bit out, rounded


def test_estimates_name_the_exposure_and_the_cast_a_transform_removes() -> None:
    grey = np.full((64, 64, 3), 0.5, np.float32)
    warm = np.clip(grey * np.array([1.15, 1.0, 0.8], np.float32), 0, 1)  # a yellow cast on a grey card
    est = estimates(warm, grey, 0.0)
    assert est.cast_removed[1] > 5 and est.mean_delta_e > 5  # +b*: the yellow taken away
    brighter = estimates(grey, np.full_like(grey, 0.7), 0.0)
    assert brighter.exposure_stops == pytest.approx(np.log2(0.448 / 0.214), abs=0.05)
    assert estimates(grey, grey, 0.0).as_dict()["mean_delta_e"] == 0


@pytest.fixture(scope="module")
def shipped() -> dict:
    engines = {name: open_engine("retouch-tone", backend=name) for name in ("torch", "onnxruntime")}
    yield engines
    for engine in engines.values():
        engine.close()


def test_shipped_engine_is_fp32_on_both_cpu_backends_and_they_agree(shipped) -> None:
    photo = product_on_white()
    outputs = {name: engine.process(photo) for name, engine in shipped.items()}
    assert all(engine.precision == "fp32" for engine in shipped.values())
    differ = np.abs(outputs["torch"] - outputs["onnxruntime"])
    # Their parameters agree to ~1e-5; a pixel the vignetting gain puts on a rounding edge may round the
    # other way, and a steep stretch of the LUT (dark saturated colours) makes that one level a few.
    assert (differ > 1.5 / 255).mean() < 1e-3 and differ.max() <= 4 / 255 + 1e-6


def test_shipped_engine_never_tiles_and_keeps_alpha(shipped) -> None:
    engine = shipped["torch"]
    photo = np.random.default_rng(0).random((700, 900, 3), dtype=np.float32)  # far over its 128 px "tile"
    calls = []
    out = engine.process(photo, lambda done, total: calls.append((done, total)))
    np.testing.assert_array_equal(out, engine.tone(photo).apply(photo))  # one transform for the whole photo
    assert calls == [(1, 1)] and out.shape == photo.shape
    rgba = np.concatenate([photo[:50, :60], np.linspace(0, 1, 50 * 60, dtype=np.float32).reshape(50, 60, 1)], 2)
    np.testing.assert_array_equal(engine.process(rgba)[..., 3], rgba[..., 3])


def test_shipped_engine_undoes_an_underexposure(shipped) -> None:
    truth = product_on_white()
    spoiled = np.round(tone_perturb.apply_numpy(truth, tone_perturb.Perturbation(exposure_stops=-1.0)) * 255) / 255
    corrected = shipped["onnxruntime"].process(spoiled)
    assert psnr(corrected, truth) >= psnr(spoiled, truth) + 6.0


def test_shipped_engine_takes_a_warm_cast_off_the_white_ground(shipped) -> None:
    # The ground is what a catalogue's eye checks first. (The coffee itself comes out a little paler than
    # the truth: PSNR gains only 0.1 dB on this synthetic photo, against +8.5 dB on held-aside catalogue
    # photos; see the model card.)
    from skimage.color import rgb2lab

    truth = product_on_white()
    spoiled = np.round(tone_perturb.apply_numpy(truth, tone_perturb.Perturbation(temperature=0.3)) * 255) / 255
    corrected = shipped["onnxruntime"].process(spoiled)
    ground = (slice(0, 40), slice(None))
    assert rgb2lab(spoiled[ground])[..., 2].mean() > 10  # visibly yellow
    assert abs(rgb2lab(corrected[ground])[..., 2].mean()) < 2  # neutral white again
    assert psnr(corrected, truth) >= psnr(spoiled, truth)
