"""`retouch models list` and `retouch bench`: argparse subcommands the worker CLI mounts via `register()`.

Heavy imports (torch, onnxruntime) happen inside the handlers, so building the CLI stays fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["BenchResult", "register"]


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `models` and `bench` subcommands; each sets `func(args) -> int`."""
    models = subparsers.add_parser("models", help="inspect the engine registry")
    models_sub = models.add_subparsers(dest="models_command", required=True)
    listing = models_sub.add_parser("list", help="print every registered engine as a table")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(func=_models_list)

    bench = subparsers.add_parser("bench", help="measure engine throughput and peak memory per backend")
    bench.add_argument("--sizes", default="256,512", help="comma-separated square input sides in pixels")
    bench.add_argument("--engines", default=None,
                       help="comma-separated registry ids or weights paths (default: every registered engine)")
    bench.add_argument("--backends", default=None,
                       help="comma-separated backends (default: every one available here)")
    bench.add_argument("--repeat", type=int, default=3, help="timed runs per size (the median is reported)")
    bench.add_argument("--random-init", action="store_true",
                       help="use randomly initialised built-in networks when their weights are not shipped "
                            "(speed and memory do not depend on the weight values)")
    bench.add_argument("--precisions", default="auto",
                       help="comma-separated: auto (the device's choice), fp32, bf16, fp16 (default: auto)")
    bench.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    bench.add_argument("--cache-dir", type=Path, default=None, help="ONNX/TensorRT cache (default: RETOUCH_CACHE_DIR)")
    bench.add_argument("--json", action="store_true", help="print JSON instead of a table")
    bench.set_defaults(func=_bench)


# -- models list ---------------------------------------------------------------------------------------


def _available_backends() -> list[str]:
    import onnxruntime  # noqa: F401 - a hard dependency; imported to fail loudly if broken

    from engines.backends.openvino_backend import openvino_available
    from engines.backends.tensorrt_backend import tensorrt_available

    return (["torch", "onnxruntime"] + (["openvino"] if openvino_available() else [])
            + (["tensorrt"] if tensorrt_available() else []))


def _weights_state(spec: Any) -> str:
    from engines.weights_io import WEIGHTS_DIR, sha256_file

    ref = spec.weights
    if ref.is_s3:
        return f"s3 {(ref.sha256 or 'unpinned')[:12]}"
    path = Path(ref.file) if Path(ref.file).is_absolute() else WEIGHTS_DIR / ref.file
    if not path.is_file():
        return "missing"
    if ref.sha256 is None:
        return "present, unpinned"
    return f"ok {ref.sha256[:12]}" if sha256_file(path) == ref.sha256 else "SHA256 MISMATCH"


def _param_count(spec: Any) -> int | None:
    from engines.families import architectures

    if spec.architecture not in architectures():
        return None
    net = architectures()[spec.architecture](**spec.arch_params)
    return sum(p.numel() for p in net.parameters())


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _models_list(args: argparse.Namespace) -> int:
    from engines.registry import builtin_registry

    registry = builtin_registry()
    backends = ",".join(_available_backends())
    rows = []
    for spec in registry:
        params = _param_count(spec)
        rows.append({
            "id": spec.id, "task": spec.task.value, "scale": spec.scale,
            "params": params, "backends": backends, "weights": _weights_state(spec),
            "tile": f"{spec.tile_size}/{spec.tile_overlap}",
            "default": registry.default_for(spec.task, spec.scale).id == spec.id,
        })
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        headers = ["id", "task", "scale", "params", "backends", "weights", "tile/overlap", "default"]
        print(_table(headers, [[r["id"], r["task"], f"x{r['scale']}", f"{r['params']:,}" if r["params"] else "?",
                                r["backends"], r["weights"], r["tile"], "*" if r["default"] else ""] for r in rows]))
    return 0


# -- bench ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchResult:
    """One measurement: input megapixels per second (median of `repeat` runs) and peak memory in MiB."""

    engine: str
    backend: str
    device: str
    precision: str
    size: int
    seconds: float
    megapixels_per_s: float
    peak_mib: float
    memory_kind: str  # "rss_delta" on CPU, "cuda_max_allocated" on CUDA
    weights: str  # "shipped" or "random"
    output_megapixels_per_s: float = 0.0
    gflops: float = 0.0  # counted convolution/matmul FLOPs per second (engines.roofline)
    percent_of_peak: float = 0.0  # of the measured GEMM peak of the precision that ran
    cpu_seconds: float = 0.0  # process CPU time per run (every thread), the mean over the timed runs
    cpu_seconds_per_output_megapixel: float = 0.0  # what the manifest's cost.cpu_seconds grows by per output MP


def _rss_bytes() -> int:
    # /proc is Linux-only, which is where workers run; psutil would be one more dependency for one number.
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _PeakRss:
    """Sample RSS every few milliseconds in a thread; `peak_delta` is the max above the starting RSS."""

    def __init__(self, interval: float = 0.005) -> None:
        self._interval = interval
        self._stop = threading.Event()
        self.start_rss = _rss_bytes()
        self.peak = self.start_rss
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes())
            self._stop.wait(self._interval)

    def __enter__(self) -> _PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())

    @property
    def peak_delta(self) -> int:
        return self.peak - self.start_rss


def _bench_mask(engine: Any, image: Any) -> Any:
    """A centred box over ~6 % of the image for inpainting engines (their contract needs a mask): a sticker
    or tag on a listing photo, the hole issue 17 times; else None."""
    import numpy as np

    from engines.spec import Task

    if engine.spec.task is not Task.INPAINT:
        return None
    h, w = image.shape[:2]
    mask = np.zeros((h, w), dtype=np.float32)
    mask[int(h * 0.38) : int(h * 0.62), int(w * 0.38) : int(w * 0.62)] = 1.0
    return mask


def _measure(engine: Any, image: Any, repeat: int) -> tuple[float, float, str, float]:
    """(median wall seconds, peak MiB, memory kind, mean process CPU seconds per run)."""
    import numpy as np
    import torch

    on_cuda = engine.device.startswith("cuda")
    mask = _bench_mask(engine, image)
    if mask is not None:
        engine = _WithMask(engine, mask)
    times = []
    if on_cuda:
        engine.process(image)  # warm-up at this size (allocators, cuDNN/TensorRT shape-specific plans)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        cpu_started = time.process_time()
        for _ in range(repeat):
            t0 = time.perf_counter()
            engine.process(image)
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        cpu = (time.process_time() - cpu_started) / repeat
        return float(np.median(times)), torch.cuda.max_memory_allocated() / 2**20, "cuda_max_allocated", cpu
    # The warm-up run is inside the RSS window: its allocations (ORT arena, oneDNN scratch) are the
    # working memory this size needs. Caches kept from an earlier, larger size are not counted again.
    with _PeakRss() as peak:
        engine.process(image)
        cpu_started = time.process_time()  # includes the RSS sampler's thread: a few ms of its waking up
        for _ in range(repeat):
            t0 = time.perf_counter()
            engine.process(image)
            times.append(time.perf_counter() - t0)
        cpu = (time.process_time() - cpu_started) / repeat
    return float(np.median(times)), peak.peak_delta / 2**20, "rss_delta", cpu


class _WithMask:
    """An engine whose process() always gets the benchmark mask, through `fill` (the path the worker runs:
    the engine's working resolution and hole windows) where the engine has one."""

    def __init__(self, engine: Any, mask: Any) -> None:
        self._engine, self._mask, self.device = engine, mask, engine.device

    def process(self, image: Any) -> Any:
        if self._engine.spec.work_side is not None:
            return self._engine.fill(image, self._mask)
        return self._engine.process(image, mask=self._mask)


def _load_for_bench(model: str, random_init: bool, cache_dir: Path | None) -> tuple[Any, str]:
    from engines.errors import WeightsError
    from engines.registry import builtin_registry
    from engines.session import load_model

    registry = builtin_registry()
    try:
        return load_model(model, registry=registry, cache_dir=cache_dir), "shipped"
    except WeightsError:
        if not (random_init and model in registry):
            raise
    import torch

    from engines.families import architectures
    from engines.loaded import CallAdapter, LoadedModel, state_dict_sha256

    spec = registry.get(model)
    torch.manual_seed(0)
    net = architectures()[spec.architecture](**spec.arch_params).eval()
    return LoadedModel(spec=spec, module=CallAdapter(net), weights_sha256=state_dict_sha256(net)), "random"


def run_bench(engines: Sequence[str], backends: Sequence[str], sizes: Sequence[int], *, repeat: int = 3,
              random_init: bool = False, device: str | None = None, cache_dir: Path | None = None,
              precisions: Sequence[str] = ("auto",), peaks: dict[str, float] | None = None,
              log: Callable[[str], None] = lambda _m: None) -> list[BenchResult | dict[str, str]]:
    """Benchmark each engine x backend x precision x size; failures are returned as {"engine", "backend",
    "error"} rows. `peaks` ({precision: GFLOP/s}, `engines.roofline.machine_peaks`) turns rates into shares."""
    import numpy as np

    from engines.errors import EngineError
    from engines.roofline import flops_per_input_pixel
    from engines.session import Engine
    from engines.spec import Task

    results: list[BenchResult | dict[str, str]] = []
    rng = np.random.default_rng(0)
    for model in engines:
        try:
            loaded, weights = _load_for_bench(model, random_init, cache_dir)
        except EngineError as exc:
            results.append({"engine": model, "backend": "-", "error": f"{exc.reason}: {exc}"})
            continue
        side = max(64 // loaded.spec.size_multiple * loaded.spec.size_multiple, loaded.spec.min_size)
        if loaded.spec.task is Task.TONE:
            # A tone network runs once per photo on a thumbnail; per pixel there is only a table lookup
            # (memory-bound, no multiply-adds to count against a GEMM peak).
            flops_per_pixel, flops_per_photo = 0.0, 0.0
        elif loaded.spec.task is Task.MATTING:
            # A matting network runs once per photo at its working side whatever the photo's size; the
            # full-resolution guided upsampling is elementwise.
            work = loaded.spec.tile_size
            flops_per_pixel, flops_per_photo = 0.0, flops_per_input_pixel(loaded.module, 3, work) * work * work
        elif loaded.spec.work_side is not None:
            # A masked engine with a working resolution runs on a window or a shrunk canvas whose size
            # depends on the hole, not the photo: its time is per photo, and no per-pixel rate is counted.
            flops_per_pixel, flops_per_photo = 0.0, 0.0
        else:
            flops_per_pixel = flops_per_input_pixel(loaded.module, loaded.spec.in_channels, side, loaded.takes_mask)
            flops_per_photo = 0.0
        seen: set[tuple[str, str]] = set()
        for backend in backends:
            for precision in precisions:
                try:
                    engine = Engine(loaded, backend=backend, device=device, cache_dir=cache_dir,
                                    precision=precision)
                except EngineError as exc:
                    results.append({"engine": model, "backend": backend, "error": f"{exc.reason}: {exc}"})
                    continue
                if (engine.backend_name, engine.precision) in seen:  # e.g. ONNX Runtime asked for bf16 runs fp32
                    engine.close()
                    continue
                seen.add((engine.backend_name, engine.precision))
                with engine:
                    for size in sizes:
                        log(f"bench {model} {backend} {engine.precision} {size}x{size}")
                        image = rng.random((size, size, 3), dtype=np.float32)
                        seconds, peak, kind, cpu = _measure(engine, image, repeat)
                        output_mp = size * size * loaded.spec.scale**2 / 1e6
                        gflops = (flops_per_photo + flops_per_pixel * size * size) / seconds / 1e9
                        share = 100 * gflops / peaks[engine.precision] if peaks and engine.precision in peaks else 0.0
                        results.append(BenchResult(
                            model, engine.backend_name, engine.device, engine.precision, size, seconds,
                            size * size / 1e6 / seconds, peak, kind, weights,
                            output_mp / seconds, gflops, share, cpu, cpu / output_mp))
    return results


def _bench(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from engines.registry import builtin_registry

    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    engines = [e.strip() for e in args.engines.split(",")] if args.engines else [s.id for s in builtin_registry()]
    backends = [b.strip() for b in args.backends.split(",")] if args.backends else _available_backends()
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    import torch

    from engines.roofline import machine_peaks

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    peaks = machine_peaks(device)
    print("machine peaks (GEMM 2048^3, "
          f"{torch.get_num_threads()} threads): " + ", ".join(f"{p} {v:.0f} GFLOP/s" for p, v in peaks.items()),
          file=sys.stderr)
    results = run_bench(engines, backends, sizes, repeat=max(1, args.repeat), random_init=args.random_init,
                        device=args.device, cache_dir=args.cache_dir, precisions=precisions, peaks=peaks,
                        log=lambda m: print(m, file=sys.stderr, flush=True))
    measured = [r for r in results if isinstance(r, BenchResult)]
    errors = [r for r in results if isinstance(r, dict)]
    if args.json:
        print(json.dumps({"peaks_gflops": peaks, "results": [asdict(r) for r in measured], "errors": errors},
                         indent=2))
        return 0 if measured else 1
    torch_speed = {(r.engine, r.size): r.megapixels_per_s for r in measured
                   if r.backend == "torch" and r.precision == "fp32"}
    rows = []
    for r in measured:
        ref = torch_speed.get((r.engine, r.size))
        ratio = f"{r.megapixels_per_s / ref:.2f}" if ref else "-"
        rows.append([r.engine, r.backend, r.device, r.precision, f"{r.size}x{r.size}", f"{r.seconds * 1000:.0f}",
                     f"{r.megapixels_per_s:.3f}", f"{r.output_megapixels_per_s:.3f}", f"{r.gflops:.0f}",
                     f"{r.percent_of_peak:.0f} %", ratio, f"{r.peak_mib:.0f} ({r.memory_kind})", r.weights])
    print(_table(["engine", "backend", "device", "precision", "input", "ms", "in MP/s", "out MP/s", "GFLOP/s",
                  "of peak", "vs torch fp32", "peak MiB", "weights"], rows))
    for e in errors:
        print(f"skipped {e['engine']} on {e['backend']}: {e['error']}")
    return 0 if measured else 1
