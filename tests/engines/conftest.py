"""Fixtures for engine tests: seeded, randomly initialised built-in networks and a shared export cache."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from engines.families.compact_denoiser import DENOISE
from engines.families.compact_denoiser.network import CompactDenoiser
from engines.families.compact_sr import SR_X2_REAL, SR_X4_REAL
from engines.families.compact_sr.network import CompactSR
from engines.loaded import CallAdapter, LoadedModel, state_dict_sha256
from engines.spec import ModelSpec


def random_model(spec: ModelSpec, seed: int = 0, **arch_overrides: int) -> LoadedModel:
    """A built-in spec's architecture with seeded random weights (the tail perturbed so the body matters).

    The architectures start near identity/bicubic; perturbing every parameter makes parity and tiling
    tests exercise the whole network, not just the skip path.
    """
    torch.manual_seed(seed)
    params = {**spec.arch_params, **arch_overrides}
    net = {"CompactSR": CompactSR, "CompactDenoiser": CompactDenoiser}[spec.architecture](**params).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    spec = replace(spec, id=f"{spec.id}-random{seed}", arch_params=params)
    return LoadedModel(spec=spec, module=CallAdapter(net), weights_sha256=state_dict_sha256(net))


@pytest.fixture(scope="session")
def export_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ONNX export cache for the whole session: each network is exported once."""
    return tmp_path_factory.mktemp("retouch-cache")


@pytest.fixture(scope="session")
def random_models() -> dict[str, LoadedModel]:
    return {
        "sr-x2": random_model(SR_X2_REAL),
        "sr-x4": random_model(SR_X4_REAL),
        "denoise": random_model(DENOISE),
    }


@pytest.fixture
def make_random() -> Callable[..., LoadedModel]:
    return random_model
