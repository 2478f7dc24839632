"""OpenVINO backend: the same exported ONNX graph compiled by Intel's CPU runtime, in fp32 or bf16.

Why a third CPU runtime: it is the fastest for some engines and not for others. `retouch bench` on a
2-core AMD EPYC (Zen 4, AVX512-BF16), 256 px, whole engine call, output MP/s OpenVINO / best other:
fp32 retouch-sr-x2-real 1.30 / 1.18 (torch), retouch-sr-x4-perceptual 0.89 / 0.85 (ONNX Runtime),
retouch-denoise 0.24 / 0.21 (torch), but retouch-matte 1.94 / 3.30 (torch); bf16 retouch-sr-x2-real
2.19 / 1.89 (torch), retouch-sr-x4-real 5.09 / 5.67 (torch). So `auto` times it beside the others
(`engines.backend_probe`) rather than preferring it.
It fuses convolution + activation + pixel-shuffle chains and picks AVX-512 (and AMX on Xeons) kernels with
bf16 as an inference-precision hint, so the graph stays the fp32 export (one file for every backend).

The model is compiled once with the export's dynamic H and W; tiles of any allowed size run on it. CPU
only (OpenVINO's GPU plugin is for Intel GPUs). bf16 runs only where the spec allows it, on CPUs that
compute bfloat16 natively (`engines.precision` decides; elsewhere OpenVINO would emulate it).
Threads: `RETOUCH_ORT_THREADS` (0: OpenVINO's default, every core).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engines.backends.base import Backend
from engines.backends.onnx_export import export_onnx, input_feeds, onnx_cache_path
from engines.errors import BackendUnavailable
from engines.loaded import LoadedModel
from engines.settings import engine_settings

__all__ = ["OpenVinoBackend", "openvino_available"]

_HINTS = {"fp32": "f32", "bf16": "bf16"}


def openvino_available() -> bool:
    """Whether the package is installed, without importing it (it loads its plugins on import)."""
    from importlib.util import find_spec

    return find_spec("openvino") is not None


class OpenVinoBackend(Backend):
    """The fp32 ONNX export compiled by OpenVINO for the CPU, with fp32 or bf16 inference precision."""

    name = "openvino"

    def __init__(self, model: LoadedModel, device: str, cache_dir: Path, precision: str = "fp32") -> None:
        super().__init__(model, device, precision)
        if not device.startswith("cpu"):
            raise BackendUnavailable("openvino backend runs on the CPU only")
        if precision not in _HINTS:
            raise BackendUnavailable(f"openvino backend runs fp32 or bf16, not {precision}")
        if not openvino_available():
            raise BackendUnavailable("openvino is not installed (pip install openvino)")
        self._cache_dir = Path(cache_dir)
        self._compiled = None

    def load(self) -> None:
        import openvino as ov

        self.cache_lookups["onnx"] = "hit" if onnx_cache_path(self.model, self._cache_dir).exists() else "miss"
        path = export_onnx(self.model, self._cache_dir)
        config = {"INFERENCE_PRECISION_HINT": _HINTS[self.precision]}
        threads = engine_settings().ort_threads
        if threads > 0:
            config["INFERENCE_NUM_THREADS"] = threads
        core = ov.Core()
        self._compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
        self._names = {port.get_any_name() for port in self._compiled.inputs}
        self.onnx_path = path

    def run(self, tiles: np.ndarray, masks: np.ndarray | None = None) -> np.ndarray:
        if self._compiled is None:
            raise RuntimeError("OpenVinoBackend.run before load()")
        feeds = input_feeds(tiles, masks)
        # A compiled model called directly makes its own request: safe to call from several threads.
        result = self._compiled({name: value for name, value in feeds.items() if name in self._names})
        return np.asarray(result[self._compiled.output(0)], dtype=np.float32)

    def close(self) -> None:
        self._compiled = None
