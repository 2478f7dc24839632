"""CompactInpainter: a small U-Net that fills masked regions (inpainting and outpainting bands).

A parameter-free push-pull pyramid fill gives every hole pixel a smooth first guess from its
surroundings (what diffusion inpainting such as Telea does, in closed form); the network predicts a
residual on it, so even a small, briefly trained network starts from a fair baseline.

Layout (widths for features=f): a 5x5 stem at full resolution, three stride-2 stages (f -> 2f -> 4f -> w8,
w8 = bottleneck width), a bottleneck at 1/8 resolution of residual blocks with dilations (2, 4, 8, 16, 1,
...) so one output pixel sees about +-300 input pixels, a mask-aware global-context vector (mean of the
bottleneck features over the known pixels, added back everywhere: the colour of a studio background is a
global fact), then nearest-upsample + conv stages with additive skips back to full resolution.

Plain convolutions, LeakyReLU, nearest upsampling and reductions only: every op exports to ONNX (opset 17+)
with dynamic H and W, and runs on TensorRT.

Call contract (spandrel's `MaskedImageModelDescriptor` uses the same one, `model(image, mask)`):
    image: (N, 3, H, W) float RGB in [0, 1]; pixels under the mask are ignored (zeroed here).
    mask:  (N, 1, H, W) float in {0, 1}, 1 = pixels to generate.
    H and W multiples of `size_multiple` (8) and at least `min_size` (64); shared code pads and crops.
    returns (N, 3, H, W) float, the full prediction, not clamped; shared code composites
    `image * (1 - mask) + pred * mask`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engines.push_pull import PYRAMID_LEVELS, push_pull

DEFAULT_FEATURES = 16
DEFAULT_BOTTLENECK = 96
DEFAULT_BLOCKS = 4
DILATIONS = (2, 4, 8, 16)
# Three stride-2 stages: H and W must be multiples of 8.
SIZE_MULTIPLE = 8
# The push-pull first guess needs H and W of at least 2**PYRAMID_LEVELS.
MIN_SIZE = 2**PYRAMID_LEVELS


def _act() -> nn.Module:
    return nn.LeakyReLU(0.2, inplace=True)


def _conv(cin: int, cout: int, k: int = 3, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=dilation * (k // 2), dilation=dilation)


class _ResBlock(nn.Module):
    """x + conv(act(conv_dilated(x))), the second conv undilated to fill the dilation's gaps."""

    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv(channels, channels, dilation=dilation), _act(), _conv(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class _Up(nn.Module):
    """Nearest x2 upsample, conv, add the encoder skip, conv."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(_conv(cin, cout), _act())
        self.fuse = nn.Sequential(_conv(cout, cout), _act())

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return self.fuse(self.conv(x) + skip)


def receptive_field(blocks: int = DEFAULT_BLOCKS) -> int:
    """Radius in input pixels one output pixel depends on (convolutional path; the global vector sees all).

    Full res: stem 2 + 2 decoder convs; 1/2: 2 convs each side; 1/4: same; 1/8: 1 down conv +
    the residual blocks (dilation d then 1), times 8 input pixels per bottleneck pixel.
    """
    dil = [DILATIONS[i % len(DILATIONS)] for i in range(blocks)]
    bottleneck = 1 + sum(d + 1 for d in dil) + 1
    return 2 + 2 + 2 * 4 + 4 * 4 + 8 * bottleneck


class CompactInpainter(nn.Module):
    """Inpainting generator; see the module docstring for the call contract.

    Args:
        features: width at full resolution (2x at 1/2, 4x at 1/4).
        bottleneck: width at 1/8 resolution.
        blocks: dilated residual blocks at 1/8 resolution (dilations cycle through 2, 4, 8, 16).
    """

    size_multiple = SIZE_MULTIPLE
    min_size = MIN_SIZE
    task = "inpaint"  # lets a loader that only sees the class tell it from SR/denoise networks

    def __init__(self, features: int = DEFAULT_FEATURES, bottleneck: int = DEFAULT_BOTTLENECK,
                 blocks: int = DEFAULT_BLOCKS) -> None:
        super().__init__()
        f1, f2, f3, f4 = features, features * 2, features * 4, bottleneck
        self.features, self.bottleneck, self.blocks = features, bottleneck, blocks
        # Input: the push-pull guess, the mask, and a constant ones channel (lets zero padding mark the border).
        self.stem = nn.Sequential(_conv(5, f1, k=5), _act())
        self.down1 = nn.Sequential(_conv(f1, f2, stride=2), _act(), _conv(f2, f2), _act())
        self.down2 = nn.Sequential(_conv(f2, f3, stride=2), _act(), _conv(f3, f3), _act())
        self.down3 = nn.Sequential(_conv(f3, f4, stride=2), _act())
        self.body = nn.Sequential(*[_ResBlock(f4, DILATIONS[i % len(DILATIONS)]) for i in range(blocks)])
        self.context = nn.Sequential(nn.Linear(f4, f4), _act(), nn.Linear(f4, f4))
        self.up3 = _Up(f4, f3)
        self.up2 = _Up(f3, f2)
        self.up1 = _Up(f2, f1)
        self.tail = _conv(f1, 3)

    @property
    def receptive_field(self) -> int:
        """Input-pixel radius of the convolutional path; see `receptive_field()`."""
        return receptive_field(self.blocks)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h, w = image.shape[-2:]
        if not torch.jit.is_tracing() and not torch.compiler.is_compiling() and isinstance(h, int) and (
            h % SIZE_MULTIPLE or w % SIZE_MULTIPLE or min(h, w) < MIN_SIZE
        ):
            raise ValueError(f"CompactInpainter needs H, W multiples of {SIZE_MULTIPLE} and >= {MIN_SIZE}, "
                             f"got {h}x{w}")
        known = 1.0 - mask
        guess = push_pull(image, known)
        x = torch.cat([guess, mask, torch.ones_like(mask)], dim=1)
        s0 = self.stem(x)
        s1 = self.down1(s0)
        s2 = self.down2(s1)
        b = self.body(self.down3(s2))
        # Global context: mean of the bottleneck over known pixels (mask pooled to 1/8 by max: any hole
        # pixel makes the cell unknown), eps keeps an all-hole canvas finite.
        k8 = 1.0 - F.max_pool2d(mask, 8, 8)
        g = (b * k8).sum(dim=(2, 3)) / (k8.sum(dim=(2, 3)) + 1e-3)
        b = b + self.context(g)[:, :, None, None]
        d = self.up1(self.up2(self.up3(b, s2), s1), s0)
        # Residual on the push-pull guess: known pixels start from themselves, holes from a smooth fill.
        return guess + self.tail(d)
