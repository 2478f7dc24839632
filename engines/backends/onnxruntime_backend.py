"""ONNX Runtime backend: the exported graph on the CPU provider, or the CUDA provider where present; on the
CPU also its statically quantised int8 form for specs that list int8 (`onnx_quantize`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engines.backends.base import Backend
from engines.backends.onnx_export import OUTPUT_NAME, export_onnx, input_feeds, onnx_cache_path
from engines.errors import BackendUnavailable, DeviceOutOfMemory
from engines.loaded import LoadedModel
from engines.settings import engine_settings

__all__ = ["OnnxRuntimeBackend"]

# ORT reports allocation failure only as text inside a generic runtime error.
_OOM_MARKERS = ("out of memory", "failed to allocate", "cudaerrormemoryallocation", "bad_alloc")


class OnnxRuntimeBackend(Backend):
    """fp32 ONNX graph run by ONNX Runtime. `device` "cpu" uses CPUExecutionProvider, "cuda" the CUDA one."""

    name = "onnxruntime"

    def __init__(self, model: LoadedModel, device: str, cache_dir: Path, precision: str = "fp32") -> None:
        if precision == "int8" and "int8" not in model.spec.precisions:
            raise BackendUnavailable(f"{model.spec.id} lists no int8 precision")
        super().__init__(model, device, precision)
        import onnxruntime as ort

        if precision not in ("fp32", "int8"):
            # fp16 graphs would need a second export and a second parity check; TensorRT covers fp16 on GPU.
            raise BackendUnavailable(f"onnxruntime backend runs fp32 or int8, not {precision}")
        if precision == "int8" and device.startswith("cuda"):
            raise BackendUnavailable("onnxruntime runs int8 graphs on the CPU only")
        available = ort.get_available_providers()
        wanted = "CUDAExecutionProvider" if device.startswith("cuda") else "CPUExecutionProvider"
        if wanted not in available:
            raise BackendUnavailable(f"onnxruntime has no {wanted} here (has {available})")
        self._providers = [wanted] if wanted == "CPUExecutionProvider" else [wanted, "CPUExecutionProvider"]
        self._cache_dir = Path(cache_dir)
        self._session = None

    def load(self) -> None:
        import onnxruntime as ort

        self.cache_lookups["onnx"] = "hit" if onnx_cache_path(self.model, self._cache_dir).exists() else "miss"
        path = export_onnx(self.model, self._cache_dir)
        if self.precision == "int8":
            from engines.backends.onnx_quantize import int8_path, quantize_int8

            self.cache_lookups["int8"] = "hit" if int8_path(self.model, self._cache_dir).exists() else "miss"
            path = quantize_int8(self.model, self._cache_dir)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Default intra-op threads = all cores; RETOUCH_ORT_THREADS lets a worker with several processes
        # per machine avoid oversubscription.
        threads = engine_settings().ort_threads
        if threads > 0:
            options.intra_op_num_threads = threads
        # No spin-waiting after a run: a worker runs several engines in one process (tone on ONNX Runtime,
        # then SR on torch or OpenVINO), and ORT's spinning threads slowed the next engine's first tile by
        # 40 % (measured: 128 px retouch-sr-x4-perceptual tile, 0.087 s alone, 0.12-0.13 s after a tone run).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(str(path), sess_options=options, providers=self._providers)
        self.onnx_path = path

    def run(self, tiles: np.ndarray, masks: np.ndarray | None = None) -> np.ndarray:
        if self._session is None:
            raise RuntimeError("OnnxRuntimeBackend.run before load()")
        feeds = input_feeds(tiles, masks)
        try:
            return self._session.run([OUTPUT_NAME], feeds)[0]
        except Exception as exc:  # ORT raises its own pybind exception types; OOM is only in the text
            if any(marker in str(exc).lower() for marker in _OOM_MARKERS):
                raise DeviceOutOfMemory(f"onnxruntime {self.device}: {str(exc).splitlines()[0]}") from exc
            raise

    def close(self) -> None:
        self._session = None
