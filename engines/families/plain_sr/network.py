"""PlainSR: a deep, plain stack of 3x3 convolutions at LR resolution, for perceptual super-resolution.

Shape (after SRVGGNet-compact, Wang et al. 2021, and the plain-conv findings of SPAN/RLFN: at this size a
straight stack of 3x3 conv + activation beats attention or residual-block designs on speed per quality):
a 3x3 head, `blocks` residual pairs of 3x3 convs (conv, LeakyReLU, conv, plus the input) under one long
skip, a 3x3 tail to `3 * scale**2` channels, PixelShuffle, and a nearest-upsampled copy of the input added
on top (EDSR's body without its 256-channel upsampler, at SRVGGNet's width). Why this shape:
- every conv runs at LR resolution and has 64 channels, a multiple of the 16/32-wide tiles of AMX,
  AVX-512 and tensor cores, so oneDNN, ONNX Runtime and TensorRT run it near their peaks;
- LeakyReLU fuses into the convolution as a post-op in oneDNN and TensorRT; PReLU (the old CompactSR's)
  does not everywhere and costs a separate pass over memory;
- the nearest-upsampled skip is a copy, where CompactSR's bicubic skip was a 4x4 filter over the whole
  output; the network learns what bicubic added;
- depth buys the receptive field: `2 * blocks + 2` LR pixels (26 LR = 104 output pixels at x4 for 12
  blocks), enough to see a weave's repeat or a seam's direction, which the old 10-pixel model could not.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

DEFAULT_FEATURES = 64
DEFAULT_BLOCKS = 12


def receptive_field(blocks: int = DEFAULT_BLOCKS) -> int:
    """Radius in LR input pixels that one output pixel depends on (head, 2 per block and tail, all 3x3)."""
    return 2 * blocks + 2


def macs_per_output_pixel(scale: int, features: int = DEFAULT_FEATURES, blocks: int = DEFAULT_BLOCKS,
                          in_channels: int = 3) -> float:
    """Multiply-accumulates per output pixel (x 1e-3: GMAC per output megapixel)."""
    per_lr_pixel = 9 * (in_channels * features + 2 * blocks * features * features
                        + features * in_channels * scale**2)
    return per_lr_pixel / scale**2


class ResidualPair(nn.Module):
    """conv 3x3, LeakyReLU, conv 3x3, plus the input: the identity path lets a 26-layer stack train in
    thousands of CPU steps (a straight stack of that depth learned nothing in its first 250 steps here)."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.act = nn.LeakyReLU(0.1, inplace=True)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(x)))


class PlainSR(nn.Module):
    """Super-resolve NCHW RGB images by an integer `scale`.

    Args: scale; in_channels (3 for RGB); features (width of every conv); blocks (residual pairs of convs).

    forward(x): x is (N, in_channels, H, W) float in [0, 1]; returns (N, in_channels, H*scale, W*scale),
    float, not clamped.
    """

    def __init__(self, scale: int, in_channels: int = 3, features: int = DEFAULT_FEATURES,
                 blocks: int = DEFAULT_BLOCKS) -> None:
        super().__init__()
        if scale < 1:
            raise ValueError(f"scale must be >= 1, got {scale}")
        self.scale = scale
        self.in_channels = in_channels
        self.features = features
        self.blocks = blocks
        self.head = nn.Conv2d(in_channels, features, 3, padding=1)
        self.body = nn.Sequential(*(ResidualPair(features) for _ in range(blocks)))
        self.act = nn.LeakyReLU(0.1, inplace=True)
        self.tail = nn.Conv2d(features, in_channels * scale * scale, 3, padding=1)
        self.shuffle = nn.PixelShuffle(scale)
        with torch.no_grad():  # start near the nearest-neighbour copy, residual branches small: stable early steps
            self.tail.weight.mul_(0.1)
            self.tail.bias.zero_()
            for pair in self.body:
                pair.conv2.weight.mul_(0.1)
                pair.conv2.bias.zero_()

    @property
    def receptive_field(self) -> int:
        return receptive_field(self.blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.head(x)
        out = self.shuffle(self.tail(self.act(self.body(feat) + feat)))
        if self.scale == 1:
            return out + x
        return out + F.interpolate(x, scale_factor=self.scale, mode="nearest")
