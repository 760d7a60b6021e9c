"""The two kinds of model latentstudio trains: adversarial (gan) and variational autoencoder (vae).

A new kind registers a `Kind` like these from its own module, with its training step beside it.
"""

from __future__ import annotations

import torch
from torch import nn

from latentstudio.models import Kind, register_kind


def _vae_encode(models: dict[str, nn.Module], x: torch.Tensor,
                labels: torch.Tensor | None) -> torch.Tensor:
    mu, _ = models["encoder"](x, labels)  # the posterior mean
    return mu


GAN = register_kind(Kind(
    name="gan",
    image_module="generator",
    step="latentstudio.train.steps:AdversarialStep",
    description="a generator and a discriminator (critic) trained against each other",
    shown_settings=("epochs", "width", "lr", "optimizer", "betas", "loss", "n_critic", "clip",
                    "gp_weight", "diffaug_policy"),
    step_settings=("lr_d", "loss", "n_critic", "clip", "gp_weight", "spectral_norm",
                   "label_smoothing", "label_noise", "instance_noise", "r1", "augment",
                   "diffaug_policy", "ada_target", "ada_speed"),
))

VAE = register_kind(Kind(
    name="vae",
    image_module="decoder",
    step="latentstudio.train.steps:VAEStep",
    description="an encoder and a decoder trained on the evidence lower bound",
    encode=_vae_encode,
    preview_rows=("real", "recon", "sample"),
    shown_settings=("epochs", "width", "lr", "optimizer", "betas", "recon", "beta"),
    step_settings=("recon", "beta", "kl_warmup"),
))
