"""A model ready to hand to a backend: its spec, a torch module, and the hash that keys every cache."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from engines.spec import ModelSpec, Task

__all__ = ["CallAdapter", "LoadedModel", "state_dict_sha256"]


class CallAdapter(nn.Module):
    """Wrap a network so that calling it follows the engines' contract and nothing else.

    forward(image[, mask]): image (N, in_channels, H, W) float in [0, 1]; mask (N, 1, H, W) in {0, 1}
    (1 = fill) for inpainting; returns (N, out_channels, H*scale, W*scale) float, not clamped.
    `call` exists because some community models need a little glue around `forward` (spandrel's per-
    architecture call functions, e.g. DRUNet's noise-level channel or FBCNN's tuple output).
    """

    def __init__(self, net: nn.Module, call: Callable[..., torch.Tensor] | None = None):
        super().__init__()
        self.net = net
        self._call = call

    def forward(self, image: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        args = (image,) if mask is None else (image, mask)
        if self._call is not None:
            return self._call(self.net, *args)
        return self.net(*args)


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """Spec + module (eval mode, fp32, CPU) + the sha256 of the weights it was built from.

    weights_sha256 keys the ONNX export and TensorRT engine caches: same hash, same network.
    """

    spec: ModelSpec
    module: CallAdapter
    weights_sha256: str

    @property
    def takes_mask(self) -> bool:
        return self.spec.task is Task.INPAINT


def state_dict_sha256(module: nn.Module) -> str:
    """A stable hash of a module's parameters and buffers (for modules built in memory, e.g. in tests)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode() + str(tensor.dtype).encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
