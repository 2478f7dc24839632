"""Which floating-point precision an engine runs in: a property of the device, decided here and nowhere else.

- CUDA: fp16 where the spec allows half precision (tensor cores), else fp32.
- CPU with native bfloat16 (AMX-BF16 on Sapphire Rapids and later Xeons, AVX512-BF16 on Cooper Lake, Zen 4):
  bf16 autocast, which runs convolutions on the AMX tiles (measured on a 2-core Xeon: Real-ESRGAN x4plus
  5.2x faster than fp32, 54 dB apart; bf16 GEMM 1,879 vs 386 GFLOP/s).
- int8 (statically quantised graphs on ONNX Runtime, `engines/backends/onnx_quantize.py`) only when asked
  for (`RETOUCH_PRECISION=int8`) and only for specs that list it with a measured bound: 3.3x fp32 for
  retouch-sr-x4-perceptual on a Zen 4 EPYC, at least 46 dB from fp32; not yet `auto`'s choice (see its module).
- Any other CPU: fp32. oneDNN emulates bf16 there, which is slower than fp32, so fp32 stays first-class.

`RETOUCH_PRECISION` (auto | fp32 | fp16 | bf16 | int8) overrides the choice for every engine; a precision the spec
or the device cannot run falls back to fp32 with the reason logged. `Engine.precision` reports what the
backend really runs, and the manifest records it per engine.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

PRECISIONS = ("auto", "fp32", "fp16", "bf16", "int8")


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool | None:
    """True when the CPU computes bfloat16 natively (AVX512-BF16 or AMX-BF16), None when unknown (not Linux)."""
    try:
        flags = cpuinfo.read_text()
    except OSError:
        return None
    return "avx512_bf16" in flags or "amx_bf16" in flags


@cache
def _native_bf16() -> bool:
    return bool(cpu_has_native_bf16())


def choose_precision(requested: str | None, device: str, supported: tuple[str, ...]) -> tuple[str, str]:
    """(precision, why) for an engine on `device` whose spec lists `supported` precisions.

    `requested` None or "auto" means the device's best; anything else is honoured when the device and the
    spec can run it, else fp32 with the reason.
    """
    on_cuda = device.startswith("cuda")
    if requested in (None, "auto"):
        if on_cuda:
            return ("fp16", "CUDA tensor cores") if "fp16" in supported else ("fp32", "spec allows no fp16")
        if _native_bf16() and "bf16" in supported:
            return "bf16", "CPU has native bfloat16 (AMX-BF16 / AVX512-BF16)"
        return "fp32", "CPU has no native bfloat16" if not _native_bf16() else "spec allows no bf16"
    if requested not in PRECISIONS:
        raise ValueError(f"precision {requested!r} is not one of {', '.join(PRECISIONS)}")
    if requested not in supported:
        return "fp32", f"{requested} requested but the spec allows only {', '.join(supported)}"
    if requested == "fp16" and not on_cuda:
        return "fp32", "fp16 requested but runs only on CUDA"
    if requested == "int8" and on_cuda:
        return "fp32", "int8 requested but runs only on the CPU (ONNX Runtime)"
    return requested, "requested"
