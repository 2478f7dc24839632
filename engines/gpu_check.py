"""Every built-in engine's accelerated path checked in one go: half precision against fp32, and speed.

`infra/gpu/check.sh` runs this on a GPU machine (torch with CUDA; no TensorRT, no internet needed): for each
built-in engine, the torch backend in fp32 and in half precision (fp16 on CUDA, bf16 on a CPU), the
agreement of the two outputs on a natural photo (PSNR, dB), and from `retouch bench`'s measurement the
output megapixels per second and the share of the device's own measured GEMM peak for that precision.
Engines whose spec allows no half precision (`retouch-inpaint`: fp32 only) are measured in fp32 and say so.

    python -m engines.gpu_check [--device cuda] [--sizes 512] [--engines a,b] [--json PATH]

On a machine without CUDA `--device cpu` runs the same check with bf16 as the half precision (how the
tests exercise it); `--device cuda` there exits with status 3 and says the GPU path is unverified.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

NO_CUDA = 3


def _photo(side: int = 256) -> np.ndarray:
    from skimage import data

    img = data.astronaut()[64 : 64 + side, 128 : 128 + side].astype(np.float32) / 255
    return np.ascontiguousarray(img)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.clip(a, 0, 1) - np.clip(b, 0, 1)) ** 2))
    return float(10 * np.log10(1 / max(mse, 1e-12)))


def _run(engine, image: np.ndarray) -> np.ndarray:  # noqa: ANN001
    """One output of the engine as the worker calls it (masked engines fill a box, the rest process)."""
    from engines.spec import Task

    if engine.spec.task is Task.INPAINT:
        mask = np.zeros(image.shape[:2], np.float32)
        h, w = mask.shape
        mask[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3] = 1
        return engine.fill(image, mask)
    return engine.process(image)


def agreement(model_id: str, device: str, half: str) -> tuple[str, float | None]:
    """(the half precision the engine really ran, PSNR of its output against fp32's; None when fp32 only)."""
    from engines.session import Engine, load_model

    model = load_model(model_id)
    image = _photo()
    outputs = {}
    ran = "fp32"
    for precision in ("fp32", half):
        with Engine(model, backend="torch", device=device, precision=precision, warm_up=False) as engine:
            if precision == half:
                ran = engine.precision
                if ran == "fp32":
                    return ran, None
            outputs[precision] = _run(engine, image)
    return ran, _psnr(outputs["fp32"], outputs[half])


def check(engines: list[str], device: str, sizes: list[int], log=print) -> dict:
    """{"device", "peaks_gflops", "engines": [{engine, half, agreement_db, speed: [...]}], "seconds"}."""
    import torch

    from engines.commands import BenchResult, run_bench
    from engines.roofline import machine_peaks

    started = time.perf_counter()
    half = "fp16" if device.startswith("cuda") else "bf16"
    peaks = machine_peaks(device)
    log("peaks (GEMM 2048^3): " + ", ".join(f"{p} {v:.0f} GFLOP/s" for p, v in peaks.items()))
    rows = []
    for model_id in engines:
        ran, db = agreement(model_id, device, half)
        results = run_bench([model_id], ["torch"], sizes, repeat=3, device=device,
                            precisions=["fp32", half] if db is not None else ["fp32"], peaks=peaks)
        speed = [{"precision": r.precision, "size": r.size,
                  "output_megapixels_per_s": round(r.output_megapixels_per_s, 3), "gflops": round(r.gflops, 1),
                  "percent_of_peak": round(r.percent_of_peak, 1), "peak_mib": round(r.peak_mib, 1)}
                 for r in results if isinstance(r, BenchResult)]
        errors = [r["error"] for r in results if isinstance(r, dict)]
        rows.append({"engine": model_id, "half": ran if db is not None else "none (fp32 only)",
                     "agreement_db": None if db is None else round(db, 1), "speed": speed, "errors": errors})
        shown = "fp32 only" if db is None else f"{ran} vs fp32 {db:.1f} dB"
        log(f"{model_id}: {shown}; " + "; ".join(
            f"{s['precision']} {s['size']}px {s['output_megapixels_per_s']} out MP/s, {s['percent_of_peak']} % of peak"
            for s in speed) + (f"; errors: {errors}" if errors else ""))
    name = torch.cuda.get_device_name(0) if device.startswith("cuda") else "cpu"
    return {"device": device, "device_name": name, "peaks_gflops": peaks, "engines": rows,
            "seconds": round(time.perf_counter() - started, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engines.gpu_check", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--sizes", default="512", help="comma-separated input sides for the speed figures")
    parser.add_argument("--engines", default=None, help="comma-separated engine ids (default: every built-in)")
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = parser.parse_args(argv)
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device here: the GPU path is unverified on this machine", file=sys.stderr)
        return NO_CUDA
    from engines.registry import builtin_registry

    engines = args.engines.split(",") if args.engines else [spec.id for spec in builtin_registry()]
    report = check(engines, args.device, [int(s) for s in args.sizes.split(",")],
                   log=lambda m: print(m, file=sys.stderr, flush=True))
    text = json.dumps(report, indent=2)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
