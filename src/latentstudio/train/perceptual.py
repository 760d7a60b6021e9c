"""A perceptual distance on frozen EfficientNet-Lite0 features, for FastGAN's self-supervised
discriminator (`--recon-loss lite0`).

The paper scores the discriminator's reconstructions with LPIPS (VGG), whose weights cannot be had
offline. This is LPIPS without its learned layer weights (the "baseline" variant of Zhang et al.
2018): features from several depths are unit-normalised across channels, and the squared
differences are summed over channels and averaged over positions, then summed over depths.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# The last block of each stride (2, 4, 8, 16): edges and colour first, parts of objects last.
TAPPED_BLOCKS = (0, 2, 4, 7)


class Lite0Distance(nn.Module):
    """distance(x, y) -> the mean over the batch of the perceptual distance of images in [-1, 1]."""

    def __init__(self) -> None:
        super().__init__()
        from latentstudio.models.lite0 import load_lite0

        net = load_lite0()
        self.stem = nn.Sequential(net._conv_stem, net._bn0, net._swish)
        self.blocks = nn.ModuleList(net._blocks[:max(TAPPED_BLOCKS) + 1])
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> Lite0Distance:
        return super().train(False)  # frozen batch-norm statistics, always

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = self.stem(x[:, :3])
        taps = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in TAPPED_BLOCKS:
                taps.append(F.normalize(x.float(), dim=1, eps=1e-8))
        return taps

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        pairs = zip(self.features(x), self.features(y), strict=True)
        return sum(((a - b) ** 2).sum(1).mean() for a, b in pairs)
