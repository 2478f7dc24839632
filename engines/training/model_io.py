"""Minimal, pickle-free weights I/O for the compact models: safetensors + metadata <-> nn.Module."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from engines.archs import ARCHS


def save_weights(model: nn.Module, path: Path, metadata: dict[str, str], half: bool = False) -> str:
    """Write `model`'s state dict as safetensors with string `metadata`; returns the file's sha256.

    `half` stores fp16 (half the size; the networks' outputs change by < 1e-3).
    """
    state = {k: (v.detach().half() if half else v.detach().float()).contiguous().cpu()
             for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path), metadata=metadata)
    return sha256_file(path)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_metadata(path: Path) -> dict[str, str]:
    """The safetensors header metadata (arch, arch_params, model_id, trained_with, seed, ...)."""
    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata() or {})


def load_model(path: Path, device: str = "cpu") -> tuple[nn.Module, dict[str, str]]:
    """Rebuild the network named by the file's metadata and load its weights (float32, eval mode)."""
    meta = read_metadata(path)
    try:
        cls = ARCHS[meta["arch"]]
    except KeyError as exc:
        raise ValueError(f"{path}: metadata arch {meta.get('arch')!r} is not one of {sorted(ARCHS)}") from exc
    model = cls(**json.loads(meta.get("arch_params", "{}")))
    state: dict[str, torch.Tensor] = {}
    with safe_open(str(path), framework="pt") as f:
        for k in f.keys():  # noqa: SIM118 (safe_open is not a mapping)
            state[k] = f.get_tensor(k).float()
    model.load_state_dict(state)
    return model.to(device).eval(), meta
