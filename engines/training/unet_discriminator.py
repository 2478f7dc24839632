"""UNetDiscriminator: a spectral-normalised U-Net critic that scores every pixel (training only).

After Real-ESRGAN's discriminator (Wang et al. 2021; itself after Schonfeld et al., CVPR 2020): an encoder of
three stride-2 stages sees context up to ~60 pixels, the decoder brings it back to full resolution with
skips, so the critic says *where* an image looks fake (a smeared weave, a halo along an edge) instead of
one verdict per patch. Spectral norm on every conv keeps it Lipschitz without gradient penalties, which
are expensive on CPU. Never shipped, never exported.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def _sn_conv(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Module:
    return spectral_norm(nn.Conv2d(cin, cout, kernel, stride, padding=(kernel - 1) // 2 if stride == 1 else 1,
                                   bias=False))


class UNetDiscriminator(nn.Module):
    """(N, 3, H, W) image in [0, 1], H and W multiples of 8 -> (N, 1, H, W) logits."""

    def __init__(self, in_channels: int = 3, features: int = 32) -> None:
        super().__init__()
        f = features
        self.head = nn.Conv2d(in_channels, f, 3, padding=1)
        self.down = nn.ModuleList([_sn_conv(f, 2 * f, 4, 2), _sn_conv(2 * f, 4 * f, 4, 2),
                                   _sn_conv(4 * f, 8 * f, 4, 2)])
        self.up = nn.ModuleList([_sn_conv(8 * f, 4 * f, 3), _sn_conv(4 * f, 2 * f, 3), _sn_conv(2 * f, f, 3)])
        self.refine = nn.Sequential(_sn_conv(f, f, 3), nn.LeakyReLU(0.2), _sn_conv(f, f, 3), nn.LeakyReLU(0.2))
        self.out = nn.Conv2d(f, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = nn.functional.leaky_relu
        skips = [act(self.head(x), 0.2)]
        for conv in self.down:
            skips.append(act(conv(skips[-1]), 0.2))
        y = skips.pop()
        for conv in self.up:
            y = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
            y = act(conv(y), 0.2) + skips.pop()
        return self.out(self.refine(y))
