"""Writing trained weights: safetensors + string metadata (arch, arch_params, recipe, seed, ...).

Reading goes through `engines.weights_io` (`load_network`, `read_safetensors`), the one reader the worker
uses too; hashing through `engines.weights_io.sha256_file`.
"""

from __future__ import annotations

from pathlib import Path

from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from engines.weights_io import sha256_file

__all__ = ["read_metadata", "save_weights", "sha256_file"]


def save_weights(model: nn.Module, path: Path, metadata: dict[str, str], half: bool = False) -> str:
    """Write `model`'s state dict as safetensors with string `metadata`; returns the file's sha256.

    `half` stores fp16 (half the size; the networks' outputs change by < 1e-3).
    """
    state = {k: (v.detach().half() if half else v.detach().float()).contiguous().cpu()
             for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path), metadata=metadata)
    return sha256_file(path)


def read_metadata(path: Path) -> dict[str, str]:
    """The safetensors header metadata (arch, arch_params, model_id, trained_with, seed, ...)."""
    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata() or {})
