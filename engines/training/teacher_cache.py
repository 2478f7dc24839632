"""Training triples for distillation: (HR crop, degraded LR, the teacher's super-resolution), computed once.

A teacher such as Real-ESRGAN x4plus costs ~18 M multiply-accumulates per LR pixel, 20x the student, so
running it inside the training loop would make teacher inference the whole cost of training. Instead
each crop is degraded once (`degrade_listing`, seeded per crop) and the teacher's output stored beside it,
as uint8, in shards of `SHARD` triples: a build that is interrupted resumes at the first missing shard,
and a later session reuses the cache (its folder name is the hash of everything that decides its pixels).

The teacher runs where it is fastest: bf16 autocast + channels-last on CPUs with AMX-BF16 or AVX512-BF16
(measured 5x faster than fp32 with ~54 dB agreement on x4plus), fp32 on other CPUs, fp16 on CUDA. For x2
students the teacher's x4 output is shrunk by MATLAB bicubic x0.5, the same peer the x2 table compares to.

Layout of `<cache_dir>/teacher-<key>/`: `spec.json`, `shard-000.pt` ... each a dict of uint8 NCHW tensors
`hr` (side), `lr` (side / scale) and `teacher` (side).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from engines.training.data import is_textured, shrunk, training_files
from engines.training.degrade import degrade_listing, imresize, quantize

SHARD = 256
TEACHER_LR_SIDE = 64  # LR pixels per crop the teacher sees, at either scale


@dataclass(frozen=True)
class TeacherCacheSpec:
    folder: str
    holdout: int
    scale: int
    samples: int
    teacher_sha256: str
    shrink: tuple[float, ...] = (1.0, 0.75, 0.5)
    seed: int = 0

    @property
    def hr_side(self) -> int:
        return TEACHER_LR_SIDE * self.scale

    def key(self) -> str:
        # The number of samples is not part of the key: raising it grows the same cache by more shards.
        decided = {**asdict(self), "folder": Path(self.folder).name, "samples": None}
        blob = json.dumps({**decided, "lr_side": TEACHER_LR_SIDE, "degradation": "listing-v1"}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return (x.float().clamp(0, 1) * 255).round().to(torch.uint8)


def teacher_runner(weights: Path, device: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """(N, 3, h, w) float LR -> the teacher's (N, 3, 4h, 4w) float output in [0, 1], at its fastest precision."""
    from engines.precision import cpu_has_native_bf16
    from engines.session import load_model

    net = load_model(str(weights)).module.eval().to(device).to(memory_format=torch.channels_last)
    if device.startswith("cuda"):
        dtype = torch.float16
    else:
        dtype = torch.bfloat16 if cpu_has_native_bf16() else None

    def run(lr: torch.Tensor) -> torch.Tensor:
        x = lr.to(device).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), torch.autocast(torch.device(device).type, dtype=dtype or torch.float32,
                                                    enabled=dtype is not None):
            return net(x).float().clamp(0, 1).cpu()

    return run


def _crops(spec: TeacherCacheSpec, start: int, count: int) -> list[np.ndarray]:
    """Crops number `start` .. `start + count - 1`, each drawn from its own seed (a shard is reproducible alone)."""
    files = training_files(Path(spec.folder), spec.holdout)
    out: list[np.ndarray] = []
    index = start
    while len(out) < count:
        rng = np.random.default_rng([spec.seed, 4242, index])
        f = files[int(rng.integers(0, len(files)))]
        arr = shrunk(f, float(rng.choice(spec.shrink)))
        side = spec.hr_side
        h, w = arr.shape[:2]
        if h >= side and w >= side:
            for _ in range(12):
                y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
                crop = arr[y : y + side, x : x + side]
                if is_textured(crop):
                    out.append(crop.copy())
                    break
        index += 1
    return out


def build(spec: TeacherCacheSpec, teacher: Path, cache_dir: Path, device: str = "cpu", batch: int = 8,
          log: Callable[[str], None] = print) -> Path:
    """Fill `cache_dir/teacher-<key>/` up to `spec.samples` triples (resuming); returns the folder."""
    folder = cache_dir / f"teacher-{spec.key()}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spec.json").write_text(json.dumps(asdict(spec), indent=1) + "\n")
    run = None
    shards = (spec.samples + SHARD - 1) // SHARD
    for shard in range(shards):
        path = folder / f"shard-{shard:03d}.pt"
        if path.exists():
            continue
        run = run or teacher_runner(teacher, device)
        started = time.time()
        count = min(SHARD, spec.samples - shard * SHARD)
        hr = torch.from_numpy(np.stack(_crops(spec, shard * 100_000, count))).permute(0, 3, 1, 2).float() / 255
        lr = torch.stack([degrade_listing(x, spec.scale, np.random.default_rng([spec.seed, 77, shard, i]))
                          for i, x in enumerate(hr)])
        outs = []
        for i in range(0, count, batch):
            out = run(lr[i : i + batch])
            if spec.scale != 4:
                out = imresize(out, size=(spec.hr_side, spec.hr_side)).clamp(0, 1)
            outs.append(quantize(out))
        tmp = path.with_suffix(".tmp")
        torch.save({"hr": _to_uint8(hr), "lr": _to_uint8(lr), "teacher": _to_uint8(torch.cat(outs))}, tmp)
        tmp.replace(path)  # atomic: an interrupted build never leaves a half shard
        log(f"teacher cache x{spec.scale}: shard {shard + 1}/{shards} ({count} crops, {time.time() - started:.0f} s)")
    return folder


def load(folder: Path) -> dict[str, torch.Tensor]:
    """All shards of a cache folder, concatenated: {"hr", "lr", "teacher"} uint8 NCHW."""
    shards = sorted(folder.glob("shard-*.pt"))
    if not shards:
        raise FileNotFoundError(f"no teacher shards in {folder}")
    parts = [torch.load(p, weights_only=True) for p in shards]
    return {k: torch.cat([p[k] for p in parts]) for k in ("hr", "lr", "teacher")}


def sample(cache: dict[str, torch.Tensor], n: int, lr_size: int, scale: int,
           rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`n` random aligned (lr, hr, teacher) float patches with the same flips and 90-degree turns applied."""
    idx = rng.integers(0, cache["lr"].shape[0], n)
    full = cache["lr"].shape[-1]
    lrs, hrs, teachers = [], [], []
    for i in idx:
        y, x = (int(v) for v in rng.integers(0, full - lr_size + 1, 2))
        k, flip = int(rng.integers(0, 4)), bool(rng.random() < 0.5)
        hy, hx, hs = y * scale, x * scale, lr_size * scale
        parts = [cache["lr"][int(i), :, y : y + lr_size, x : x + lr_size],
                 cache["hr"][int(i), :, hy : hy + hs, hx : hx + hs],
                 cache["teacher"][int(i), :, hy : hy + hs, hx : hx + hs]]
        if k:
            parts = [torch.rot90(p, k, dims=(1, 2)) for p in parts]
        if flip:
            parts = [p.flip(2) for p in parts]
        lrs.append(parts[0])
        hrs.append(parts[1])
        teachers.append(parts[2])
    return tuple(torch.stack(t).float() / 255 for t in (lrs, hrs, teachers))  # type: ignore[return-value]


def main() -> None:
    import argparse

    from engines.weights_io import sha256_file

    parser = argparse.ArgumentParser(description="build a teacher cache (resumable)")
    parser.add_argument("--teacher", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="folder of training photos")
    parser.add_argument("--cache-dir", type=Path, default=Path("runs/teacher"))
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--samples", type=int, default=4096)
    parser.add_argument("--holdout", type=int, default=25)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    spec = TeacherCacheSpec(str(args.data), args.holdout, args.scale, args.samples, sha256_file(args.teacher))
    print(build(spec, args.teacher, args.cache_dir, args.device))


if __name__ == "__main__":
    main()
