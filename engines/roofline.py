"""What the machine can do and what an engine asks of it: measured GEMM peaks and counted FLOPs.

`retouch bench` divides an engine's achieved FLOP rate by the peak of its precision on the same machine, so
"fast" is a share of the hardware rather than a number that means nothing on another CPU. Peaks are square
matrix products (the best case of oneDNN / cuBLAS); FLOPs are counted by torch's FlopCounterMode
(convolutions and matrix products; elementwise work is not counted, which is why memory-bound layers show
as a low share).
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def gemm_peak_gflops(precision: str, device: str = "cpu", n: int = 2048, repeats: int = 5) -> float:
    """Best GFLOP/s of an n x n x n matrix product in `precision` on `device` (torch's current threads)."""
    dtype = _DTYPES[precision]
    a = torch.rand(n, n, device=device).to(dtype)
    b = torch.rand(n, n, device=device).to(dtype)
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        started = time.perf_counter()
        torch.matmul(a, b)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - started)
    return 2 * n**3 / best / 1e9


def machine_peaks(device: str = "cpu") -> dict[str, float]:
    """{precision: GFLOP/s} for the precisions engines run in on this device (fp32 and bf16 on CPU)."""
    precisions = ("fp32", "fp16") if device.startswith("cuda") else ("fp32", "bf16")
    return {p: gemm_peak_gflops(p, device) for p in precisions}


def flops_per_input_pixel(module: Any, in_channels: int, side: int = 64, takes_mask: bool = False) -> float:
    """Counted FLOPs of one forward pass per input pixel, on a (1, C, side, side) input (convnets scale
    linearly with area, so one small pass stands for every size)."""
    x = torch.rand(1, in_channels, side, side)
    args = [x] + ([torch.zeros(1, 1, side, side)] if takes_mask else [])
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        module(*args)
    return counter.get_total_flops() / (side * side)
