"""What an engine step costs: process CPU seconds and, on CUDA, GPU seconds; and their price.

CPU seconds are `time.process_time()` deltas: every thread of the process (torch's intra-op pool, ONNX
Runtime's), which is what an operator pays for on a CPU node, unlike wall time. GPU seconds are CUDA-event
time on the current stream between the engine call's start and end: the span the GPU was busy for this
image (a GPU node is paid for by the hour whether its kernels fill the span or not).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class StepCost:
    cpu_seconds: float
    gpu_seconds: float | None  # None: the engine did not run on CUDA


class CostMeter:
    """Started just before an engine call and stopped just after it."""

    def __init__(self, device: str) -> None:
        self._cuda_events: tuple[Any, Any] | None = None
        if device.startswith("cuda"):
            import torch

            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            self._cuda_events = (start, end)
        self._cpu_started = time.process_time()

    def stop(self) -> StepCost:
        cpu_seconds = time.process_time() - self._cpu_started
        if self._cuda_events is None:
            return StepCost(cpu_seconds=cpu_seconds, gpu_seconds=None)
        start, end = self._cuda_events
        end.record()
        end.synchronize()  # elapsed_time needs both events complete
        return StepCost(cpu_seconds=cpu_seconds, gpu_seconds=start.elapsed_time(end) / 1000.0)


def price(cpu_seconds: float, gpu_seconds: float, *, cpu_hour: float | None, gpu_hour: float | None) -> dict | None:
    """The price of these seconds at hourly rates (USD); None when no rate is set (an unset rate counts 0)."""
    if cpu_hour is None and gpu_hour is None:
        return None
    total = cpu_seconds / 3600 * (cpu_hour or 0.0) + gpu_seconds / 3600 * (gpu_hour or 0.0)
    return {"currency": "USD", "cpu_hour": cpu_hour, "gpu_hour": gpu_hour, "total": round(total, 8)}
