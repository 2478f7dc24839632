"""Which CPU backend runs an engine fastest on this machine: timed once, then remembered.

Neither runtime wins everywhere, and the winner depends on the network and on the CPU (oneDNN, ONNX
Runtime's MLAS and OpenVINO pick different kernels per ISA). `retouch bench` on a 2-core AMD EPYC (Zen 4,
AVX512-BF16, no AMX), 256 px input, whole engine call, output MP/s:

| engine | torch fp32 | ONNX Runtime fp32 | OpenVINO fp32 | torch bf16 | OpenVINO bf16 |
| --- | --- | --- | --- | --- | --- |
| retouch-sr-x2-real (CompactSR) | 0.94-1.18 | 0.74 | 1.30 | 1.89 | 2.19 |
| retouch-sr-x4-real (CompactSR) | 3.76-3.98 | 1.73 | 3.75 | 5.41-5.67 | 5.09 |
| retouch-denoise (CompactDenoiser) | 0.19-0.21 | 0.16 | 0.24 | 0.45 | 0.47 |
| retouch-sr-x4-perceptual (PlainSR) | 0.63-0.68 | 0.85 | 0.89 | 1.47-1.70 | 1.74 |
| retouch-sr-x2-perceptual (PlainSR) | 0.44-0.45 | 0.50 | 0.54 | 0.86-0.98 | 1.07 |
| retouch-matte (ProductMatte) | 2.93-3.30 | 2.26 | 1.94 | 4.10-4.22 | 4.17 |

So `auto` on a CPU times the backends that can run the engine's precision (fp32: ONNX Runtime, torch and
OpenVINO; bf16: torch and OpenVINO) on one `PROBE_SIDE` px tile (after a warm-up, best of `PROBE_RUNS`,
the backends taking turns) the first time an engine opens on a machine, and keeps the fastest. The verdict is written to
`<cache dir>/backend-probe/<key>.json`, keyed by the weights, the precision, the CPU model, its ISA flags,
the thread count and the runtimes' versions, so a later process (or a worker restart) reads it instead of
timing again, and a new CPU or runtime times afresh. The log says which backend won and by how much. CUDA
needs no probe (TensorRT, then torch). `RETOUCH_BACKEND_PROBE=false` restores the fixed order (fp32: ONNX
Runtime, then torch; bf16: torch).
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np

from engines.backends.base import Backend
from engines.errors import BackendUnavailable
from engines.loaded import LoadedModel

log = logging.getLogger(__name__)

# Which CPU backends can run each precision (ONNX Runtime's CPU provider has no bf16 convolutions).
CPU_BACKENDS = {"fp32": ("onnxruntime", "torch", "openvino"), "bf16": ("torch", "openvino")}
PROBE_SIDE = 128
PROBE_RUNS = 3
_ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


@cache
def cpu_signature() -> str:
    """The CPU model, its relevant ISA flags, the threads torch uses and the runtimes' versions (read from
    the installed packages' metadata: a cached verdict never imports a runtime it does not use)."""
    from importlib import metadata

    import torch

    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "none"

    model, flags = platform.processor(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    isa = ",".join(f for f in _ISA_FLAGS if f in flags)
    return (f"{model}|{isa}|threads={torch.get_num_threads()}|torch={torch.__version__}|"
            f"ort={version('onnxruntime')}|openvino={version('openvino')}")


def _probe_input(model: LoadedModel) -> tuple[np.ndarray, np.ndarray | None]:
    """One `PROBE_SIDE` px tile (within the spec's size rules), and a mask for masked engines."""
    spec = model.spec
    side = max(PROBE_SIDE // spec.size_multiple * spec.size_multiple, spec.min_size)
    side = min(side, spec.tile_size)
    tiles = np.random.default_rng(0).random((1, spec.in_channels, side, side), dtype=np.float32)
    masks = np.zeros((1, 1, side, side), np.float32) if model.takes_mask else None
    if masks is not None:
        masks[..., side // 3 : 2 * side // 3, side // 3 : 2 * side // 3] = 1
    return tiles, masks


def _one_run(backend: Backend, tiles: np.ndarray, masks: np.ndarray | None) -> float:
    started = time.perf_counter()
    backend.run(tiles, masks)
    return time.perf_counter() - started


def _time_backends(backends: dict[str, Backend], model: LoadedModel) -> dict[str, float]:
    """Best of PROBE_RUNS seconds per backend, after a warm-up each, the backends taking turns: a runtime's
    threads still spinning after its own run (ONNX Runtime's do) then slow every backend alike instead of
    only the one timed next."""
    tiles, masks = _probe_input(model)
    for backend in backends.values():
        backend.run(tiles, masks)  # first-call allocations and kernel choices
    best = dict.fromkeys(backends, float("inf"))
    for _ in range(PROBE_RUNS):
        for name, backend in backends.items():
            best[name] = min(best[name], _one_run(backend, tiles, masks))
    return best


def fastest_cpu_backends(model: LoadedModel, precision: str, cache_dir: Path,
                         make: Callable[[str], Backend]) -> tuple[list[str], str]:
    """(CPU backends fastest first, why) for `model` in `precision` on this machine; `make(name)` builds
    one (unloaded). Times them on the first call for these weights on this CPU, reads the verdict after."""
    names = CPU_BACKENDS[precision]
    key = hashlib.sha256(f"{model.weights_sha256}|{model.spec.id}|{precision}|{cpu_signature()}".encode())
    key = key.hexdigest()[:24]
    path = Path(cache_dir) / "backend-probe" / f"{key}.json"
    if path.is_file():
        try:
            verdict = json.loads(path.read_text())
            return list(verdict["order"]), f"timed earlier on this CPU ({_describe(verdict['seconds'])})"
        except (ValueError, KeyError):
            log.warning("backend probe %s is unreadable; timing again", path)
    loaded: dict[str, Backend] = {}
    try:
        for name in names:
            try:
                backend = make(name)
                backend.load()
            except (BackendUnavailable, ValueError) as exc:  # ValueError: the spec refuses this precision
                log.info("backend probe %s: %s unavailable (%s)", model.spec.id, name, exc)
                continue
            loaded[name] = backend
        seconds = _time_backends(loaded, model) if loaded else {}
    finally:
        for backend in loaded.values():
            backend.close()
    order = sorted(seconds, key=seconds.get) + [n for n in names if n not in seconds]
    if seconds:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{time.time_ns()}.tmp")
        tmp.write_text(json.dumps({"order": order, "seconds": seconds, "cpu": cpu_signature()}))
        tmp.replace(path)  # atomic: workers starting together never read half a verdict
    return order, f"timed now on this CPU ({_describe(seconds)})"


def _describe(seconds: dict[str, float]) -> str:
    return ", ".join(f"{name} {1000 * s:.1f} ms" for name, s in sorted(seconds.items(), key=lambda kv: kv[1]))
