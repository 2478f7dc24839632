"""CompactSR: a small super-resolution network that runs all its convolutions at LR resolution.

Shape: a 3x3 head, `blocks` 3x3 conv + PReLU layers with one long feature skip, a 3x3 tail to
`in_channels * scale**2` channels, PixelShuffle, and a bicubic-upsampled copy of the input added on top,
so the body learns only the residual detail over bicubic. Why this shape:
- every conv sees LR pixels, so cost per output pixel falls with scale**2 (CPU speed);
- plain 3x3 conv + PReLU is what oneDNN / ONNX Runtime / TensorRT run fastest (no attention, no
  layer norm, no ops ONNX Runtime lacks);
- the bicubic skip makes an untrained network already equal bicubic and speeds up short CPU training;
  the tail starts near zero for the same reason.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

DEFAULT_FEATURES = 48
DEFAULT_BLOCKS = 8


def receptive_field(blocks: int = DEFAULT_BLOCKS) -> int:
    """Radius in LR input pixels that one output pixel depends on.

    head + `blocks` body + tail convs are 3x3 (one pixel each); the bicubic skip reaches 2 pixels,
    which the conv stack already exceeds. A tiler needs an LR overlap of at least this many pixels
    for seams to vanish exactly.
    """
    return blocks + 2


class CompactSR(nn.Module):
    """Super-resolve NCHW RGB images by an integer `scale`.

    Args:
        scale: 2, 3 or 4 (any integer >= 1 works).
        in_channels: image channels in and out (3 for RGB).
        features: width of every body conv.
        blocks: number of 3x3 conv + PReLU layers in the body.

    forward(x): x is (N, in_channels, H, W) float in [0, 1]; returns (N, in_channels, H*scale, W*scale),
    float, not clamped.
    """

    def __init__(
        self, scale: int, in_channels: int = 3, features: int = DEFAULT_FEATURES, blocks: int = DEFAULT_BLOCKS
    ) -> None:
        super().__init__()
        if scale < 1:
            raise ValueError(f"scale must be >= 1, got {scale}")
        self.scale = scale
        self.in_channels = in_channels
        self.features = features
        self.blocks = blocks
        self.head = nn.Conv2d(in_channels, features, 3, padding=1)
        self.head_act = nn.PReLU(features)
        layers: list[nn.Module] = []
        for _ in range(blocks):
            layers += [nn.Conv2d(features, features, 3, padding=1), nn.PReLU(features)]
        self.body = nn.Sequential(*layers)
        self.tail = nn.Conv2d(features, in_channels * scale * scale, 3, padding=1)
        self.shuffle = nn.PixelShuffle(scale)
        # Start as (almost) plain bicubic: a small tail keeps early training stable and useful.
        with torch.no_grad():
            self.tail.weight.mul_(0.1)
            self.tail.bias.zero_()

    @property
    def receptive_field(self) -> int:
        """LR-pixel radius of influence; see `receptive_field()`."""
        return receptive_field(self.blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.head_act(self.head(x))
        feat = feat + self.body(feat)
        out = self.shuffle(self.tail(feat))
        if self.scale == 1:
            return out + x
        base = F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return out + base
