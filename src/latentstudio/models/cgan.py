"""Class-conditional DCGAN (Mirza & Osindero 2014; projection discriminator, Miyato & Koyama 2018).

The networks are DCGAN's own, built with `num_classes` set: the generator concatenates a label
embedding to z; the discriminator reads one-hot label maps beside the image channels and adds a
projection term <embed(y), pooled features>. The trainer
fills `num_classes` from the data's labels, samples `--class NAME|INDEX`, and previews one row
per class.
"""

from __future__ import annotations

from torch import nn

from latentstudio.errors import UserError
from latentstudio.models import Family, ModelConfig, register_family
from latentstudio.models.dcgan import Discriminator, Generator


def build_cgan(cfg: ModelConfig) -> dict[str, nn.Module]:
    if cfg.num_classes < 2:
        raise UserError("cgan needs labelled data with at least 2 classes (shapes, mnist, "
                        "fashion-mnist, cifar10, or a folder with class subfolders)")
    return {"generator": Generator(cfg), "discriminator": Discriminator(cfg)}


register_family(Family(
    name="cgan",
    kind="gan",
    build=build_cgan,
    description="Class-conditional DCGAN: label embedding in G; label maps and projection in D; "
                "BCE loss, Adam(2e-4, 0.5); sample with --class NAME|INDEX",
    defaults={"lr": 2e-4, "betas": (0.5, 0.999), "optimizer": "adam", "loss": "bce",
              "n_critic": 1, "width": 32, "epochs": 10},
    conditional=True,
))
