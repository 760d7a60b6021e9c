"""Projection: find the latent whose image best reproduces a given picture.

VAEs start from the encoder's mean and refine it by gradient descent on the pixel error.
GANs optimise z from several random restarts at once (one batch) on pixel error plus a
discriminator-feature error (the discriminator's activations as a learned perceptual distance,
as in Larsen et al. 2016), with a soft pull of |z| towards the typical Gaussian radius
sqrt(D). Conditional models try every class unless one is given. The best restart by pixel
error wins.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from latentstudio.errors import UserError
from latentstudio.explore.latents import check_output, latent_dim_of, save_latent
from latentstudio.images import from_uint8, make_grid, save_png
from latentstudio.runs import Run, load_run

_ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.SiLU, nn.GELU, nn.ELU)


@dataclass(frozen=True)
class ProjectSettings:
    """How hard projection tries."""

    steps: int = 300
    restarts: int = 8
    lr: float = 0.05
    feature_weight: float = 0.5  # GANs: weight of the discriminator-feature error
    prior_weight: float = 1e-3   # pull of |z|/sqrt(D) towards 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 0 or self.restarts <= 0 or self.lr <= 0:
            raise UserError("--steps must be >= 0, --restarts and --lr positive")
        if self.feature_weight < 0 or self.prior_weight < 0:
            raise UserError("projection loss weights must not be negative")


@dataclass
class Projection:
    """The best latent found, its class, its image and target (both (C, H, W) in [-1, 1])."""

    z: torch.Tensor
    label: int | None
    image: torch.Tensor
    target: torch.Tensor
    mse: float


def load_target(run: Run, path: str | os.PathLike) -> torch.Tensor:
    """An image file as the run sees its data: (C, H, W) in [-1, 1], fitted as --fit says."""
    from latentstudio.data.folder import decode_image

    path = Path(path)
    if not path.is_file():
        raise UserError(f"image {path} does not exist")
    try:
        arr = decode_image(path, run.model_config.resolution, run.model_config.channels, run.config.fit,
                           run.model_config.height)
    except (OSError, ValueError, SyntaxError) as e:
        raise UserError(f"cannot read image {path}: {e}") from None
    return from_uint8(torch.from_numpy(np.array(arr)).permute(2, 0, 1).contiguous())


class _Features:
    """Collects the activations of a network's activation layers during a forward pass."""

    def __init__(self, net: nn.Module) -> None:
        self.outputs: list[torch.Tensor] = []
        self.handles = [m.register_forward_hook(self._hook) for m in net.modules()
                        if isinstance(m, _ACTIVATIONS)]

    def _hook(self, module: nn.Module, inputs: object, output: torch.Tensor) -> None:
        self.outputs.append(output.clone())  # layers may be in-place: keep this layer's value

    def __call__(self, net: nn.Module, x: torch.Tensor, labels: torch.Tensor | None) -> list[torch.Tensor]:
        self.outputs = []
        net(x, labels)
        return self.outputs

    def close(self) -> None:
        for h in self.handles:
            h.remove()


def project(run: Run, target: torch.Tensor, label: int | None = None,
            settings: ProjectSettings | None = None, **overrides: object) -> Projection:
    """Projection of one target image (C, R, R) in [-1, 1]; `overrides` set ProjectSettings fields."""
    return project_batch(run, target[None], None if label is None else [label], settings,
                         **overrides)[0]


def project_batch(run: Run, targets: torch.Tensor, labels: list[int] | None = None,
                  settings: ProjectSettings | None = None, **overrides: object) -> list[Projection]:
    """Project several targets (N, C, R, R) together; conditional models try all classes when
    `labels` is None."""
    s = settings or ProjectSettings()
    if overrides:
        s = ProjectSettings(**{**s.__dict__, **overrides})
    dim = latent_dim_of(run)
    width, height = run.model_config.size
    expected = (run.model_config.channels, height, width)
    if tuple(targets.shape[1:]) != expected:
        raise UserError(f"target images are {tuple(targets.shape[1:])}, the run makes {expected}")
    n = len(targets)
    k = run.model_config.num_classes
    if k and labels is None:
        candidates = torch.arange(k).repeat(n, 1)  # (n, k): every class for every target
    elif k:
        candidates = torch.as_tensor(labels, dtype=torch.long).reshape(n, 1)
    else:
        candidates = None
    per_target = candidates.shape[1] if candidates is not None else 1
    restarts = 1 if run.can_encode else s.restarts  # an encoder gives one good start
    # Flat batch: target i, class j, restart r at index (i * per_target + j) * restarts + r.
    tgt = targets.to(run.device).repeat_interleave(per_target * restarts, dim=0)
    lab = None
    if candidates is not None:
        lab = candidates.reshape(-1).repeat_interleave(restarts).to(run.device)
    g = torch.Generator().manual_seed(s.seed)
    if run.can_encode:
        z0 = run.encode(tgt, lab).to(run.device)
    else:
        z0 = run.kind.latents(len(tgt), dim, g).to(run.device)
    z, pixel = _optimise(run, z0.float(), tgt, lab, s)
    z, pixel = z.reshape(n, -1, dim), pixel.reshape(n, -1)
    best = pixel.argmin(dim=1)
    out = []
    for i in range(n):
        j = int(best[i])
        zi = z[i, j].cpu()
        li = None if lab is None else int(lab.reshape(n, -1)[i, j])
        image = run.generate(zi[None], None if li is None else torch.tensor([li]))[0]
        out.append(Projection(zi, li, image, targets[i].cpu(), float(pixel[i, j])))
    return out


def _optimise(run: Run, z0: torch.Tensor, target: torch.Tensor, labels: torch.Tensor | None,
              s: ProjectSettings) -> tuple[torch.Tensor, torch.Tensor]:
    """Adam on z with a cosine learning-rate decay; returns final z and per-sample pixel MSE."""
    gen = run.image_network
    features = None
    if s.feature_weight > 0 and "discriminator" in run.models:
        features = _Features(run.models["discriminator"])
    z = z0.clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=s.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 0.5 * (1 + math.cos(math.pi * i / max(s.steps, 1))))
    dim = z.shape[1]
    try:
        with torch.enable_grad():
            target_feats = None
            if features is not None:
                with torch.no_grad():
                    target_feats = features(run.models["discriminator"], target, labels)
            for _ in range(s.steps):
                image = gen(z, labels)
                loss = _pixel_error(image, target)
                if target_feats is not None:
                    feats = features(run.models["discriminator"], image, labels)
                    loss = loss + s.feature_weight * _feature_error(feats, target_feats)
                if s.prior_weight:
                    loss = loss + s.prior_weight * (z.norm(dim=1) / math.sqrt(dim) - 1).pow(2)
                opt.zero_grad(set_to_none=True)
                loss.sum().backward()
                opt.step()
                sched.step()
    finally:
        if features is not None:
            features.close()
    with torch.no_grad():
        pixel = _pixel_error(gen(z, labels), target)
    return z.detach(), pixel.cpu()


def _pixel_error(image: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(image.float(), target, reduction="none").flatten(1).mean(1)


def _feature_error(feats: list[torch.Tensor], targets: list[torch.Tensor]) -> torch.Tensor:
    """Per-sample mean squared feature difference, each layer scaled by its target's energy."""
    total = 0.0
    for f, t in zip(feats, targets, strict=True):
        scale = t.float().pow(2).mean().clamp_min(1e-8)
        total = total + (f.float() - t.float()).pow(2).flatten(1).mean(1) / scale
    return total / max(len(feats), 1)


def project_file(run_path: str | os.PathLike, image: str | os.PathLike, out: str | os.PathLike,
                 class_: int | str | None = None, settings: ProjectSettings | None = None,
                 checkpoint: str = "last", device: str = "cpu") -> tuple[Path, Path, Projection]:
    """Project an image file; write the latent (.pt) and a side-by-side PNG (target | result)."""
    out = check_output(out, (".pt",))
    run = load_run(run_path, device=device, checkpoint=checkpoint)
    label = None
    if class_ is not None:
        label = int(run.labels_for(1, class_)[0])
    result = project(run, load_target(run, image), label=label, settings=settings)
    latent = save_latent(out, result.z, result.label, str(run.path))
    side = out.with_suffix(".png")
    save_png(make_grid(torch.stack([result.target, result.image]), nrow=2), side)
    return latent, side, result
