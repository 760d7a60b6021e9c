"""The in-memory dataset every source produces: uint8 images, optional labels, a fingerprint."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import torch


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
