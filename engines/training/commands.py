"""`retouch train` and `retouch eval`: argparse subcommands the worker CLI mounts via `register()`.

Heavy imports (torch, data loading) happen inside the handlers, so building the CLI stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from engines.precision import cpu_has_native_bf16  # noqa: F401  (the trainer warns with it; tests patch it here)

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


def common_train_parser() -> argparse.ArgumentParser:
    """The flags every family's trainer takes (data, schedule, checkpoints, shipping, device)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data", type=Path, default=None,
                        help="folder of training images (default: <data-dir>/products/train)")
    common.add_argument("--data-dir", type=Path, default=None, help=DATA_HELP)
    common.add_argument("--holdout", type=int, default=25,
                        help="last N images by sorted filename are held aside for evaluation, never trained on")
    common.add_argument("--steps", type=int, default=None, help="optimizer steps (default: the recipe's)")
    common.add_argument("--batch", type=int, default=None, help="batch size (default: the recipe's)")
    common.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the recipe's)")
    common.add_argument("--seed", type=int, default=0)
    common.add_argument("--features", type=int, default=None)
    common.add_argument("--blocks", type=int, default=None)
    common.add_argument("--init", type=Path, default=None,
                        help="safetensors/checkpoint to initialise from (matching tensors are copied)")
    common.add_argument("--out-dir", type=Path, default=Path("runs"), help="checkpoints and logs go here")
    common.add_argument("--ship", type=Path, default=None,
                        help="also write <ship>/<model_id>.safetensors and .md when done")
    common.add_argument("--resume", action="store_true", help="continue from <out-dir>/<model_id>/last.pt")
    common.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    common.add_argument("--device", default="cpu")
    common.add_argument("--val-every", type=int, default=250)
    common.add_argument("--ckpt-every", type=int, default=250)
    common.add_argument("--cache-crops", type=int, default=None, help="crops cached per training image")
    common.add_argument("--patch", type=int, default=None,
                        help="training patch side in HR pixels (inpaint: crop side, multiple of 8)")
    common.add_argument("--bf16", action="store_true",
                        help="bfloat16 autocast for forward passes (about 2x faster on CPUs with AVX512-BF16)")
    return common


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `train` (one sub-command per model, registered by its family) and `eval`."""
    from engines.families import FAMILIES

    train = subparsers.add_parser("train", help="train one of the project's compact models (CPU or CUDA)")
    models = train.add_subparsers(dest="model_id", required=True, metavar="MODEL_ID",
                                  help="which model recipe to train")
    common = common_train_parser()
    registered: set[str] = set()
    for family in FAMILIES:
        if family.training is None:
            continue
        module, _, function = family.training.partition(":")
        hook = getattr(importlib.import_module(module), function)
        for model_id, parser in hook(models, common).items():
            if model_id in registered:
                raise ValueError(f"two families train {model_id}")
            registered.add(model_id)
            parser.set_defaults(func=_run_train, train=parser.get_default("train"))

    ev = subparsers.add_parser("eval", help="measure PSNR/SSIM of the shipped models beside bicubic")
    ev.add_argument("task", nargs="?", default="all",
                    choices=["sr", "denoise", "real", "perceptual", "inpaint", "tone", "matte", "all"])
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
    ev.add_argument("--save-dir", type=Path, default=None,
                    help="(inpaint, perceptual, tone, matte) write side-by-side PNGs here")
    ev.add_argument("--peer", type=Path, default=None,
                    help="(perceptual) weights of a model to compare against, e.g. RealESRGAN_x4plus.pth")
    ev.add_argument("--real-lr", type=Path, default=None,
                    help="(perceptual, tone, matte; with --save-dir) side-by-sides of these real photos (no truth)")
    ev.add_argument("--model", default=None,
                    help="(tone, matte) the engine: registry id or weights path (default retouch-tone, retouch-matte); "
                         "(inpaint) weights to measure as retouch-inpaint-texture")
    ev.add_argument("--gate", action="store_true",
                    help="(tone) also run the auto pipeline's quality gate on the full-size photos")
    ev.set_defaults(func=_run_eval)


def _run_train(args: argparse.Namespace) -> int:
    """Shared checks, then the family's trainer (set by its sub-command as `args.train`)."""
    args.data_dir = _data_dir(args)
    if args.data_dir is None and args.data is None:
        return _no_data("train")
    if args.bf16 and args.device == "cpu" and cpu_has_native_bf16() is False:
        print("warning: this CPU has no native bfloat16 (AVX512-BF16/AMX); --bf16 will be slower than float32",
              file=sys.stderr)
    return int(args.train(args))


def _run_eval(args: argparse.Namespace) -> int:
    args.data_dir = _data_dir(args)
    if args.data_dir is None:
        return _no_data("eval")
    if args.task == "inpaint":  # `all` stays the SR and denoise tables: the inpaint eval takes minutes
        from engines.training.inpaint_eval import eval_inpaint_from_args

        return eval_inpaint_from_args(args)
    if args.task == "tone":
        from engines.training.tone_eval import eval_tone_from_args

        return eval_tone_from_args(args)
    if args.task == "matte":
        from engines.training.matte_eval import eval_matte_from_args

        return eval_matte_from_args(args)
    if args.task == "perceptual":
        from engines.training.perceptual_eval import eval_perceptual_from_args

        return eval_perceptual_from_args(args)
    from engines.training.evaluate import eval_from_args

    return eval_from_args(args)
