"""A small CNN trained on the real data itself, for domains where ImageNet features say little
(tiny grayscale sketches, glyphs, textures).

With labels it learns to classify them. Without, it learns contrastively (SimCLR, Chen et al.
2020): two random views of each image (crop, flip, SimCLR's colour distortion with hue jitter
and greyscale) must find each other among the batch. Jittering brightness, contrast and
saturation alone (until 2026-12-01 11:40 UTC) let colour tell the images apart: on 500 emoji,
500 unseen ones scored 0.17 and the same with their quarters shuffled 0.45; with hue and
greyscale 0.05 and 0.43. Self-supervised features of this kind rank generative models closer
to human judgement than classifier features (Morozov et al., ICLR 2021). The autoencoder used
before ranked 500 held-out real emoji below two GANs trained on the other 500 (README: "Evaluate
and compare"), likely because reconstruction codes keep pixel detail rather than what the images
show.

The 128-d pooled output is the feature space. The trained network is cached in
cache_dir()/metrics/domain/ under the dataset's fingerprint and the training settings, and
reused on later calls, so numbers from the same data stay comparable.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable
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
from latentstudio.precision import cpu_autocast, resolve_precision


@dataclass(frozen=True)
class DomainTraining:
    """How the domain network is trained; part of its cache key."""

    epochs: int = 4
    min_steps: int = 100  # a few hundred images are a few batches: train on them for longer
    unlabelled: str = "contrastive"  # or "autoencoder", the task of older FID (domain) results
    contrastive_steps: int = 200
    temperature: float = 0.2
    max_images: int = 5000
    batch_size: int = 128
    lr: float = 2e-3
    width: int = 32
    seed: int = 0
    colours: str = "simclr"  # the contrastive views' colour jitter ("no-hue": until 2026-12-01)

    def __post_init__(self) -> None:
        if min(self.epochs, self.min_steps, self.contrastive_steps, self.max_images,
               self.batch_size, self.width, self.temperature) <= 0:
            raise ValueError("DomainTraining fields must be positive")
        if self.unlabelled not in ("contrastive", "autoencoder"):
            raise ValueError("DomainTraining.unlabelled is 'contrastive' or 'autoencoder'")
        if self.colours not in ("simclr", "no-hue"):
            raise ValueError("DomainTraining.colours is 'simclr' or 'no-hue'")


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


def _hue_rotation(angle: torch.Tensor) -> torch.Tensor:
    """(N, 3, 3) rotations of RGB about the grey axis by `angle` (N,) radians: a hue shift that
    keeps each colour's grey level."""
    axis = torch.full((3,), 3 ** -0.5, device=angle.device)
    cross = torch.tensor([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]],
                         device=angle.device) * 3 ** -0.5
    cos, sin = angle.cos()[:, None, None], angle.sin()[:, None, None]
    return cos * torch.eye(3, device=angle.device) + sin * cross + (1 - cos) * torch.outer(axis, axis)


def _simclr_colour(colour: torch.Tensor, rand: Callable[..., torch.Tensor]) -> torch.Tensor:
    """SimCLR's colour distortion of RGB in [0, 1]: with probability 0.8 brightness, contrast and
    saturation scaled by 0.2-1.8 and hue turned by up to 0.2 of the circle (in that order), then
    with probability 0.2 greyscale. Without hue and greyscale, colour alone tells a few hundred
    images apart, and the features become colour histograms (Chen et al. 2020, section 3)."""
    def factor() -> torch.Tensor:
        return rand(1, 1, 1) * 1.6 + 0.2

    jittered = colour * factor()
    level = jittered.mean((1, 2, 3), keepdim=True)
    jittered = level + (jittered - level) * factor()
    grey = jittered.mean(1, keepdim=True)
    jittered = (grey + (jittered - grey) * factor()).clamp(0, 1)
    turn = _hue_rotation((rand() * 0.4 - 0.2) * 2 * math.pi)
    jittered = torch.einsum("nij,njhw->nihw", turn, jittered)
    colour = torch.where(rand(1, 1, 1) < 0.8, jittered.clamp(0, 1), colour)
    return torch.where(rand(1, 1, 1) < 0.2, colour.mean(1, keepdim=True).expand_as(colour), colour)


def _views(x: torch.Tensor, g: torch.Generator, colours: str = "simclr") -> torch.Tensor:
    """A random view of each image in [-1, 1]: a crop of 40-100% of its area, maybe mirrored,
    resized back to full size, with its colours distorted as SimCLR does (without blur: these
    images are small). `colours="no-hue"` is the jitter used until 2026-12-01 11:40 UTC:
    brightness, contrast and saturation only."""
    n, dev = len(x), x.device

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(n, *shape, device=dev, generator=g)

    side = (0.4 + 0.6 * rand()).sqrt()
    theta = torch.zeros(n, 2, 3, device=dev)
    theta[:, 0, 0] = side * torch.where(rand() < 0.5, -1.0, 1.0)
    theta[:, 1, 1] = side
    theta[:, :, 2] = (rand(2) * 2 - 1) * (1 - side[:, None])
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    c = 3 if x.shape[1] >= 3 else 1  # colour channels; an alpha channel after them is kept
    colour, alpha = x[:, :c], x[:, c:]
    if colours == "simclr" and c == 3:
        colour = _simclr_colour((colour + 1) / 2, rand) * 2 - 1
        return torch.cat([colour, alpha], dim=1)
    if c == 3:
        grey = colour.mean(1, keepdim=True)
        colour = grey + (colour - grey) * (rand(1, 1, 1) * 1.6 + 0.2)
    mean = colour.mean((1, 2, 3), keepdim=True)
    colour = mean + (colour - mean) * (rand(1, 1, 1) * 0.8 + 0.6) + (rand(1, 1, 1) - 0.5) * 0.8
    return torch.cat([colour.clamp(-1, 1), alpha], dim=1)


def _nt_xent(z: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's loss for 2N projections, views i and i + N of the same image."""
    z = F.normalize(z.float(), dim=1)
    n = len(z) // 2
    sim = z @ z.T / temperature
    sim.fill_diagonal_(float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return F.cross_entropy(sim, target)


def _task(dataset: ImageSet, config: DomainTraining) -> str:
    """What the network learns on this dataset: its classes, or the task for unlabelled data."""
    if dataset.labels is not None and len(torch.unique(dataset.labels)) >= 2:
        return "classes"
    return config.unlabelled


def _precision(task: str) -> str:
    """bf16 where faster for the contrastive task (2.1x); the older tasks stay as they were."""
    return "auto" if task == "contrastive" else "fp32"


def _task_head(task: str, dataset: ImageSet, dim: int, config: DomainTraining) -> nn.Module:
    if task == "classes":
        return nn.Linear(dim, int(dataset.labels.max()) + 1)  # type: ignore[union-attr]
    if task == "autoencoder":
        return _Decoder(dim, dataset.channels, dataset.size, config.width)
    return nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, 64))


def train_domain_network(dataset: ImageSet, config: DomainTraining = DomainTraining(),
                         device: str = "cpu", progress: bool = True) -> tuple[DomainNet, dict]:
    """Train a DomainNet on (up to `max_images` of) the dataset; returns it and a summary."""
    gen = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    index = torch.randperm(len(dataset), generator=gen)[: config.max_images]
    images = dataset.images[index]
    labels = dataset.labels[index] if dataset.labels is not None else None
    net = DomainNet(dataset.channels, config.width).to(device)
    view_gen = torch.Generator(device).manual_seed(config.seed)
    mode = _task(dataset, config)
    head = _task_head(mode, dataset, net.dim, config)
    head.to(device)
    opt = torch.optim.Adam([*net.parameters(), *head.parameters()], lr=config.lr)
    batches = -(-len(images) // config.batch_size)
    min_steps = config.contrastive_steps if mode == "contrastive" else config.min_steps
    epochs = max(config.epochs, -(-min_steps // batches))
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
            if mode == "contrastive":
                x = torch.cat([_views(x, view_gen, config.colours),
                               _views(x, view_gen, config.colours)])
            with cpu_autocast(device, "train", _precision(mode)):
                out = head(net(x))
            if mode == "contrastive":
                loss = _nt_xent(out, config.temperature)
            elif mode == "classes":
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


def domain_cache_path(fingerprint: str, config: DomainTraining, task: str,
                      device: str = "cpu") -> Path:
    """Where the network trained on `task` with `config` on `device` is cached."""
    tag = f"e{config.epochs}-m{config.min_steps}-n{config.max_images}-w{config.width}-s{config.seed}"
    if task == "contrastive":  # the settings of this task are part of the name
        tag += f"-c{config.contrastive_steps}-t{config.temperature:g}"
        if config.colours != "no-hue":  # names of networks cached before stay theirs
            tag += f"-{config.colours}"
    if torch.device(device).type == "cpu" and \
            resolve_precision(_precision(task), device, "train") == "bf16":
        tag += "-bf16"  # trained under bf16 autocast: another network than in fp32
    return cache_dir() / "metrics" / "domain" / f"{fingerprint}-{tag}.pt"


DEFAULT_TRAINING = DomainTraining()


def domain_network(dataset: ImageSet, config: DomainTraining | None = None,
                   device: str = "cpu", progress: bool = True) -> tuple[DomainNet, str]:
    """The domain network for this dataset: loaded from the cache, or trained (with `config`,
    default DEFAULT_TRAINING) and cached. Returns the network and its name (the dataset's
    fingerprint and the training settings: real-data statistics are cached under it)."""
    config = config or DEFAULT_TRAINING
    fingerprint = dataset.fingerprint()
    path = domain_cache_path(fingerprint, config, _task(dataset, config), device)
    if path.is_file():
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            net = DomainNet(saved["channels"], saved["config"]["width"])
            net.load_state_dict(saved["state_dict"])
            return net.eval().to(device), path.stem
        except (RuntimeError, KeyError, OSError, EOFError, pickle.UnpicklingError):
            pass  # unreadable cache entry: train again and overwrite it
    net, summary = train_domain_network(dataset, config, device, progress)
    atomic.save_torch(path, {
        "state_dict": {k: v.cpu() for k, v in net.state_dict().items()},
        "channels": dataset.channels, "config": asdict(config), "summary": summary,
        "fingerprint": fingerprint,
    })
    return net, path.stem
