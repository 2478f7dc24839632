"""ProductMatte: a small U-Net that finds the product in a photo and gives its soft alpha matte.

Why this shape:
- Which pixels are product is a whole-photo question (a white sneaker on a white floor, a bag's strap
  against a busy shelf), so the network sees the whole photo at a working side of a few hundred pixels,
  never a tile, and its bottleneck (1/32 of the input) adds a global-context vector (average pooling)
  to every position: the receptive field is the photo.
- The outline is a local question, answered at full working resolution by a last stage that sees the
  input pixels again beside the decoder's features; `engines.matting` then snaps the upsampled matte to
  the full-resolution photo's edges with a guided filter.
- Plain 3x3 convolutions and ReLU, batch-norm-free (no train/eval gap on batches of 8): what oneDNN,
  ONNX Runtime and TensorRT run fastest.

Contract: forward(image (N, 3, H, W) in [0, 1], H and W multiples of 32) -> alpha logits (N, 1, H, W);
alpha = sigmoid(logits). Shared code clamps nothing: `engines.matting` applies the sigmoid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

DEFAULT_WIDTHS = (16, 32, 64, 96, 128)
SIZE_MULTIPLE = 32  # five stride-2 stages


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.ReLU(inplace=True))


class ProductMatte(nn.Module):
    """Args: widths (channels of the five encoder stages, 1/2 to 1/32 of the input)."""

    def __init__(self, widths: tuple[int, ...] | list[int] = DEFAULT_WIDTHS) -> None:
        super().__init__()
        widths = tuple(int(w) for w in widths)
        self.widths = widths
        chans = (3, *widths)
        self.down = nn.ModuleList(
            nn.Sequential(_conv(cin, cout, stride=2), _conv(cout, cout))
            for cin, cout in zip(chans[:-1], chans[1:], strict=True)
        )
        deepest = widths[-1]
        self.context = nn.Sequential(nn.Linear(deepest, deepest), nn.ReLU(inplace=True))
        self.bottleneck = nn.Sequential(
            nn.Conv2d(2 * deepest, deepest, 3, padding=2, dilation=2), nn.ReLU(inplace=True), _conv(deepest, deepest)
        )
        # Decoder: from 1/32 back to 1/2, each step upsampled and joined with the encoder's skip.
        self.up = nn.ModuleList(
            _conv(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(len(widths) - 1))
        )
        self.refine = nn.Sequential(_conv(widths[0] + 3, 16), _conv(16, 16), nn.Conv2d(16, 1, 3, padding=1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        skips = []
        x = image
        for stage in self.down:
            x = stage(x)
            skips.append(x)
        glob = self.context(x.mean(dim=(2, 3)))[:, :, None, None].expand_as(x)
        x = self.bottleneck(torch.cat([x, glob], dim=1))
        for block, skip in zip(self.up, reversed(skips[:-1]), strict=True):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        x = F.interpolate(x, size=image.shape[-2:], mode="bilinear", align_corners=False)
        return self.refine(torch.cat([x, image], dim=1))
