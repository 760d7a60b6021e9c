"""TrainConfig: every setting of a training run, checked on creation and stored as config.json;
`resolve_config` fills the settings left open with the model family's defaults."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from latentstudio.errors import UserError

if TYPE_CHECKING:
    from latentstudio.models import Family, ModelConfig

Precision = Literal["auto", "bf16", "fp16", "fp32"]


@dataclass
class TrainConfig:
    """Settings for `latentstudio train`. Fields left as None take the model family's default."""

    model: str = "dcgan"
    data: str = "shapes"
    resolution: int | str = 32  # side in px, or "WIDTHxHEIGHT" for non-square images
    channels: int | None = None  # None: the data source's own (1 for MNIST, 3 otherwise); 2/4: + alpha
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
    ema_rampup: float = 0.05  # the EMA's half-life is at most this x the images seen (0: off)
    augment: Literal["none", "diffaug", "ada"] = "none"
    # --augment diffaug: the transforms, e.g. "color,translation"; None: the family's, else all three.
    diffaug_policy: str | None = None
    ada_target: float = 0.6  # --augment ada: the E[sign(D(real))] to hold (Karras et al. 2020)
    ada_speed: float = 20.0  # --augment ada: thousands of images for p to move from 0 to 1
    mirror: bool = False  # random horizontal flips of the training images
    # VAE settings.
    recon: Literal["bce", "mse"] = "bce"
    beta: float = 1.0
    kl_warmup: int = 0  # steps over which the KL weight ramps from 0 to beta
    # Run bookkeeping.
    # Cadences (see parse_every): "500steps", "90s", "5m", "2epochs"; a bare number counts
    # epochs, as in earlier versions and their config.json files.
    preview_every: int | str = "1m"
    preview_count: int = 16
    checkpoint_every: int | str = "5m"
    log_every: int = 10  # steps
    seed: int = 0
    out: str | None = None
    device: str = "auto"
    precision: Precision = "auto"
    compile: bool = False
    init_from: str | None = None  # RUN or RUN:CHECKPOINT whose weights a new run starts from
    # Train at this smaller side first (a run of its own, OUT-SIDEpx, of grow_steps steps with
    # grow_batch_size), then grow it to --resolution in OUT (train/grow.py); 0 or None: no.
    grow_from: int | None = None
    grow_steps: int = 3000
    grow_batch_size: int | None = None  # None: --batch-size
    # The family's own hyper-parameters (its `settings` dataclass), filled by resolve_config.
    family_settings: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.betas, list):
            self.betas = tuple(self.betas)  # from JSON
        if isinstance(self.resolution, str):  # "64" -> 64, "64X128" -> "64x128"
            from latentstudio.data.base import parse_size, size_text

            text = size_text(*parse_size(self.resolution))
            self.resolution = int(text) if text.isdigit() else text
        self._check_types()
        positive = {
            "batch_size": self.batch_size, "latent_dim": self.latent_dim,
            "preview_count": self.preview_count,
            "log_every": self.log_every, "grow_steps": self.grow_steps,
        }
        optional_positive = {
            "epochs": self.epochs, "width": self.width, "steps": self.steps, "lr": self.lr,
            "lr_d": self.lr_d, "n_critic": self.n_critic, "clip": self.clip,
            "data_limit": self.data_limit, "grow_batch_size": self.grow_batch_size,
        }
        for name, value in {**positive, **optional_positive}.items():
            if value is not None and value <= 0:
                flag = "--" + name.replace("_", "-")
                raise UserError(f"{flag} must be positive, got {value}")
        for name in ("preview_every", "checkpoint_every"):
            setattr(self, name, normalise_every(getattr(self, name), "--" + name.replace("_", "-")))
        if self.channels not in (None, 1, 2, 3, 4):
            raise UserError(f"--channels must be 1 (grey), 3 (colour), 2 or 4 (grey or colour "
                            f"with transparency), got {self.channels}")
        for name in ("label_smoothing", "label_noise"):
            value = getattr(self, name)
            if not 0 <= value < 0.5:
                raise UserError(f"--{name.replace('_', '-')} must be in [0, 0.5), got {value}")
        if self.grow_from is not None and self.grow_from < 0:
            raise UserError(f"--grow-from must be a side in px (0: no growing), got {self.grow_from}")
        if self.instance_noise < 0 or self.r1 < 0 or self.beta < 0 or self.kl_warmup < 0:
            raise UserError("--instance-noise, --r1, --beta and --kl-warmup must not be negative")
        if not 0 < self.ada_target < 1 or self.ada_speed <= 0:
            raise UserError(f"--ada-target must be in (0, 1) and --ada-speed positive, got "
                            f"{self.ada_target} and {self.ada_speed}")
        if self.diffaug_policy is not None:
            from latentstudio.train.augment import parse_policy

            parse_policy(self.diffaug_policy)
        if not 0 <= self.ema_rampup <= 1:
            raise UserError(f"--ema-rampup must be in [0, 1], e.g. 0.05; got {self.ema_rampup}")
        if self.ema is not None and not 0 < self.ema < 1:
            raise UserError(f"--ema must be in (0, 1), e.g. 0.999; got {self.ema}")
        if self.gp_weight is not None and self.gp_weight < 0:
            raise UserError(f"--gp-weight must not be negative, got {self.gp_weight}")
        choices = {
            "precision": ("auto", "bf16", "fp16", "fp32"), "fit": ("crop", "pad"),
            "augment": ("none", "diffaug", "ada"), "recon": ("bce", "mse"),
            "loss": (None, "bce", "hinge", "wasserstein"), "optimizer": (None, "adam", "rmsprop"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                shown = ", ".join(a for a in allowed if a)
                raise UserError(f"--{name} must be one of {shown}, got {getattr(self, name)!r}")

    def _check_types(self) -> None:
        """Each value has its field's type (config files and config.json are not checked by argparse)."""
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value, hint = getattr(self, f.name), hints[f.name]
            allowed = [a for a in typing.get_args(hint)] if typing.get_origin(hint) in (
                typing.Union, types.UnionType) else [hint]
            if value is None and type(None) in allowed:
                continue
            base = [typing.get_origin(a) or a for a in allowed if a is not type(None)]
            ok = any(
                (b is float and isinstance(value, (int, float)) and not isinstance(value, bool))
                or (b is int and isinstance(value, int) and not isinstance(value, bool))
                or (b is Literal) or (b in (str, bool, dict, tuple) and isinstance(value, b))
                for b in base)
            if not ok:
                raise UserError(f"setting {f.name} must be {' or '.join(_type_name(b) for b in base)}, "
                                f"got {value!r}")
            if isinstance(value, float) and not math.isfinite(value):
                raise UserError(f"--{f.name.replace('_', '-')} must be a finite number, got {value}")
        if self.betas is not None and (len(self.betas) != 2 or not all(
                isinstance(b, (int, float)) and 0 <= b < 1 for b in self.betas)):
            raise UserError(f"--betas must be two numbers in [0, 1), e.g. 0.5,0.999; got {self.betas}")
        if self.seed < 0:
            raise UserError(f"--seed must be 0 or more, got {self.seed}")

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the images in pixels."""
        from latentstudio.data.base import parse_size

        return parse_size(self.resolution)

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
        d = {k: v for k, v in d.items() if k not in _RETIRED}
        if "augment" in d and "diffaug_policy" not in d:  # saved before the policy was a setting
            d["diffaug_policy"] = PAPER_DIFFAUG
        unknown = sorted(set(d) - known)
        if unknown:
            raise UserError(f"unknown setting(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
        return cls(**d)


_RETIRED = {"extra"}  # settings of older versions that are read and ignored

PAPER_DIFFAUG = "color,translation,cutout"  # DiffAugment's policy for few images
# Used where neither the family nor the user chose.
FALLBACK_DEFAULTS: dict[str, Any] = {"lr": 2e-4, "betas": (0.5, 0.999), "optimizer": "adam",
                                     "loss": "bce", "n_critic": 1, "epochs": 20, "width": 64,
                                     "diffaug_policy": PAPER_DIFFAUG}


def _type_name(t: Any) -> str:
    return {int: "a whole number", float: "a number", str: "text", bool: "true or false",
            dict: "a table", tuple: "a list"}.get(t, getattr(t, "__name__", str(t)))


def as_flag(name: str, value: Any) -> str:
    """A setting as its command-line flag: `--lr 0.001`, `--betas 0.5,0.999`, `--compile`,
    `--no-hold-grown`."""
    flag = "--" + name.replace("_", "-")
    if isinstance(value, bool):
        return flag if value else f"--no-{flag[2:]}"
    if isinstance(value, (tuple, list)):
        return f"{flag} " + ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return f"{flag} {value:g}" if isinstance(value, float) else f"{flag} {value}"


def resolve_config(cfg: TrainConfig, family: Family) -> TrainConfig:
    """Fill the settings left as None with the family's defaults, and check its own settings."""
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        if getattr(cfg, f.name) is None and (f.name in family.defaults or f.name in FALLBACK_DEFAULTS):
            changes[f.name] = family.defaults.get(f.name, FALLBACK_DEFAULTS.get(f.name))
    own = family.settings_from(cfg.family_settings)
    changes["family_settings"] = dataclasses.asdict(own) if own is not None else {}
    check_size(cfg, family)
    return dataclasses.replace(cfg, **changes)


def check_size(cfg: TrainConfig, family: Family) -> None:
    """A UserError unless the family makes images of the config's size (square: at build)."""
    width, height = cfg.size
    if width == height:
        return
    if family.check_size is None:
        from latentstudio.models import all_families

        able = ", ".join(f.name for f in all_families() if f.check_size is not None)
        raise UserError(f"--resolution {cfg.resolution}: {family.name} makes square images only; "
                        f"non-square sizes work with --model {able}")
    family.check_size(width, height)


def model_config_for(cfg: TrainConfig, family: Family, channels: int, num_classes: int) -> ModelConfig:
    """The ModelConfig of a resolved config for data with these channels and classes."""
    from latentstudio.models import ModelConfig

    width, height = cfg.size
    return ModelConfig(
        resolution=width, channels=channels, latent_dim=cfg.latent_dim,
        width=cfg.width, num_classes=num_classes if family.conditional else 0,
        spectral_norm=cfg.spectral_norm, batch_norm=family.defaults.get("batch_norm", True),
        family_settings=dict(cfg.family_settings), height=height if height != width else None,
    )


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


# --init-from: the settings a fine-tuned run takes from its parent unless given, those that shape
# the networks and how they learn; the data, the run's length and its bookkeeping are its own.
INHERITED = ("model", "resolution", "channels", "latent_dim", "width", "spectral_norm", "loss",
             "n_critic", "clip", "gp_weight", "r1", "ema", "ema_rampup", "lr", "lr_d", "betas",
             "optimizer", "recon", "beta", "batch_size")
# What must be equal for the parent's weights to fit, as said in an error.
_SHAPE = {"channels": "{} channels", "latent_dim": "latent size {}", "width": "width {}",
          "num_classes": "{} classes", "spectral_norm": "spectral norm {}",
          "batch_norm": "batch norm {}", "family_settings": "settings {}"}


def parse_init_from(text: str) -> tuple[Path, str]:
    """(run folder, checkpoint name) of `--init-from RUN` or `RUN:CHECKPOINT` (last by default)."""
    path = Path(text).expanduser()
    if not path.exists() and ":" in text:
        head, tail = text.rsplit(":", 1)
        if tail and tail.replace("_", "").replace("-", "").isalnum():
            return Path(head).expanduser(), tail
    return path, "last"


def parent_settings(meta: dict[str, Any]) -> dict[str, Any]:
    """The INHERITED settings of a parent run's config.json, and its family's own settings,
    flat (as `latentstudio train` flags are named); the networks' shapes from model_config."""
    config, shapes = dict(meta.get("config", {})), meta.get("model_config") or {}
    for name in ("resolution", "channels", "latent_dim", "width", "spectral_norm"):
        if shapes.get(name) is not None:
            config[name] = shapes[name]
    settings = {k: config[k] for k in INHERITED if config.get(k) is not None}
    if isinstance(settings.get("betas"), list):
        settings["betas"] = tuple(settings["betas"])
    return {**settings, **(config.get("family_settings") or {})}


def grown_size(parent: dict[str, Any], model: str, family: Family, size: tuple[int, int]) -> int | None:
    """The shorter side of `parent` (a run's config.json) when a run of `model` at `size`
    (width, height) started from it grows it: the same family, able to grow, a smaller size of
    the same shape; else None."""
    theirs = parent.get("model_config") or {}
    parent_model = parent.get("model") or parent.get("config", {}).get("model")
    width = theirs.get("resolution")
    if family.grow is None or parent_model != model or not width:
        return None
    height = theirs.get("height") or width
    if min(width, height) >= min(size) or width * size[1] != height * size[0]:
        return None
    return min(width, height)


def parent_mismatch(source: str, parent: dict[str, Any], model: str,
                    shapes: dict[str, Any], grown: bool = False) -> str | None:
    """Why a run of `model` with networks `shapes` (a ModelConfig as a dict) cannot start from
    the weights of the run `parent` (its config.json), or None when they fit. `grown`: it grows
    the parent (see grown_size), so the size and the family's settings may differ: the family
    says which tensors fit."""
    from latentstudio.data.base import size_text
    from latentstudio.models import get_family

    theirs = parent.get("model_config") or {}
    parent_model = parent.get("model") or parent.get("config", {}).get("model")
    differ = [k for k in _SHAPE if k in theirs and theirs[k] != shapes.get(k)
              and not (grown and k == "family_settings")]
    def size(values: dict[str, Any]) -> tuple[Any, Any]:
        return values.get("resolution"), values.get("height") or values.get("resolution")

    if parent_model == model and (grown or size(theirs) == size(shapes)) and not differ:
        return None

    def describe(name: Any, values: dict[str, Any]) -> str:
        w, h = size(values)
        extra = [_SHAPE[k].format(values.get(k)) for k in differ]
        return (f"a {name} at {size_text(w, h)} px"
                + (f" with {', '.join(extra)}" if extra else ""))

    hint = "drop the flags that differ (they default to the parent's)"
    (w, h), (w2, h2) = size(theirs), size(shapes)
    if parent_model == model and not differ and w and h and min(w2, h2) > min(w, h) \
            and w * h2 != h * w2 and get_family(model).grow is not None:
        scale = min(w2, h2) / min(w, h)
        hint = (f"a run grows to a larger size of the same shape, e.g. --resolution "
                f"{round(w * scale)}x{round(h * scale)}")
    return (f"cannot start from {source}: it is {describe(parent_model, theirs)}, this run is "
            f"{describe(model, shapes)}; {hint}")


# ----- cadences of previews and checkpoints
EVERY_UNITS = {"step": "steps", "steps": "steps", "epoch": "epochs", "epochs": "epochs",
               "s": "seconds", "sec": "seconds", "m": "seconds", "min": "seconds", "h": "seconds"}
_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}
_EVERY = re.compile(r"^(\d+(?:\.\d+)?)\s*([a-z]*)$")


@dataclass(frozen=True)
class Every:
    """A cadence: every `amount` steps, seconds of training time, or epochs."""

    amount: float
    unit: Literal["steps", "seconds", "epochs"]

    def __str__(self) -> str:
        if self.unit == "seconds":
            return f"{self.amount:g} s"
        return f"{self.amount:g} {self.unit}"


def _every_error(flag: str, value: Any) -> UserError:
    return UserError(f"{flag} must be a number of steps, seconds or epochs, e.g. 500steps, 90s, 5m "
                     f"or 2epochs (a bare number counts epochs); got {value!r}")


def parse_every(value: int | str, flag: str = "--preview-every") -> Every:
    """The cadence a --preview-every/--checkpoint-every value means: `500steps`, `90s`, `5m`,
    `1h`, `2epochs`, or a bare number of epochs (what these settings always meant)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise _every_error(flag, value)
    m = _EVERY.match(str(value).strip().lower())
    if not m or m.group(2) not in ("", *EVERY_UNITS):
        raise _every_error(flag, value)
    amount, suffix = float(m.group(1)), m.group(2) or "epochs"
    unit = EVERY_UNITS[suffix]
    if unit != "seconds" and not amount.is_integer():
        raise UserError(f"{flag} counts whole {unit}, got {value!r}")
    if amount <= 0:
        raise UserError(f"{flag} must be positive, got {value!r}")
    return Every(amount * _SECONDS.get(suffix, 1), unit)


def normalise_every(value: int | str, flag: str) -> int | str:
    """`value` checked; a bare number given as text (the command line) as an int of epochs,
    anything else as the trimmed text."""
    parse_every(value, flag)
    if isinstance(value, str):
        value = value.strip().lower()
        return int(value) if value.isdigit() else value
    return value
