"""Each family's `retouch train <model id>` sub-command: its own flags beside the common ones.

Families name their hook in `Family.training`; the hook adds one parser per model it trains and returns
them. Light on purpose: the trainers (torch, data loading) are imported when a command runs.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from pathlib import Path

Parsers = dict[str, argparse.ArgumentParser]


def _lazy(target: str) -> Callable[[argparse.Namespace], int]:
    module, _, function = target.partition(":")
    return lambda args: getattr(importlib.import_module(module), function)(args)


def _max_minutes(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="stop at the first checkpoint after this many minutes (resume continues)")


def _reconstruction_trainer(models, common: argparse.ArgumentParser, architecture: str) -> Parsers:
    from engines.training.recipes import RECIPES

    parsers: Parsers = {}
    for model_id, recipe in sorted(RECIPES.items()):
        if recipe.arch != architecture:
            continue
        parser = models.add_parser(model_id, parents=[common], help=recipe.description)
        parser.add_argument("--natural-crops", type=int, default=0,
                            help="also cache N crops of each natural photo scikit-image ships "
                                 "(fur, foliage, brick: texture catalogue photos lack)")
        parser.add_argument("--loss", default=None, choices=["l1", "charbonnier", "l2"],
                            help=f"reconstruction loss (default: the recipe's, {recipe.loss})")
        parser.set_defaults(train=_lazy("engines.training.train:train_from_args"))
        parsers[model_id] = parser
    return parsers


def register_compact_sr(models, common: argparse.ArgumentParser) -> Parsers:
    return _reconstruction_trainer(models, common, "CompactSR")


def register_compact_denoiser(models, common: argparse.ArgumentParser) -> Parsers:
    return _reconstruction_trainer(models, common, "CompactDenoiser")


def register_compact_inpainter(models, common: argparse.ArgumentParser) -> Parsers:
    helps = {"retouch-inpaint": "inpainting / outpainting generator, trained adversarially",
             "retouch-inpaint-texture": "the inpainter fine-tuned for texture on windows around holes "
                                        "(start it from the shipped retouch-inpaint with --init)"}
    parsers = {}
    for model_id, text in helps.items():
        parser = models.add_parser(model_id, parents=[common], help=text)
        parser.add_argument("--loss", default=None, choices=["l1", "l2"], help="hole reconstruction loss")
        parser.add_argument("--adv-start", type=int, default=None, help="first adversarial step")
        parser.add_argument("--adv-weight", type=float, default=None, help="adversarial loss weight")
        parser.add_argument("--canvas-side", type=int, default=None,
                            help="working side of the whole-canvas training samples, a multiple of 8 "
                                 "(default 192; 0 = the old crop mode)")
        parser.add_argument("--strips", type=float, default=None,
                            help="share of batches that are border strips at listing resolution with a band "
                                 "along the border (the fill's path for thin side bands); default 0")
        parser.add_argument("--hole-windows", type=float, default=None,
                            help="share of batches that are windows around a hole over the product at listing "
                                 "size (the texture engine's path); default: the recipe's")
        parser.add_argument("--texture-weight", type=float, default=None,
                            help="weight of the local gradient-energy loss; default: the recipe's")
        _max_minutes(parser)
        parser.set_defaults(train=_lazy("engines.training.inpaint_train:train_inpaint_from_args"))
        parsers[model_id] = parser
    return parsers


def register_plain_sr(models, common: argparse.ArgumentParser) -> Parsers:
    from engines.training.perceptual_train import RECIPES

    parsers: Parsers = {}
    for model_id, recipe in RECIPES.items():
        parser = models.add_parser(model_id, parents=[common], help=recipe.description)
        parser.add_argument("--teacher", type=Path, default=None,
                            help="Real-ESRGAN x4plus weights to distil from (its outputs are cached once)")
        parser.add_argument("--teacher-samples", type=int, default=None,
                            help=f"degraded crops the teacher super-resolves (default {recipe.teacher_samples})")
        parser.add_argument("--teacher-weight", type=float, default=None, help="distillation L1 weight")
        parser.add_argument("--gradient-weight", type=float, default=None, help="Sobel-gradient L1 weight")
        parser.add_argument("--adv-weight", type=float, default=None, help="adversarial loss weight (0: none)")
        parser.add_argument("--adv-start", type=int, default=None, help="first step with the discriminator")
        _max_minutes(parser)
        parser.set_defaults(train=_lazy("engines.training.perceptual_train:train_from_args"))
        parsers[model_id] = parser
    return parsers


def register_tone_lut(models, common: argparse.ArgumentParser) -> Parsers:
    parser = models.add_parser("retouch-tone", parents=[common],
                               help="image-adaptive 3D LUT tone and colour engine (self-supervised)")
    parser.add_argument("--identity-share", type=float, default=None,
                        help="share of photos left unspoiled, so good photos map to the identity (default 0.35)")
    parser.add_argument("--lut-size", type=int, default=None, help="LUT grid points per axis (default 17)")
    parser.add_argument("--gain-weight", type=float, default=None,
                        help="weight of the vignetting-gain supervision (default 2; 0: the gain is free)")
    parser.add_argument("--confidence", action="store_true",
                        help="add a needs-correction head that scales the correction (start it with --init)")
    parser.add_argument("--confidence-only", action="store_true",
                        help="with --init: train only the needs-correction head (the corrections stay the init's)")
    _max_minutes(parser)
    parser.set_defaults(train=_lazy("engines.training.tone_train:train_from_args"))
    return {"retouch-tone": parser}


def register_product_matte(models, common: argparse.ArgumentParser) -> Parsers:
    parser = models.add_parser("retouch-matte", parents=[common],
                               help="product matting: the product's alpha in front of any background")
    _max_minutes(parser)
    parser.set_defaults(train=_lazy("engines.training.matte_train:train_from_args"))
    return {"retouch-matte": parser}
