"""Precision is decided in one place (`engines.precision`) and bf16 stays within a measured bound of fp32.

Every built-in and the Real-ESRGAN x4plus golden run through the torch backend in fp32 and in bf16 autocast
on a natural photo; the bf16 output must be within `BOUND_DB` of fp32. On a CPU without native bf16 oneDNN
emulates it (slow, same numbers), so the bound is checked on every machine.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engines import precision as precision_module
from engines.errors import BackendUnavailable
from engines.precision import choose_precision, cpu_has_native_bf16
from engines.registry import builtin_registry
from engines.session import Engine, load_model
from tests.conftest import shared_path

BOUND_DB = 45.0  # measured on a Xeon with AMX: 53 dB for Real-ESRGAN x4plus, 68-76 dB for the built-ins


def _photo(side: int = 64) -> np.ndarray:
    from skimage import data

    img = data.astronaut()[100 : 100 + side, 180 : 180 + side].astype(np.float32) / 255
    return np.ascontiguousarray(img)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.clip(a, 0, 1) - np.clip(b, 0, 1)) ** 2))
    return 10 * np.log10(1 / max(mse, 1e-12))


def test_the_device_decides_and_an_override_is_honoured_where_it_can_run(monkeypatch) -> None:
    every = ("fp32", "fp16", "bf16")
    monkeypatch.setattr(precision_module, "_native_bf16", lambda: True)
    assert choose_precision("auto", "cpu", every)[0] == "bf16"
    assert choose_precision(None, "cpu", ("fp32",))[0] == "fp32"
    assert choose_precision("auto", "cuda", every)[0] == "fp16"
    monkeypatch.setattr(precision_module, "_native_bf16", lambda: False)
    assert choose_precision("auto", "cpu", every) == ("fp32", "CPU has no native bfloat16")
    assert choose_precision("bf16", "cpu", every) == ("bf16", "requested")  # emulated, but asked for
    assert choose_precision("fp16", "cpu", every)[0] == "fp32"
    with pytest.raises(ValueError, match="not one of"):
        choose_precision("int4", "cpu", every)


def test_native_bf16_is_read_from_the_cpu_flags(tmp_path) -> None:
    flags = tmp_path / "cpuinfo"
    flags.write_text("flags\t: fpu avx512f avx512_vnni\n")
    assert cpu_has_native_bf16(flags) is False
    flags.write_text("flags\t: fpu avx512f avx512_bf16\n")
    assert cpu_has_native_bf16(flags) is True
    flags.write_text("flags\t: fpu avx512f avx512_vnni\n")
    assert cpu_has_native_bf16(flags) is False
    flags.write_text("flags\t: fpu avx512f amx_bf16 amx_tile\n")
    assert cpu_has_native_bf16(flags) is True
    assert cpu_has_native_bf16(tmp_path / "absent") is None


def test_auto_on_a_bf16_cpu_runs_torch_in_bf16_and_says_so(monkeypatch) -> None:
    monkeypatch.setattr(precision_module, "_native_bf16", lambda: True)
    engine = Engine(load_model("retouch-sr-x2-real"), precision="auto", warm_up=False)
    assert (engine.backend_name, engine.precision) == ("torch", "bf16")
    monkeypatch.setattr(precision_module, "_native_bf16", lambda: False)
    engine = Engine(load_model("retouch-sr-x2-real"), precision="auto", warm_up=False)
    assert engine.precision == "fp32"


def test_onnxruntime_reports_the_fp32_it_really_runs(export_cache) -> None:  # noqa: ANN001
    engine = Engine(load_model("retouch-sr-x2-real"), backend="onnxruntime", precision="bf16",
                    cache_dir=export_cache, warm_up=False)
    assert engine.precision == "fp32"
    # fp16 asked for on a CPU: the engine runs fp32 and says so; the backend itself refuses fp16 there.
    engine = Engine(load_model("retouch-sr-x2-real"), backend="torch", precision="fp16", warm_up=False)
    assert engine.precision == "fp32"
    from engines.backends.torch_backend import TorchBackend

    with pytest.raises(BackendUnavailable, match="only used on CUDA"):
        TorchBackend(load_model("retouch-sr-x2-real"), "cpu", "fp16")


def _agreement(model, image: np.ndarray, mask: np.ndarray | None = None) -> float:
    outs = []
    for precision in ("fp32", "bf16"):
        engine = Engine(model, backend="torch", precision=precision, warm_up=False)
        assert engine.precision == precision
        outs.append(engine.fill(image, mask) if mask is not None else engine.process(image))
    return _psnr(*outs)


@pytest.mark.parametrize("model_id", sorted(s.id for s in builtin_registry()))
def test_bf16_agrees_with_fp32_for_every_builtin(model_id: str) -> None:
    torch.set_num_threads(2)
    model = load_model(model_id)
    if "bf16" not in model.spec.precisions:  # e.g. retouch-inpaint: declared fp32-only, so auto keeps fp32
        assert Engine(model, backend="torch", precision="bf16", warm_up=False).precision == "fp32"
        return
    image = _photo(64 if model.spec.task != "inpaint" else 96)
    mask = None
    if model.takes_mask:
        mask = np.zeros(image.shape[:2], dtype=np.float32)
        mask[30:60, 30:60] = 1
    db = _agreement(model, image, mask)
    print(f"{model_id}: bf16 vs fp32 {db:.1f} dB")
    assert db >= BOUND_DB


def test_bf16_agrees_with_fp32_for_real_esrgan_x4plus() -> None:
    torch.set_num_threads(2)
    model = load_model(str(shared_path("models", "RealESRGAN_x4plus.pth")))
    db = _agreement(model, _photo(48))
    print(f"RealESRGAN_x4plus: bf16 vs fp32 {db:.1f} dB")
    assert db >= BOUND_DB


@pytest.mark.parametrize("model_id", sorted(s.id for s in builtin_registry() if "int8" in s.precisions))
def test_int8_agrees_with_fp32_for_every_builtin_that_lists_it(model_id: str, tmp_path) -> None:
    # int8 is ONNX Runtime's statically quantised graph (engines/backends/onnx_quantize.py), asked for by name.
    torch.set_num_threads(2)
    model = load_model(model_id)
    image = _photo(64)
    fp32 = Engine(model, backend="onnxruntime", precision="fp32", cache_dir=tmp_path, warm_up=False)
    int8 = Engine(model, backend="auto", precision="int8", cache_dir=tmp_path, warm_up=False)
    assert (int8.backend_name, int8.precision) == ("onnxruntime", "int8")
    db = _psnr(fp32.process(image), int8.process(image))
    print(f"{model_id}: int8 vs fp32 {db:.1f} dB")
    assert db >= BOUND_DB


def test_int8_is_only_for_specs_that_list_it_and_only_on_the_cpu() -> None:
    assert choose_precision("int8", "cpu", ("fp32", "int8")) == ("int8", "requested")
    assert choose_precision("int8", "cpu", ("fp32", "bf16"))[0] == "fp32"
    assert choose_precision("int8", "cuda", ("fp32", "fp16", "int8"))[0] == "fp32"
    assert choose_precision("auto", "cpu", ("fp32", "int8"))[0] in ("fp32", "bf16")  # never int8 unasked
    engine = Engine(load_model("retouch-denoise"), backend="auto", precision="int8", warm_up=False)
    assert engine.precision == "fp32"  # the denoiser lists no int8 bound
