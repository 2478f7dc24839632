"""The engines' error tree: the type decides retry or not, `reason` is the metric label.

One root, `EngineError`; every subclass fixes `reason` (short snake_case, low cardinality, used verbatim as
a Prometheus label and in the manifest) and `retryable` (whether the worker should try the job again).
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "BackendUnavailable",
    "DeviceOutOfMemory",
    "EngineError",
    "InvalidInput",
    "UnknownEngine",
    "WeightsError",
]


class EngineError(Exception):
    """Root of every error raised by `engines`."""

    reason: ClassVar[str] = "engine_error"
    retryable: ClassVar[bool] = False


class UnknownEngine(EngineError):
    """No engine with that id in the registry (permanent: a config or request error)."""

    reason = "unknown_engine"
    retryable = False


class WeightsError(EngineError):
    """Weights are unreadable, fail their sha256 check, or hold an architecture we cannot build (permanent)."""

    reason = "bad_weights"
    retryable = False


class BackendUnavailable(EngineError):
    """The requested backend cannot run here (not installed, no CUDA, model not exportable); permanent."""

    reason = "backend_unavailable"
    retryable = False


class DeviceOutOfMemory(EngineError):
    """The device ran out of memory even at the smallest tile size (retryable: memory frees up later)."""

    reason = "device_out_of_memory"
    retryable = True


class InvalidInput(EngineError):
    """The image or mask handed to an engine breaks the call contract (shape, dtype, channels); permanent."""

    reason = "invalid_input"
    retryable = False
