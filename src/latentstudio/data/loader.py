"""The device-resident loader: the whole uint8 dataset on the training device."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from latentstudio.data.base import ImageSet
from latentstudio.errors import UserError
from latentstudio.images import from_uint8


class DeviceLoader:
    """The whole uint8 dataset on the device; shuffles, batches and normalises there.

    The order of epoch e depends only on (seed, e), so a resumed run sees the same batches.
    With several processes, rank r keeps images r, r + world_size, ... (equal shares, the few
    left over dropped) and takes batch_size / world_size of every batch, so `batch_size` is the
    total over all ranks and an epoch has the same number of steps on every rank.
    With `mirror`, each image of an epoch is flipped left-right with probability 1/2 (StyleGAN's
    x-flip), drawn with the epoch's order so a resumed run flips the same ones.
    """

    def __init__(self, data: ImageSet, batch_size: int, seed: int, device: torch.device,
                 channels_last: bool = False, rank: int = 0, world_size: int = 1,
                 mirror: bool = False) -> None:
        images, labels = data.images, data.labels
        if world_size > 1:
            if batch_size % world_size:
                raise UserError(f"--batch-size {batch_size} must be divisible by the number of "
                                f"processes ({world_size}): it is the total over all of them")
            share = len(images) // world_size
            if share == 0:
                raise UserError(f"{len(images)} images cannot be shared among {world_size} processes")
            images = images[rank::world_size][:share]
            labels = labels[rank::world_size][:share] if labels is not None else None
            batch_size //= world_size
        self.images = images.to(device)
        self.labels = labels.to(device) if labels is not None else None
        self.batch_size = min(batch_size, len(images))
        self.seed = seed
        self.rank = rank
        self.device = device
        self.channels_last = channels_last
        self.mirror = mirror

    def __len__(self) -> int:
        return len(self.images) // self.batch_size

    def batches(self, epoch: int, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        """The batches of epoch `epoch` from batch `start` on, normalised to [-1, 1]."""
        seed = self.seed * 1_000_003 + epoch + self.rank * 7_777_777_777
        g = torch.Generator().manual_seed(seed % 2**63)
        order = torch.randperm(len(self.images), generator=g)
        flips = (torch.rand(len(self.images), generator=g) < 0.5).to(self.device) if self.mirror \
            else None
        if self.device.type == "cuda":  # from pinned memory the copy does not wait for the GPU
            order = order.pin_memory().to(self.device, non_blocking=True)
        else:
            order = order.to(self.device)
        for i in range(start, len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            x = from_uint8(self.images[idx])
            if flips is not None:
                flip = flips[i * self.batch_size:(i + 1) * self.batch_size, None, None, None]
                x = torch.where(flip, x.flip(3), x)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, (self.labels[idx] if self.labels is not None else None)
