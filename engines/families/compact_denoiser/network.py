"""CompactDenoiser: a small residual U-Net for blind colour denoising and JPEG-artifact removal.

Three levels (full, 1/2, 1/4 resolution) with channel width doubling as resolution halves, so each level
costs about the same per input pixel while the 1/4 level gives a wide receptive field cheaply (noise at
sigma 50 and 8x8 JPEG blocks need context). The network predicts the noise; forward returns
`x - noise`. Strided convs down, conv + PixelShuffle up, additive skips: all plain ONNX ops.
"""

from __future__ import annotations

import torch
from torch import nn

DEFAULT_FEATURES = 32
DEFAULT_BLOCKS = 2
# Two stride-2 downsamplings: H and W must be multiples of 4 (callers pad, e.g. reflect, then crop).
SIZE_MULTIPLE = 4


def receptive_field(blocks: int = DEFAULT_BLOCKS) -> int:
    """Radius in input pixels that one output pixel depends on (an upper bound, rounded up).

    Level 0 has 1 + blocks convs before and blocks + 1 after the skip, level 1 (x2 pixels) blocks
    each side plus the down/up convs, level 2 (x4 pixels) 2*blocks convs.
    """
    level0 = (1 + blocks) + (blocks + 1)
    level1 = 2 * (1 + 2 * blocks + 1)
    level2 = 4 * (1 + 2 * blocks + 1)
    return level0 + level1 + level2


def _stack(channels: int, n: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(n):
        layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.PReLU(channels)]
    return nn.Sequential(*layers)


class CompactDenoiser(nn.Module):
    """Blind denoiser at scale 1.

    Args:
        in_channels: image channels (3 for RGB).
        features: width at full resolution; 2x at 1/2 and 4x at 1/4 resolution.
        blocks: 3x3 conv + PReLU layers per stage.

    forward(x): x is (N, in_channels, H, W) float, nominally [0, 1], with H and W multiples of
    `SIZE_MULTIPLE`; returns the same shape, float, not clamped.
    """

    size_multiple = SIZE_MULTIPLE

    def __init__(self, in_channels: int = 3, features: int = DEFAULT_FEATURES, blocks: int = DEFAULT_BLOCKS) -> None:
        super().__init__()
        f1, f2, f3 = features, features * 2, features * 4
        self.in_channels = in_channels
        self.features = features
        self.blocks = blocks
        self.head = nn.Sequential(nn.Conv2d(in_channels, f1, 3, padding=1), nn.PReLU(f1))
        self.enc0 = _stack(f1, blocks)
        self.down1 = nn.Sequential(nn.Conv2d(f1, f2, 3, stride=2, padding=1), nn.PReLU(f2))
        self.enc1 = _stack(f2, blocks)
        self.down2 = nn.Sequential(nn.Conv2d(f2, f3, 3, stride=2, padding=1), nn.PReLU(f3))
        self.mid = _stack(f3, 2 * blocks)
        self.up2 = nn.Sequential(nn.Conv2d(f3, f2 * 4, 3, padding=1), nn.PixelShuffle(2))
        self.dec1 = _stack(f2, blocks)
        self.up1 = nn.Sequential(nn.Conv2d(f2, f1 * 4, 3, padding=1), nn.PixelShuffle(2))
        self.dec0 = _stack(f1, blocks)
        self.tail = nn.Conv2d(f1, in_channels, 3, padding=1)
        with torch.no_grad():
            self.tail.weight.mul_(0.1)
            self.tail.bias.zero_()

    @property
    def receptive_field(self) -> int:
        """Input-pixel radius of influence; see `receptive_field()`."""
        return receptive_field(self.blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        # Skipped while tracing for ONNX export, where H and W are symbolic.
        if not torch.jit.is_tracing() and (h % SIZE_MULTIPLE or w % SIZE_MULTIPLE):
            raise ValueError(f"CompactDenoiser needs H, W multiples of {SIZE_MULTIPLE}, got {h}x{w}")
        s0 = self.enc0(self.head(x))
        s1 = self.enc1(self.down1(s0))
        x2 = self.down2(s1)
        m = x2 + self.mid(x2)
        d1 = self.dec1(self.up2(m) + s1)
        d0 = self.dec0(self.up1(d1) + s0)
        return x - self.tail(d0)
