"""Shared fixtures: where the optional ../shared data lives, and skips when it does not."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Outputs must not depend on which CPU the suite lands on: `auto` precision is bf16 on CPUs with AMX and fp32
# elsewhere, so the suite pins fp32 (inherited by the worker processes it starts). tests/engines/test_precision.py
# asks for bf16 and auto explicitly and bounds their agreement with fp32.
os.environ.setdefault("RETOUCH_PRECISION", "fp32")
# The same backend on every machine, so results compare across runs (tests/engines/test_backend_probe.py
# times the backends for real).
os.environ.setdefault("RETOUCH_BACKEND_PROBE", "false")

# ../shared sits beside the checkout in development and CI; users' machines need not have it.
SHARED_DIR = Path(os.environ.get("RETOUCH_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))


def shared_path(*parts: str) -> Path:
    """Return a path under ../shared, skipping the calling test with a reason when it is absent."""
    path = SHARED_DIR.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (the project's ../shared data), which is absent on this machine")
    return path
