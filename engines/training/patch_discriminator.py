"""PatchDiscriminator: a spectral-normalised PatchGAN critic for training CompactInpainter (training only).

Input: RGB (composited result or real image) + the mask, (N, 4, H, W); output (N, 1, H/8, W/8) logits,
one per ~70-pixel patch. `forward(..., features=True)` also returns the intermediate activations for the
feature-matching loss. Spectral norm keeps the hinge-loss critic Lipschitz without gradient penalties
(cheap on CPU). Never shipped, never exported.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class PatchDiscriminator(nn.Module):
    """Four stride-2/1 SN conv stages (features, 2x, 4x, 4x) and a 1-channel logit head."""

    def __init__(self, in_channels: int = 4, features: int = 32) -> None:
        super().__init__()
        f = features
        widths = [(in_channels, f, 2), (f, 2 * f, 2), (2 * f, 4 * f, 2), (4 * f, 4 * f, 1)]
        self.stages = nn.ModuleList(
            nn.Sequential(spectral_norm(nn.Conv2d(cin, cout, 4, stride=s, padding=1 if s == 2 else 2)),
                          nn.LeakyReLU(0.2, inplace=False))
            for cin, cout, s in widths
        )
        self.head = spectral_norm(nn.Conv2d(4 * f, 1, 3, padding=1))

    def forward(self, image: torch.Tensor, mask: torch.Tensor,
                features: bool = False) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        x = torch.cat([image, mask], dim=1)
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        logits = self.head(x)
        return (logits, feats) if features else logits
