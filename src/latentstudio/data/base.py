"""The in-memory dataset every source produces: uint8 images, optional labels, a fingerprint."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Literal

import torch

from latentstudio.errors import UserError


def parse_size(resolution: int | str) -> tuple[int, int]:
    """(width, height) of a resolution: `64` (square) or "64x128" (WIDTH x HEIGHT)."""
    if isinstance(resolution, int) and not isinstance(resolution, bool):
        return resolution, resolution
    match = re.fullmatch(r"\s*(\d+)\s*(?:[xX×]\s*(\d+))?\s*", str(resolution))
    if not match:
        raise UserError(f"--resolution must be a size in pixels like 64 (square) or 64x128 "
                        f"(WIDTH x HEIGHT), got {resolution!r}")
    width = int(match[1])
    return width, int(match[2]) if match[2] else width


def size_text(width: int, height: int) -> str:
    """"64" for a square size, "64x128" otherwise."""
    return str(width) if width == height else f"{width}x{height}"


def fit_tensor(images: torch.Tensor, width: int, height: int,
               fit: Literal["crop", "pad"] = "crop") -> torch.Tensor:
    """uint8 images (N, C, h, w) at width x height: centre crop of the scaled images, or scaled to
    fit and padded with the median colour of each image's border (as folders are fitted)."""
    n, c, h, w = images.shape
    if (w, h) == (width, height):
        return images
    scale = max(width / w, height / h) if fit == "crop" else min(width / w, height / h)
    sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
    out = torch.empty((n, c, height, width), dtype=torch.uint8)
    for i in range(0, n, 1024):
        x = images[i:i + 1024].float()
        # Bicubic with antialias matches PIL's BICUBIC filter; clamp the ringing it can add.
        x = torch.nn.functional.interpolate(x, size=(sh, sw), mode="bicubic", antialias=True,
                                            align_corners=False).round_().clamp_(0, 255)
        if fit == "crop":
            top, left = (sh - height) // 2, (sw - width) // 2
            out[i:i + 1024] = x[:, :, top:top + height, left:left + width].to(torch.uint8)
            continue
        border = torch.cat([x[:, :, 0], x[:, :, -1], x[:, :, :, 0], x[:, :, :, -1]], dim=2)
        colour = border.median(dim=2).values.to(torch.uint8)
        block = colour[:, :, None, None].expand(-1, -1, height, width).clone()
        top, left = (height - sh) // 2, (width - sw) // 2
        block[:, :, top:top + sh, left:left + sw] = x.to(torch.uint8)
        out[i:i + 1024] = block
    return out


@dataclass
class ImageSet:
    """Decoded images as a uint8 tensor (N, C, H, W), with optional int64 labels (N,).

    `class_names[i]` names label i; `spec` is the data spec the set came from.
    """

    images: torch.Tensor
    labels: torch.Tensor | None = None
    class_names: list[str] = field(default_factory=list)
    spec: str = ""

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError("images must be a uint8 tensor of shape (N, C, H, W)")
        if self.labels is not None and len(self.labels) != len(self.images):
            raise ValueError("labels and images differ in length")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def resolution(self) -> int:
        return int(self.images.shape[-1])

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.images.shape[-1]), int(self.images.shape[-2])

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def fingerprint(self) -> str:
        """A short sha256 of the pixels and labels: equal data, equal fingerprint."""
        h = hashlib.sha256()
        h.update(str(tuple(self.images.shape)).encode())
        h.update(self.images.contiguous().numpy().tobytes())
        if self.labels is not None:
            h.update(self.labels.to(torch.int64).contiguous().numpy().tobytes())
        return h.hexdigest()[:16]

    def subset(self, index: torch.Tensor) -> ImageSet:
        """The images (and labels) at `index`."""
        labels = self.labels[index] if self.labels is not None else None
        return ImageSet(self.images[index], labels, list(self.class_names), self.spec)
