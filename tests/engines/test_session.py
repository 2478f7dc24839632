"""Engine.process / process_many / run_batch contract: shapes, alpha, progress, OOM fallback, inpainting."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from engines.backends.base import Backend
from engines.errors import DeviceOutOfMemory, InvalidInput
from engines.loaded import CallAdapter, LoadedModel, state_dict_sha256
from engines.session import Engine
from engines.spec import ModelSpec, Task, WeightsRef


@pytest.fixture(scope="module")
def sr(random_models: dict) -> Engine:
    engine = Engine(random_models["sr-x2"], backend="torch", device="cpu")
    yield engine
    engine.close()


def test_rgb_in_rgb_out_at_scale(sr: Engine) -> None:
    image = np.random.default_rng(0).random((21, 34, 3), dtype=np.float32)
    out = sr.process(image)
    assert out.shape == (42, 68, 3) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_alpha_bypasses_the_network_and_is_resized_smoothly(sr: Engine) -> None:
    rng = np.random.default_rng(1)
    rgb = rng.random((24, 24, 3), dtype=np.float32)
    alpha = np.zeros((24, 24), np.float32)
    alpha[:, 12:] = 1.0  # a hard edge
    out = sr.process(np.dstack([rgb, alpha]))
    assert out.shape == (48, 48, 4)
    np.testing.assert_allclose(out[..., :3], sr.process(rgb), atol=1e-6)  # colour unaffected by alpha
    assert out[:, :20, 3].max() < 0.05 and out[:, 28:, 3].min() > 0.95
    assert 0.05 < out[0, 24, 3] < 0.95 or 0.05 < out[0, 23, 3] < 0.95  # smooth, not nearest


def test_denoise_passes_alpha_through(random_models: dict) -> None:
    with Engine(random_models["denoise"], backend="torch", device="cpu") as engine:
        image = np.random.default_rng(2).random((13, 17, 4), dtype=np.float32)
        out = engine.process(image)
    assert out.shape == (13, 17, 4)
    np.testing.assert_array_equal(out[..., 3], image[..., 3])


def test_progress_reports_every_tile(random_models: dict) -> None:
    model = random_models["sr-x2"]
    small = replace(model, spec=replace(model.spec, tile_size=64))
    calls: list[tuple[int, int]] = []
    with Engine(small, backend="torch", device="cpu", max_batch=3) as engine:
        engine.process(np.full((150, 100, 3), 0.5, np.float32), progress=lambda d, t: calls.append((d, t)))
    total = calls[-1][1]
    assert total > 1 and calls[-1][0] == total
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_process_many_equals_process(random_models: dict) -> None:
    model = random_models["denoise"]
    rng = np.random.default_rng(3)
    images = [rng.random((40, 40, 3), dtype=np.float32), rng.random((40, 40, 4), dtype=np.float32),
              rng.random((300, 90, 3), dtype=np.float32)]
    with Engine(model, backend="torch", device="cpu") as engine:
        batched = engine.process_many(images)
        single = [engine.process(img) for img in images]
    for a, b in zip(batched, single, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_bad_inputs_are_invalid_input(sr: Engine) -> None:
    for bad in (np.zeros((4, 4), np.float32), np.zeros((4, 4, 2), np.float32), np.zeros((4, 4, 3), np.uint8),
                np.full((4, 4, 3), np.nan, np.float32)):
        with pytest.raises(InvalidInput):
            sr.process(bad)
    with pytest.raises(InvalidInput):
        sr.process(np.zeros((4, 4, 3), np.float32), mask=np.zeros((4, 4)))
    with pytest.raises(InvalidInput):
        sr.run_batch(np.zeros((1, 3, 300, 8), np.float32))  # over the tile budget


class _FlakyBackend(Backend):
    """Raises DeviceOutOfMemory for tiles wider than `limit`, like a GPU with little free memory."""

    name = "torch"

    def __init__(self, inner: Backend, limit: int) -> None:
        super().__init__(inner.model, "cuda", "fp32")
        self.inner, self.limit, self.sizes = inner, limit, []

    def load(self) -> None:
        self.inner.load()

    def run(self, tiles: np.ndarray, masks: np.ndarray | None = None) -> np.ndarray:
        self.sizes.append(tiles.shape[-1])
        if tiles.shape[-1] > self.limit:
            raise DeviceOutOfMemory("simulated")
        return self.inner.run(tiles, masks)

    def close(self) -> None:
        self.inner.close()


def test_out_of_memory_halves_tiles_then_gives_up(random_models: dict) -> None:
    from engines.backends.torch_backend import TorchBackend

    model = random_models["sr-x2"]
    engine = Engine(model, backend="torch", device="cpu", warm_up=False)
    image = np.random.default_rng(4).random((300, 300, 3), dtype=np.float32)
    expected = engine.process(image)
    # Given a device that only fits 128-px tiles, when processing, then tiles shrink below 128 and the
    # result is unchanged (tiling is exact for this model).
    flaky = _FlakyBackend(TorchBackend(model, "cpu"), limit=128)
    flaky.load()
    engine._backend = flaky
    np.testing.assert_allclose(engine.process(image), expected, atol=1e-5)
    assert flaky.sizes[0] > 128 and flaky.sizes[-1] <= 128
    # Given a device that fits nothing, then DeviceOutOfMemory (retryable) after reaching the floor.
    engine._backend = _FlakyBackend(TorchBackend(model, "cpu"), limit=0)
    engine._backend.load()
    with pytest.raises(DeviceOutOfMemory) as info:
        engine.process(image)
    assert info.value.retryable and info.value.reason == "device_out_of_memory"
    engine.close()


class _MeanFill(nn.Module):
    """A tiny stand-in inpainter: fills masked pixels with a learned colour (tests the mask plumbing)."""

    def __init__(self) -> None:
        super().__init__()
        self.colour = nn.Parameter(torch.tensor([0.2, 0.4, 0.6]).view(1, 3, 1, 1))

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return image * (1 - mask) + self.colour * mask


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_inpainting_takes_a_mask_and_keeps_unmasked_pixels(backend: str, tmp_path) -> None:  # noqa: ANN001
    spec = ModelSpec(id="test-fill", task=Task.INPAINT, scale=1, in_channels=3, out_channels=3, size_multiple=8,
                     min_size=16, precisions=("fp32",), tile_size=64, tile_overlap=8,
                     weights=WeightsRef("test-fill.safetensors", None), architecture="MeanFill")
    net = _MeanFill().eval()
    model = LoadedModel(spec=spec, module=CallAdapter(net), weights_sha256=state_dict_sha256(net))
    image = np.random.default_rng(5).random((50, 70, 3), dtype=np.float32)
    mask = np.zeros((50, 70), np.float32)
    mask[10:30, 20:60] = 1
    with Engine(model, backend=backend, device="cpu", cache_dir=tmp_path) as engine:
        assert engine.backend_name == backend
        with pytest.raises(InvalidInput):
            engine.process(image)  # no mask
        out = engine.process(image, mask=mask)
        many = engine.process_many([image], masks=[mask])[0]
    np.testing.assert_array_equal(out[mask == 0], image[mask == 0])
    np.testing.assert_allclose(out[mask == 1], np.broadcast_to([0.2, 0.4, 0.6], (int(mask.sum()), 3)), atol=1e-6)
    np.testing.assert_allclose(many, out, atol=1e-6)


def test_closed_engine_refuses_work(random_models: dict) -> None:
    engine = Engine(random_models["sr-x2"], backend="torch", device="cpu", warm_up=False)
    with engine:
        pass
    with pytest.raises(RuntimeError, match="closed"):
        engine.process(np.zeros((4, 4, 3), np.float32))
