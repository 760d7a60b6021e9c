"""A small CNN trained on the real data itself, for domains where ImageNet features say little
(tiny grayscale sketches, glyphs, textures).

With labels it learns to classify them; without, it learns to reconstruct each image from its
pooled code (an autoencoder), which always has something to learn, unlike rotation prediction
on data whose content is itself rotated. The 128-d pooled encoder output is the feature space. The trained network is cached in
cache_dir()/metrics/domain/ under the dataset's fingerprint and reused on later calls, so
numbers from the same data stay comparable across runs.
"""

from __future__ import annotations

import pickle
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from latentstudio import atomic
from latentstudio.data.base import ImageSet
from latentstudio.images import from_uint8
from latentstudio.paths import cache_dir


@dataclass(frozen=True)
class DomainTraining:
    """How the domain network is trained; part of its cache key."""

    epochs: int = 4
    min_steps: int = 100  # a few hundred images are a few batches: train on them for longer
    max_images: int = 5000
    batch_size: int = 128
    lr: float = 2e-3
    width: int = 32
    seed: int = 0

    def __post_init__(self) -> None:
        if min(self.epochs, self.min_steps, self.max_images, self.batch_size, self.width) <= 0:
            raise ValueError("DomainTraining fields must be positive")


def _block(cin: int, cout: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


class DomainNet(nn.Module):
    """The feature network: five conv layers, global average pool to `4 * width` features."""

    def __init__(self, channels: int, width: int = 32) -> None:
        super().__init__()
        w = width
        self.body = nn.Sequential(
            *_block(channels, w, 1), *_block(w, w, 2), *_block(w, 2 * w, 1),
            *_block(2 * w, 2 * w, 2), *_block(2 * w, 4 * w, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.dim = 4 * w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features (N, dim) of images in [-1, 1]."""
        return self.body(x)


class _Decoder(nn.Module):
    """Training-only head of the autoencoder task: code -> image at 4x the coarse grid."""

    def __init__(self, dim: int, channels: int, resolution: int | tuple[int, int], width: int) -> None:
        super().__init__()
        # (height, width) of the images; `resolution` is a side or (width, height).
        w, h = (resolution, resolution) if isinstance(resolution, int) else resolution
        self.grid = (-(-h // 4), -(-w // 4))
        self.resolution = (h, w)
        self.fc = nn.Linear(dim, 2 * width * self.grid[0] * self.grid[1])
        self.up = nn.Sequential(
            nn.Upsample(scale_factor=2), *_block(2 * width, width, 1),
            nn.Upsample(scale_factor=2), nn.Conv2d(width, channels, 3, 1, 1), nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.fc(z).view(len(z), -1, *self.grid)
        return self.up(x)[..., : self.resolution[0], : self.resolution[1]]


def _task_head(dataset: ImageSet, dim: int, width: int) -> tuple[str, nn.Module]:
    if dataset.labels is not None and len(torch.unique(dataset.labels)) >= 2:
        return "classes", nn.Linear(dim, int(dataset.labels.max()) + 1)
    return "autoencoder", _Decoder(dim, dataset.channels, dataset.size, width)


def train_domain_network(dataset: ImageSet, config: DomainTraining = DomainTraining(),
                         device: str = "cpu", progress: bool = True) -> tuple[DomainNet, dict]:
    """Train a DomainNet on (up to `max_images` of) the dataset; returns it and a summary."""
    gen = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    index = torch.randperm(len(dataset), generator=gen)[: config.max_images]
    images = dataset.images[index]
    labels = dataset.labels[index] if dataset.labels is not None else None
    net = DomainNet(dataset.channels, config.width).to(device)
    mode, head = _task_head(dataset, net.dim, config.width)
    head.to(device)
    opt = torch.optim.Adam([*net.parameters(), *head.parameters()], lr=config.lr)
    batches = -(-len(images) // config.batch_size)
    epochs = max(config.epochs, -(-config.min_steps // batches))
    steps = epochs * batches
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, config.lr, total_steps=steps)
    net.train()
    head.train()
    correct = seen = 0
    loss_sum = 0.0
    bar = tqdm(total=steps, desc=f"domain extractor ({mode})", disable=not progress, leave=False)
    for epoch in range(epochs):
        order = torch.randperm(len(images), generator=gen)
        correct = seen = 0  # summary of the last epoch
        loss_sum = 0.0
        for start in range(0, len(images), config.batch_size):
            i = order[start:start + config.batch_size]
            x = from_uint8(images[i]).to(device)
            out = head(net(x))
            if mode == "classes":
                y = labels[i].to(device)  # type: ignore[index]
                loss = F.cross_entropy(out, y)
                correct += int((out.argmax(1) == y).sum())
            else:
                loss = F.mse_loss(out, x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            seen += len(x)
            loss_sum += loss.item() * len(x)
            bar.update(1)
            bar.set_postfix(epoch=epoch, loss=f"{loss.item():.3f}")
    bar.close()
    net.eval()
    summary: dict = {"task": mode, "last_epoch_loss": loss_sum / max(seen, 1)}
    if mode == "classes":
        summary["train_accuracy"] = correct / max(seen, 1)
    return net, summary


def domain_cache_path(fingerprint: str, config: DomainTraining) -> Path:
    tag = f"e{config.epochs}-m{config.min_steps}-n{config.max_images}-w{config.width}-s{config.seed}"
    return cache_dir() / "metrics" / "domain" / f"{fingerprint}-{tag}.pt"


DEFAULT_TRAINING = DomainTraining()


def domain_network(dataset: ImageSet, config: DomainTraining | None = None,
                   device: str = "cpu", progress: bool = True) -> tuple[DomainNet, str]:
    """The domain network for this dataset: loaded from the cache, or trained (with `config`,
    default DEFAULT_TRAINING) and cached. Returns the network and the dataset's fingerprint."""
    config = config or DEFAULT_TRAINING
    fingerprint = dataset.fingerprint()
    path = domain_cache_path(fingerprint, config)
    if path.is_file():
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            net = DomainNet(saved["channels"], saved["config"]["width"])
            net.load_state_dict(saved["state_dict"])
            return net.eval().to(device), fingerprint
        except (RuntimeError, KeyError, OSError, EOFError, pickle.UnpicklingError):
            pass  # unreadable cache entry: train again and overwrite it
    net, summary = train_domain_network(dataset, config, device, progress)
    atomic.save_torch(path, {
        "state_dict": {k: v.cpu() for k, v in net.state_dict().items()},
        "channels": dataset.channels, "config": asdict(config), "summary": summary,
        "fingerprint": fingerprint,
    })
    return net, fingerprint
