"""`retouch train` and `retouch eval`: argparse subcommands the worker CLI mounts via `register()`.

Heavy imports (torch, data loading) happen inside the handlers, so building the CLI stays fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DATA_HELP = "data folder holding products/, sr-bench/, denoise-bench/ (env RETOUCH_EVAL_DATA)"


def _data_dir(args: argparse.Namespace) -> Path | None:
    """--data-dir, else RETOUCH_EVAL_DATA, else None: the benchmark and training sets are never bundled."""
    if args.data_dir is not None:
        return args.data_dir
    from engines.settings import engine_settings

    return engine_settings().eval_data


def _no_data(command: str) -> int:
    print(f"error: retouch {command} needs its data folder: pass --data-dir or set RETOUCH_EVAL_DATA "
          "(the folder holding products/, sr-bench/, denoise-bench/)", file=sys.stderr)
    return 2


INPAINT_MODEL = "retouch-inpaint"


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `train` and `eval` subcommands; each sets `func(args) -> int`."""
    from engines.training.recipes import RECIPES

    train = subparsers.add_parser("train", help="train one of the project's compact models (CPU or CUDA)")
    train.add_argument("model_id", choices=[*sorted(RECIPES), INPAINT_MODEL], help="which model recipe to train")
    train.add_argument("--data", type=Path, default=None,
                       help="folder of training images (default: <data-dir>/products/train)")
    train.add_argument("--data-dir", type=Path, default=None, help=DATA_HELP)
    train.add_argument("--holdout", type=int, default=25,
                       help="last N images by sorted filename are held aside for evaluation, never trained on")
    train.add_argument("--steps", type=int, default=None, help="optimizer steps (default: the recipe's)")
    train.add_argument("--batch", type=int, default=None, help="batch size (default: the recipe's)")
    train.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the recipe's)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--features", type=int, default=None)
    train.add_argument("--blocks", type=int, default=None)
    train.add_argument("--init", type=Path, default=None,
                       help="safetensors/checkpoint to initialise from (matching tensors are copied)")
    train.add_argument("--out-dir", type=Path, default=Path("runs"), help="checkpoints and logs go here")
    train.add_argument("--ship", type=Path, default=None,
                       help="also write <ship>/<model_id>.safetensors and .md when done")
    train.add_argument("--resume", action="store_true", help="continue from <out-dir>/<model_id>/last.pt")
    train.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    train.add_argument("--device", default="cpu")
    train.add_argument("--val-every", type=int, default=250)
    train.add_argument("--ckpt-every", type=int, default=250)
    train.add_argument("--cache-crops", type=int, default=None, help="crops cached per training image")
    train.add_argument("--natural-crops", type=int, default=0,
                       help="(SR/denoise) also cache N crops of each natural photo scikit-image ships "
                            "(fur, foliage, brick: texture catalogue photos lack)")
    train.add_argument("--patch", type=int, default=None,
                       help="training patch side in HR pixels (inpaint: crop side, multiple of 8)")
    train.add_argument("--bf16", action="store_true",
                       help="bfloat16 autocast for forward passes (about 2x faster on CPUs with AVX512-BF16)")
    train.add_argument("--loss", default=None, choices=["l1", "charbonnier", "l2"],
                       help="reconstruction loss (default: the recipe's; SR/denoise: any, "
                            "inpaint: l1 or l2)")
    train.add_argument("--adv-start", type=int, default=None, help="(inpaint only) first adversarial step")
    train.add_argument("--adv-weight", type=float, default=None, help="(inpaint only) adversarial loss weight")
    train.add_argument("--canvas-side", type=int, default=None,
                       help="(inpaint only) working side of the whole-canvas training samples, a multiple of 8 "
                            "(default 192; 0 = the old crop mode)")
    train.add_argument("--strips", type=float, default=None,
                       help="(inpaint only) share of batches that are border strips at listing resolution with a "
                            "band along the border (the fill's path for thin side bands); default 0")
    train.set_defaults(func=_run_train)

    ev = subparsers.add_parser("eval", help="measure PSNR/SSIM of the shipped models beside bicubic")
    ev.add_argument("task", nargs="?", default="all", choices=["sr", "denoise", "real", "inpaint", "all"])
    ev.add_argument("--sets", default=None,
                    help="comma-separated sets (Set5,Set14,BSD100 | CBSD68,Kodak24,McMaster | products)")
    ev.add_argument("--scales", default="2,4", help="comma-separated SR scales")
    ev.add_argument("--sigmas", default="15,25,50", help="comma-separated noise sigmas (of 255)")
    ev.add_argument("--data-dir", type=Path, default=None, help=DATA_HELP)
    ev.add_argument("--weights-dir", type=Path, default=None, help="folder of <model_id>.safetensors")
    ev.add_argument("--limit", type=int, default=None, help="use only the first N images of each set")
    ev.add_argument("--threads", type=int, default=2)
    ev.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ev.add_argument("--work-side", type=int, default=None, help="(inpaint only) working resolution, longest side")
    ev.add_argument("--canvas", type=int, default=None, help="(inpaint only) canvas longest side, default 1024")
    ev.add_argument("--save-dir", type=Path, default=None, help="(inpaint only) write side-by-side PNGs here")
    ev.set_defaults(func=_run_eval)


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool | None:
    """True when the CPU computes bfloat16 natively (AVX512-BF16 or AMX-BF16), None when unknown (not Linux).

    Without it oneDNN emulates bf16 and `--bf16` makes a step several times slower instead of ~2x faster
    (measured: 2.2 vs 0.64 s per denoiser step on an AVX512 Xeon without AVX512-BF16).
    """
    try:
        flags = cpuinfo.read_text()
    except OSError:
        return None
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _run_train(args: argparse.Namespace) -> int:
    args.data_dir = _data_dir(args)
    if args.data_dir is None and args.data is None:
        return _no_data("train")
    if args.bf16 and args.device == "cpu" and cpu_has_native_bf16() is False:
        print("warning: this CPU has no native bfloat16 (AVX512-BF16/AMX); --bf16 will be slower than float32",
              file=sys.stderr)
    if args.model_id == INPAINT_MODEL:  # adversarial training has its own loop (engines/training/inpaint_train.py)
        from engines.training.inpaint_train import train_inpaint_from_args

        return train_inpaint_from_args(args)
    from engines.training.train import train_from_args

    return train_from_args(args)


def _run_eval(args: argparse.Namespace) -> int:
    args.data_dir = _data_dir(args)
    if args.data_dir is None:
        return _no_data("eval")
    if args.task == "inpaint":  # `all` stays the SR and denoise tables: the inpaint eval takes minutes
        from engines.training.inpaint_eval import eval_inpaint_from_args

        return eval_inpaint_from_args(args)
    from engines.training.evaluate import eval_from_args

    return eval_from_args(args)
