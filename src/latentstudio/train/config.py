"""TrainConfig: every setting of a training run, checked on creation and stored as config.json."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from latentstudio.errors import UserError

Precision = Literal["auto", "bf16", "fp16", "fp32"]


@dataclass
class TrainConfig:
    """Settings for `latentstudio train`. Fields left as None take the model family's default."""

    model: str = "dcgan"
    data: str = "shapes"
    resolution: int = 32
    channels: int | None = None  # None: the data source's own (1 for MNIST, 3 otherwise)
    fit: Literal["crop", "pad"] = "crop"
    data_limit: int | None = None
    epochs: int | None = None  # None: the model family's default (20 unless it says otherwise)
    steps: int | None = None  # stop after this many optimiser steps (overrides epochs when set)
    batch_size: int = 64
    lr: float | None = None
    lr_d: float | None = None  # discriminator/critic learning rate; None: same as lr
    betas: tuple[float, float] | None = None
    optimizer: Literal["adam", "rmsprop"] | None = None
    latent_dim: int = 100
    width: int | None = None  # feature maps in the first/last conv stage; None: the family's (64)
    # Adversarial settings (used by GAN families).
    loss: Literal["bce", "hinge", "wasserstein"] | None = None
    n_critic: int | None = None
    clip: float | None = None
    gp_weight: float | None = None
    spectral_norm: bool = False
    label_smoothing: float = 0.0
    label_noise: float = 0.0
    instance_noise: float = 0.0
    r1: float = 0.0  # weight gamma of the R1 penalty on real images (Mescheder et al. 2018)
    ema: float | None = None
    augment: Literal["none", "diffaug"] = "none"
    # VAE settings.
    recon: Literal["bce", "mse"] = "bce"
    beta: float = 1.0
    kl_warmup: int = 0  # steps over which the KL weight ramps from 0 to beta
    # Run bookkeeping.
    preview_every: int = 1  # epochs
    preview_count: int = 16
    checkpoint_every: int = 1  # epochs
    log_every: int = 10  # steps
    seed: int = 0
    out: str | None = None
    device: str = "auto"
    precision: Precision = "auto"
    compile: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.betas, list):
            self.betas = tuple(self.betas)  # from JSON
        positive = {
            "batch_size": self.batch_size, "latent_dim": self.latent_dim,
            "preview_every": self.preview_every,
            "preview_count": self.preview_count, "checkpoint_every": self.checkpoint_every,
            "log_every": self.log_every,
        }
        optional_positive = {
            "epochs": self.epochs, "width": self.width, "steps": self.steps, "lr": self.lr,
            "lr_d": self.lr_d, "n_critic": self.n_critic, "clip": self.clip,
            "data_limit": self.data_limit,
        }
        for name, value in {**positive, **optional_positive}.items():
            if value is not None and value <= 0:
                flag = "--" + name.replace("_", "-")
                raise UserError(f"{flag} must be positive, got {value}")
        if self.channels not in (None, 1, 3):
            raise UserError(f"--channels must be 1 or 3, got {self.channels}")
        for name in ("label_smoothing", "label_noise"):
            value = getattr(self, name)
            if not 0 <= value < 0.5:
                raise UserError(f"--{name.replace('_', '-')} must be in [0, 0.5), got {value}")
        if self.instance_noise < 0 or self.r1 < 0 or self.beta < 0 or self.kl_warmup < 0:
            raise UserError("--instance-noise, --r1, --beta and --kl-warmup must not be negative")
        if self.ema is not None and not 0 < self.ema < 1:
            raise UserError(f"--ema must be in (0, 1), e.g. 0.999; got {self.ema}")
        if self.gp_weight is not None and self.gp_weight < 0:
            raise UserError(f"--gp-weight must not be negative, got {self.gp_weight}")
        choices = {
            "precision": ("auto", "bf16", "fp16", "fp32"), "fit": ("crop", "pad"),
            "augment": ("none", "diffaug"), "recon": ("bce", "mse"),
            "loss": (None, "bce", "hinge", "wasserstein"), "optimizer": (None, "adam", "rmsprop"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                shown = ", ".join(a for a in allowed if a)
                raise UserError(f"--{name} must be one of {shown}, got {getattr(self, name)!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able settings."""
        d = dataclasses.asdict(self)
        if d["betas"] is not None:
            d["betas"] = list(d["betas"])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Rebuild from `to_dict()` output; unknown keys are an error naming them."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise UserError(f"unknown setting(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
        return cls(**d)


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Settings from a TOML or JSON file (keys as in TrainConfig, dashes allowed)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file {path} does not exist")
    try:
        if path.suffix == ".json":
            raw = json.loads(path.read_text())
        else:
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib
            raw = tomllib.loads(path.read_text())
    except (ValueError, OSError) as e:
        raise UserError(f"cannot read config file {path}: {e}") from None
    if not isinstance(raw, dict):
        raise UserError(f"config file {path} must hold a table of settings")
    raw = raw.get("train", raw)
    return {k.replace("-", "_"): v for k, v in raw.items()}
