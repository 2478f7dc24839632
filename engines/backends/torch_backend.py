"""PyTorch backend: CPU or CUDA, channels-last, inference_mode; fp16/bf16 on CUDA, bf16 autocast on CPU.

On CPU, bf16 runs as autocast over float32 weights: oneDNN's convolutions and matmuls take bf16 on the AMX
tiles while the ops autocast keeps in float32 (pixel shuffle's neighbours, interpolation, additions of the
skip) stay exact, which keeps outputs within ~50 dB of fp32 (tests/engines/test_precision.py).
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from engines.backends.base import Backend
from engines.errors import BackendUnavailable, DeviceOutOfMemory
from engines.loaded import LoadedModel

__all__ = ["TorchBackend"]

_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class TorchBackend(Backend):
    """Runs the model's torch module directly. On CPU: fp32, or bf16 autocast (fp16 is refused there)."""

    name = "torch"

    def __init__(self, model: LoadedModel, device: str = "cpu", precision: str = "fp32") -> None:
        super().__init__(model, device, precision)
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendUnavailable("torch backend: CUDA requested but torch.cuda.is_available() is False")
        self._autocast = not device.startswith("cuda") and precision == "bf16"
        if precision == "int8":
            raise BackendUnavailable("torch backend: int8 graphs run on ONNX Runtime")
        if not device.startswith("cuda") and precision == "fp16":
            raise BackendUnavailable("torch backend: fp16 is only used on CUDA (bf16 is the CPU's half precision)")
        self._dtype = torch.float32 if self._autocast else _DTYPES[precision]
        self._module: torch.nn.Module | None = None

    def load(self) -> None:
        # A private copy: moving/casting in place would change the LoadedModel other backends export from.
        module = copy.deepcopy(self.model.module).eval()
        module = module.to(device=self.device, dtype=self._dtype)
        # Channels-last lets cuDNN/oneDNN pick NHWC conv kernels (tensor cores on CUDA); harmless elsewhere.
        # Module.to applies it to rank-4 and rank-5 tensors alike, and rank 5 (a 3D LUT) has no channels-last
        # layout, so only the rank-4 ones (conv weights) are converted.
        for tensor in (*module.parameters(), *module.buffers()):
            if tensor.dim() == 4:
                tensor.data = tensor.data.contiguous(memory_format=torch.channels_last)
        self._module = module
        for p in self._module.parameters():
            p.requires_grad_(False)

    def run(self, tiles: np.ndarray, masks: np.ndarray | None = None) -> np.ndarray:
        if self._module is None:
            raise RuntimeError("TorchBackend.run before load()")
        try:
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self._autocast):
                x = torch.from_numpy(np.ascontiguousarray(tiles)).to(self.device, self._dtype)
                x = x.contiguous(memory_format=torch.channels_last)
                args = [x]
                if masks is not None:
                    args.append(torch.from_numpy(np.ascontiguousarray(masks)).to(self.device, self._dtype))
                y = self._module(*args)
                return y.float().contiguous().cpu().numpy()
        except torch.cuda.OutOfMemoryError as exc:
            torch.cuda.empty_cache()
            raise DeviceOutOfMemory(f"torch {self.device}: {exc}".splitlines()[0]) from exc

    def close(self) -> None:
        self._module = None
        if self.device.startswith("cuda") and torch.cuda.is_available():
            torch.cuda.empty_cache()
