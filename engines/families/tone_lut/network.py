"""ToneLUT: image-adaptive 3D lookup tables for tone and colour (after Zeng et al., TPAMI 2020).

A small CNN looks at a thumbnail of the whole photo and predicts (a) the weights of `luts` learned basis
3D LUTs, whose weighted sum (on top of the identity) is the photo's colour transform, and (b) one radial
gain that undoes vignetting. Why this shape:
- tone and colour problems (exposure, white balance, tint, contrast, gamma, saturation) are global: a
  thumbnail is enough to see them, so the CNN's cost does not grow with the photo;
- the transform is applied per pixel by a table lookup (trilinear in a `size`^3 LUT), which costs a few
  tens of milliseconds per megapixel at any resolution and cannot invent texture or move edges;
- the LUTs are residuals over the identity and start at zero, so an untrained network leaves photos
  alone, and a good photo is one the network has learned to map to (nearly) the identity.

Contract: forward(thumbnail (N, 3, h, w) in [0, 1]) -> params (N, 1, 1, 3 * size**3 + 1): the fused LUT
flattened as (3, size, size, size) = (channel, r, g, b), then the vignetting gain k. A tone engine applies
them with `engines.tone.apply_params` (8-bit Pillow lookup); training uses `apply_torch` (differentiable).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

DEFAULT_SIZE = 17
DEFAULT_LUTS = 3
DEFAULT_FEATURES = 16
THUMBNAIL_SIDE = 128  # the CNN sees every photo squashed to this square, as in training


def radial_r2(height: int, width: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(height, width) squared normalised distance from the centre, 0 at the centre and 1 in the corners."""
    v = torch.linspace(-1.0, 1.0, height, device=device)[:, None]
    u = torch.linspace(-1.0, 1.0, width, device=device)[None, :]
    return (u * u + v * v) / 2.0


def identity_lut(size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(3, size, size, size): channel c at (r, g, b) holds that grid point's own c value."""
    grid = torch.linspace(0.0, 1.0, size, device=device)
    r, g, b = torch.meshgrid(grid, grid, grid, indexing="ij")
    return torch.stack([r, g, b])


class ToneLUT(nn.Module):
    """Args: size (LUT grid points per axis), luts (basis LUTs), features (first CNN width; doubles per
    stage up to 8x)."""

    def __init__(self, size: int = DEFAULT_SIZE, luts: int = DEFAULT_LUTS, features: int = DEFAULT_FEATURES,
                 confidence: bool = False) -> None:
        super().__init__()
        self.size, self.luts, self.confidence = size, luts, confidence
        widths = [3, features, features * 2, features * 4, features * 8, features * 8]
        layers: list[nn.Module] = []
        for cin, cout in zip(widths[:-1], widths[1:], strict=True):
            # Instance norm only after the first conv, as Zeng et al.: it removes the global mean the later
            # layers must still see, so it is kept out of the deeper stages.
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.LeakyReLU(0.2)]
            if cin == 3:
                layers.append(nn.InstanceNorm2d(cout, affine=True))
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(0.3)
        # confidence: one more output, the odds that the photo needs correcting at all; the correction (LUT
        # residual and gain) is scaled by its sigmoid, so a photo judged good maps (nearly) to the identity,
        # while the output format stays one LUT and one gain. A trainer option, not shipped (tone card).
        self.head = nn.Linear(widths[-1] * 2, luts + 1 + int(confidence))
        nn.init.zeros_(self.head.bias)
        nn.init.normal_(self.head.weight, std=0.01)
        self.basis = nn.Parameter(torch.zeros(luts, 3, size, size, size))
        self.register_buffer("identity", identity_lut(size), persistent=False)

    def forward(self, thumbnail: torch.Tensor) -> torch.Tensor:
        return self.params_and_needs(thumbnail)[0]

    def params_and_needs(self, thumbnail: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(the transform's parameters (N, 1, 1, P), the needs-correction probability (N,) or None)."""
        x = F.interpolate(thumbnail, size=(THUMBNAIL_SIDE, THUMBNAIL_SIDE), mode="bilinear", align_corners=False)
        f = self.features(x)
        # Mean and max pooling: the mean sees the overall cast, the max sees the white point.
        out = self.head(self.dropout(torch.cat([f.mean(dim=(2, 3)), f.amax(dim=(2, 3))], dim=1)))
        weights, gain = out[:, : self.luts], torch.tanh(out[:, self.luts : self.luts + 1])
        needs = None
        if self.confidence:
            needs = torch.sigmoid(out[:, self.luts + 1])
            weights, gain = weights * needs[:, None], gain * needs[:, None]
        lut = self.identity + torch.einsum("nk,kcrgb->ncrgb", weights, self.basis)
        return torch.cat([lut.flatten(1), gain], dim=1)[:, None, None, :], needs

    def unpack(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """params (N, 1, 1, P) -> (lut (N, 3, size, size, size), gain (N,))."""
        flat = params.reshape(params.shape[0], -1)
        lut = flat[:, :-1].reshape(-1, 3, self.size, self.size, self.size)
        return lut, flat[:, -1]


def apply_torch(image: torch.Tensor, lut: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
    """The transform, differentiably: image (N, 3, H, W) in [0, 1] -> same shape.

    Vignetting first (x * (1 + k r^2), k in [-1, 1]), then the trilinear LUT lookup. grid_sample's last grid
    axis is (x, y, z) = (b, g, r) for a volume laid out (r, g, b).
    """
    n, _, h, w = image.shape
    boosted = (image * (1.0 + gain.view(n, 1, 1, 1) * radial_r2(h, w, image.device))).clamp(0.0, 1.0)
    grid = boosted.permute(0, 2, 3, 1).flip(-1)[:, None] * 2.0 - 1.0  # (N, 1, H, W, 3) as (b, g, r)
    out = F.grid_sample(lut, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out[:, :, 0]

