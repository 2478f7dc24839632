"""Handlers for `retouch train retouch-inpaint` and `retouch eval inpaint`, plus a standalone entry point.

The worker CLI mounts `train_inpaint_from_args` / `eval_inpaint_from_args` on its existing `train` / `eval`
subcommands (same argument names as `engines.training.commands`); `python -m engines.training.inpaint_commands
train|eval ...` runs them without that wiring. Heavy imports happen inside the handlers.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

__all__ = ["eval_inpaint_from_args", "main", "register", "train_inpaint_from_args"]


def _default_data_dir() -> Path:
    # Same rule as engines.training.commands: ../shared/data beside the checkout, or RETOUCH_EVAL_DATA.
    return Path(os.environ.get("RETOUCH_EVAL_DATA", Path.cwd().parent / "shared" / "data"))


def train_inpaint_from_args(args: argparse.Namespace) -> int:
    """`retouch train retouch-inpaint ...`: train CompactInpainter (see engines/training/inpaint_train.py)."""
    from engines.training.inpaint_train import train_inpaint_from_args as run

    if getattr(args, "data_dir", None) is None and getattr(args, "data", None) is None:
        args.data_dir = _default_data_dir()
    return run(args)


def eval_inpaint_from_args(args: argparse.Namespace) -> int:
    """`retouch eval inpaint ...`: masked-region PSNR/SSIM and seam error beside Telea/NS/edge-replicate."""
    from engines.training.inpaint_eval import eval_inpaint_from_args as run

    if getattr(args, "data_dir", None) is None:
        args.data_dir = _default_data_dir()
    return run(args)


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Standalone `train` / `eval` parsers with the argument names of engines.training.commands (+ extras)."""
    train = subparsers.add_parser("train", help="train the inpainting engine")
    train.add_argument("model_id", choices=["retouch-inpaint"])
    train.add_argument("--data", type=Path, default=None)
    train.add_argument("--data-dir", type=Path, default=None)
    train.add_argument("--holdout", type=int, default=25)
    train.add_argument("--steps", type=int, default=None)
    train.add_argument("--batch", type=int, default=None)
    train.add_argument("--lr", type=float, default=None)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--features", type=int, default=None)
    train.add_argument("--blocks", type=int, default=None)
    train.add_argument("--init", type=Path, default=None)
    train.add_argument("--out-dir", type=Path, default=Path("runs"))
    train.add_argument("--ship", type=Path, default=None)
    train.add_argument("--resume", action="store_true")
    train.add_argument("--threads", type=int, default=2)
    train.add_argument("--device", default="cpu")
    train.add_argument("--val-every", type=int, default=250)
    train.add_argument("--ckpt-every", type=int, default=250)
    train.add_argument("--cache-crops", type=int, default=None)
    train.add_argument("--patch", type=int, default=None, help="(inpaint only) training crop side, multiple of 8")
    train.add_argument("--adv-start", type=int, default=None, help="(inpaint only) first adversarial step")
    train.set_defaults(func=train_inpaint_from_args)

    ev = subparsers.add_parser("eval", help="evaluate the inpainting engine")
    ev.add_argument("task", nargs="?", default="inpaint", choices=["inpaint"])
    ev.add_argument("--data-dir", type=Path, default=None)
    ev.add_argument("--weights-dir", type=Path, default=None)
    ev.add_argument("--limit", type=int, default=None)
    ev.add_argument("--threads", type=int, default=2)
    ev.add_argument("--json", action="store_true")
    ev.add_argument("--work-side", type=int, default=None, help="(inpaint only) working resolution, longest side")
    ev.add_argument("--canvas", type=int, default=None, help="(inpaint only) canvas longest side, default 1024")
    ev.add_argument("--save-dir", type=Path, default=None, help="(inpaint only) write side-by-side PNGs here")
    ev.set_defaults(func=eval_inpaint_from_args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engines.training.inpaint_commands")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
