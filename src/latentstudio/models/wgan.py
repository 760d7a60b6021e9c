"""Wasserstein GANs: weight clipping (Arjovsky et al. 2017) and gradient penalty (Gulrajani et al. 2017).

Both use DCGAN's networks; the discriminator is a critic whose output is a raw, unbounded score
(DCGAN's discriminator already ends without a sigmoid: the BCE loss applies it). What differs is
the objective and how the critic is kept (roughly) 1-Lipschitz, set by the family's defaults:
- wgan: weight clipping to +-0.01, RMSProp(5e-5), 5 critic steps per generator step;
- wgan-gp: gradient penalty with weight 10, Adam(1e-4, betas 0.0, 0.9), 5 critic steps, and no
  batch norm in the critic (the penalty is per sample; batch norm couples the samples).
"""

from __future__ import annotations

from torch import nn

from latentstudio.models import Family, ModelConfig, register_family
from latentstudio.models.dcgan import Discriminator, Generator


def build_wgan(cfg: ModelConfig) -> dict[str, nn.Module]:
    return {"generator": Generator(cfg), "discriminator": Discriminator(cfg)}


register_family(Family(
    name="wgan",
    kind="gan",
    build=build_wgan,
    description="WGAN (Arjovsky et al. 2017): linear critic, weight clipping 0.01, RMSProp(5e-5), "
                "5 critic steps per generator step",
    defaults={"lr": 5e-5, "optimizer": "rmsprop", "loss": "wasserstein", "n_critic": 5,
              "clip": 0.01},
))

register_family(Family(
    name="wgan-gp",
    kind="gan",
    build=build_wgan,
    description="WGAN-GP (Gulrajani et al. 2017): gradient penalty 10, Adam(1e-4, 0.0, 0.9), "
                "5 critic steps, no batch norm in the critic",
    defaults={"lr": 1e-4, "betas": (0.0, 0.9), "optimizer": "adam", "loss": "wasserstein",
              "n_critic": 5, "gp_weight": 10.0, "batch_norm": False},
))
