"""Loading a finished (or running) run folder for sampling: its config, its networks, its latents."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from latentstudio.data import ImageSet, load_dataset
from latentstudio.devices import resolve_device
from latentstudio.errors import UserError
from latentstudio.models import Family, Kind, ModelConfig, get_family
from latentstudio.runs.checkpoint import load_checkpoint, load_models
from latentstudio.runs.folder import read_run_config

if TYPE_CHECKING:  # imported when used: `latentstudio.load` samples without the training code
    from latentstudio.train.config import TrainConfig


@dataclass
class Run:
    """A loaded run: config, family, networks (in eval mode) and the sampling network."""

    path: Path
    config: TrainConfig
    family: Family
    model_config: ModelConfig
    models: nn.ModuleDict
    meta: dict[str, Any]
    device: torch.device
    progress: dict[str, Any] = field(default_factory=dict)

    @property
    def class_names(self) -> list[str]:
        return list(self.meta.get("data", {}).get("class_names", []))

    @property
    def kind(self) -> Kind:
        return self.family.hooks

    @property
    def image_network(self) -> nn.Module:
        """The network that turns latents into images (EMA weights when the run kept them)."""
        name = self.kind.image_module
        return self.models[f"{name}_ema"] if f"{name}_ema" in self.models else self.models[name]

    @property
    def can_encode(self) -> bool:
        """Whether the model maps images to latents (a VAE's encoder)."""
        return self.kind.can_encode

    @torch.no_grad()
    def encode(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Latents of images in [-1, 1] (N, C, H, W), on the CPU; only when `can_encode`."""
        if not self.can_encode:
            raise UserError(f"model {self.config.model!r} cannot encode images")
        y = labels.to(self.device) if labels is not None else None
        return self.kind.encode(self.models, images.to(self.device), y).float().cpu()

    def latents(self, n: int, seed: int = 0) -> torch.Tensor:
        """n latents from `seed` (the same on every device)."""
        return seeded_latents(self.kind, n, self.config.latent_dim, seed)

    def labels_for(self, n: int, class_: int | str | None = None, seed: int = 0) -> torch.Tensor | None:
        """Labels for a conditional model: one class repeated, or cycling through all classes."""
        return labels_for(self.config.model, self.model_config.num_classes, self.class_names, n,
                          class_)

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None,
                 batch_size: int = 256) -> torch.Tensor:
        """Images in [-1, 1] (N, C, H, W) on the CPU for latents z."""
        return generate_images(self.image_network, z, labels, self.device, batch_size)

    def sample(self, n: int, seed: int = 0, batch_size: int = 256,
               class_: int | str | None = None) -> torch.Tensor:
        """n images in [-1, 1] from seeded latents."""
        return self.generate(self.latents(n, seed), self.labels_for(n, class_, seed), batch_size)

    def dataset(self, progress: bool = False) -> ImageSet:
        """The training data as this run configured it."""
        cfg = self.config
        return load_dataset(cfg.data, cfg.resolution, self.model_config.channels, cfg.fit,
                            seed=cfg.seed, limit=cfg.data_limit, progress=progress)


@torch.no_grad()
def generate_images(network: nn.Module, z: torch.Tensor, labels: torch.Tensor | None,
                    device: torch.device, batch_size: int = 256) -> torch.Tensor:
    """Images in [-1, 1] (N, C, H, W) on the CPU from an image network on `device`, in batches."""
    out = []
    for i in range(0, len(z), batch_size):
        y = labels[i:i + batch_size].to(device) if labels is not None else None
        out.append(network(z[i:i + batch_size].to(device), y).float().cpu())
    return torch.cat(out) if out else torch.empty(0)


def seeded_latents(kind: Kind, n: int, latent_dim: int, seed: int = 0) -> torch.Tensor:
    """n latents of a kind's prior drawn from `seed` on the CPU (the same on every device)."""
    g = torch.Generator().manual_seed(seed)
    return kind.latents(n, latent_dim, g)


def labels_for(model: str, num_classes: int, class_names: list[str], n: int,
               class_: int | str | None = None) -> torch.Tensor | None:
    """n labels for a conditional model: `class_` (name or index) repeated, or cycling through
    all classes; None for an unconditional one."""
    if not num_classes:
        if class_ is not None:
            raise UserError(f"model {model!r} is not conditional; drop --class")
        return None
    k = num_classes
    if class_ is None:
        return torch.arange(n) % k
    if isinstance(class_, str) and not class_.isdigit():
        if class_ not in class_names:
            raise UserError(f"unknown class {class_!r}; choose one of: {', '.join(class_names)}")
        class_ = class_names.index(class_)
    class_ = int(class_)
    if not 0 <= class_ < k:
        raise UserError(f"class index {class_} is out of range 0..{k - 1}")
    return torch.full((n,), class_, dtype=torch.long)


def load_run(path: str | Path, device: str | torch.device = "cpu", checkpoint: str = "last") -> Run:
    """Load a run folder's models from checkpoints/CHECKPOINT.pt, ready to sample (eval mode)."""
    from latentstudio.train.config import TrainConfig

    path = Path(path)
    if not path.exists():
        raise UserError(f"run folder {path} does not exist")
    meta = read_run_config(path)
    try:
        config = TrainConfig.from_dict(meta["config"])
        model_config = ModelConfig(**meta["model_config"])
    except (TypeError, KeyError):
        raise UserError(f"{path / 'config.json'} is damaged or from an incompatible version") from None
    family = get_family(config.model)
    device = resolve_device(device)
    payload = load_checkpoint(path / "checkpoints" / f"{checkpoint}.pt", map_location=device)
    models = nn.ModuleDict(family.build(model_config))
    ema = f"{family.hooks.image_module}_ema"
    if ema in payload["models"]:
        models[ema] = family.build(model_config)[family.hooks.image_module]
    load_models(models, payload, str(path))
    models.to(device).eval().requires_grad_(False)
    return Run(path, config, family, model_config, models, meta, device, payload.get("progress", {}))

