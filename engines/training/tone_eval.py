"""`retouch eval tone`: the tone engine on held-aside catalogue photos, spoiled and as they are.

For each held-aside photo (the last 25 of products/train by name, never trained on), read at half size
(long side 790 px; the transform is global, so the figures hold at any size):
- two fixed random spoils (`tone_perturb`, seeded; each at least 3 mean dE2000 from the truth, i.e.
  visible): PSNR and mean CIEDE2000 of the spoiled input and of its correction against the truth, for the
  engine and for a classical baseline (grey-world white balance + a 0.5-99.5 % per-channel levels stretch);
- the photo as it is: how far the engine moves a good photo (PSNR of its output against its input).
With `--gate`, the whole `auto` pipeline (analysis, plan, quality gate) runs on the full-size photos, as
they are and degraded (spoiled tone, shrunk x0.5, noise sigma 20): the shares passed through and enhanced.
`--save-dir` writes side-by-sides (spoiled | corrected | truth; and `--real-lr` photos: as uploaded |
corrected).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from engines.training import tone_perturb
from engines.training.data import list_images, resolve, split_holdout

SEED = 4242
MIN_VISIBLE_DELTA_E = 3.0
EVAL_LONG_SIDE = 790


def read(path: Path, long_side: int | None = EVAL_LONG_SIDE) -> np.ndarray:
    with Image.open(resolve(path)) as im:
        im = im.convert("RGB")
        if long_side and max(im.size) > long_side:
            im.thumbnail((long_side, long_side), Image.Resampling.LANCZOS)
        return np.asarray(im, dtype=np.float32) / 255.0


def quantise(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x, 0, 1) * 255) / 255


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return 10 * np.log10(1.0 / max(mse, 1e-12))


def delta_e(a: np.ndarray, b: np.ndarray) -> float:
    from skimage.color import deltaE_ciede2000, rgb2lab

    return float(deltaE_ciede2000(rgb2lab(a), rgb2lab(b)).mean())


def classical(x: np.ndarray) -> np.ndarray:
    """Grey-world white balance, then per-channel levels from the 0.5th to the 99.5th percentile."""
    balanced = x * (x.mean() / np.maximum(x.reshape(-1, 3).mean(axis=0), 1e-4))
    low, high = np.percentile(balanced.reshape(-1, 3), [0.5, 99.5], axis=0)
    return np.clip((balanced - low) / np.maximum(high - low, 1e-4), 0, 1)


def visible_spoils(truth: np.ndarray, rng: np.random.Generator, count: int) -> list[tuple[dict, np.ndarray]]:
    """`count` spoils of `truth`, each redrawn until it is visible (>= MIN_VISIBLE_DELTA_E)."""
    out = []
    small = truth[::4, ::4]
    while len(out) < count:
        p = tone_perturb.draw(rng)
        if delta_e(quantise(tone_perturb.apply_numpy(small, p)), small) >= MIN_VISIBLE_DELTA_E:
            out.append((p.as_dict(), quantise(tone_perturb.apply_numpy(truth, p))))
    return out


@dataclass
class ToneRow:
    method: str
    cases: int
    psnr_in: float
    psnr_out: float
    gain_db: float
    delta_e_in: float
    delta_e_out: float


def side_by_side(images: list[np.ndarray], height: int = 300) -> np.ndarray:
    tiles = []
    for img in images:
        im = Image.fromarray((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8))
        im = im.resize((round(im.width * height / im.height), height), Image.Resampling.LANCZOS)
        tiles.append(np.asarray(im))
        tiles.append(np.full((height, 4, 3), 255, np.uint8))
    return np.concatenate(tiles[:-1], axis=1)


def evaluate(data_dir: Path, model: str, *, limit: int | None, save_dir: Path | None,
             spoils_per_photo: int = 2) -> dict:
    from engines.session import open_engine

    _, held = split_holdout(list_images(data_dir / "products" / "train"), 25)
    held = held[:limit] if limit else held
    rng = np.random.default_rng(SEED)
    sums: dict[str, list[tuple[float, float, float, float]]] = {"retouch-tone": [], "grey world + levels": []}
    identity: list[float] = []
    cases = []
    seconds = 0.0
    corrected_pixels = 0
    with open_engine(model) as engine:
        for index, path in enumerate(held):
            truth = read(path)
            out_identity = engine.process(truth)
            identity.append(psnr(out_identity, truth))
            for number, (params, spoiled) in enumerate(visible_spoils(truth, rng, spoils_per_photo)):
                started = time.perf_counter()
                corrected = engine.process(spoiled)
                seconds += time.perf_counter() - started
                corrected_pixels += spoiled.shape[0] * spoiled.shape[1]
                base = classical(spoiled)
                p_in, de_in = psnr(spoiled, truth), delta_e(spoiled, truth)
                sums["retouch-tone"].append((p_in, psnr(corrected, truth), de_in, delta_e(corrected, truth)))
                sums["grey world + levels"].append((p_in, psnr(base, truth), de_in, delta_e(base, truth)))
                cases.append({"photo": path.name, "spoil": params, "psnr_in": round(p_in, 2),
                              "psnr_out": round(sums["retouch-tone"][-1][1], 2)})
                if save_dir is not None and number == 0 and index < 12:
                    save_dir.mkdir(parents=True, exist_ok=True)
                    Image.fromarray(side_by_side([spoiled, base, corrected, truth])).save(
                        save_dir / f"tone-{index:02d}-{path.stem}.png")
    rows = []
    for method, values in sums.items():
        arr = np.array(values)
        rows.append(ToneRow(method, len(arr), *(round(float(v), 2) for v in (
            arr[:, 0].mean(), arr[:, 1].mean(), (arr[:, 1] - arr[:, 0]).mean(), arr[:, 2].mean(), arr[:, 3].mean()))))
    return {"rows": [asdict(r) for r in rows], "identity_psnr_mean": round(float(np.mean(identity)), 2),
            "identity_psnr_min": round(float(np.min(identity)), 2),
            "identity_share_ge_40db": round(float(np.mean(np.array(identity) >= 40)), 3),
            "ms_per_megapixel": round(1000 * seconds / (corrected_pixels / 1e6), 1), "cases": cases}


def real_side_by_sides(folder: Path, model: str, save_dir: Path, limit: int = 4) -> list[Path]:
    from engines.session import open_engine

    written = []
    with open_engine(model) as engine:
        for path in list_images(folder)[:limit]:
            photo = read(path, 640)
            out = save_dir / f"tone-real-{path.stem}.png"
            save_dir.mkdir(parents=True, exist_ok=True)
            Image.fromarray(side_by_side([photo, engine.process(photo)])).save(out)
            written.append(out)
    return written


def _encode(rgb: np.ndarray, quality: int = 95) -> bytes:
    buf = io.BytesIO()
    Image.fromarray((np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def gate_shares(data_dir: Path, model: str, limit: int | None) -> dict:
    """The worker's `auto` pipeline (imported here: this measures the product, not only the engine) on the
    full-size held-aside photos as they are, and degraded three ways."""
    from worker.engine_pool import EnginePool
    from worker.pipeline import Job, image_steps, run_steps
    from worker.settings import load_settings

    settings = load_settings()
    policy = settings.policy.model_copy(update={"tone_model": model})
    _, held = split_holdout(list_images(data_dir / "products" / "train"), 25)
    held = held[:limit] if limit else held
    rng = np.random.default_rng(SEED + 1)
    engines = EnginePool()
    tally: dict[str, dict[str, int]] = {}
    reasons: dict[str, dict[str, int]] = {}

    def run(kind: str, data: bytes) -> None:
        job = Job(limits=settings.limits, policy=policy)
        job.data = data
        run_steps(job, image_steps(engines), deadline=float("inf"))
        enhanced = any(v.verdict == "applied" for v in job.gate)
        counts = tally.setdefault(kind, {"photos": 0, "enhanced": 0})
        counts["photos"] += 1
        counts["enhanced"] += int(enhanced)
        for v in job.gate:
            key = f"{v.step}:{v.verdict}:{v.reason}"
            reasons.setdefault(kind, {})[key] = reasons.setdefault(kind, {}).get(key, 0) + 1

    try:
        for path in held:
            original = resolve(path).read_bytes()
            truth = read(path, None)
            run("as they are", original)
            (_, spoiled), = visible_spoils(truth, rng, 1)
            run("tone spoiled", _encode(spoiled))
            small = Image.fromarray((truth * 255 + 0.5).astype(np.uint8))
            small = small.resize((small.width // 2, small.height // 2), Image.Resampling.BICUBIC)
            run("shrunk x0.5", _encode(np.asarray(small, dtype=np.float32) / 255))
            noisy = truth + rng.normal(0, 20 / 255, truth.shape)  # ~10 on luma once clipped and JPEG'd
            run("noise sigma 20", _encode(noisy, 90))
    finally:
        engines.close()
    return {kind: {**counts, "share_enhanced": round(counts["enhanced"] / counts["photos"], 3),
                   "verdicts": reasons.get(kind, {})} for kind, counts in tally.items()}


def format_table(result: dict) -> str:
    lines = ["| method | cases | PSNR in | PSNR out | gain dB | dE2000 in | dE2000 out |",
             "|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['method']} | {r['cases']} | {r['psnr_in']:.2f} | {r['psnr_out']:.2f} | "
                     f"{r['gain_db']:+.2f} | {r['delta_e_in']:.2f} | {r['delta_e_out']:.2f} |")
    lines.append(f"\nunspoiled photos through the engine: mean {result['identity_psnr_mean']:.2f} dB, min "
                 f"{result['identity_psnr_min']:.2f} dB from the input; {result['identity_share_ge_40db']:.0%} "
                 f">= 40 dB. Engine: {result['ms_per_megapixel']:.1f} ms per megapixel.")
    for kind, counts in result.get("gate", {}).items():
        lines.append(f"gate, {kind}: {counts['enhanced']}/{counts['photos']} enhanced "
                     f"({counts['share_enhanced']:.0%}); {counts['verdicts']}")
    return "\n".join(lines)


def eval_tone_from_args(args: argparse.Namespace) -> int:
    import torch

    torch.set_num_threads(args.threads)
    model = str(args.model) if args.model else "retouch-tone"
    if not (args.data_dir / "products" / "train").is_dir():
        print(f"error: {args.data_dir}/products/train does not exist", file=sys.stderr)
        return 2
    result = evaluate(args.data_dir, model, limit=args.limit, save_dir=args.save_dir)
    if args.gate:
        result["gate"] = gate_shares(args.data_dir, model, args.limit)
    if args.save_dir is not None and args.real_lr is not None:
        result["real_side_by_sides"] = [str(p) for p in real_side_by_sides(args.real_lr, model, args.save_dir)]
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0
