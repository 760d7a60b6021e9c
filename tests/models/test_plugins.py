"""A new family or kind lives in one module: a toy GAN family with its own setting, and a toy
autoencoder kind with its own step, latents and preview rows, are defined in a temporary module
(found through $LATENTSTUDIO_PLUGINS) and go through the whole command line: train, preview,
resume, sample, models."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from PIL import Image

from latentstudio import models
from latentstudio.cli import main
from latentstudio.runs import load_run

PLUGIN = textwrap.dedent('''
    """Toy plugin: one GAN family with a setting of its own, one new kind with its family."""
    from dataclasses import dataclass, field

    import torch
    import torch.nn.functional as F
    from torch import nn

    from latentstudio.errors import UserError
    from latentstudio.models import Family, Kind, ModelConfig, register_family, register_kind
    from latentstudio.train.steps import Step, make_optimizer


    @dataclass(frozen=True)
    class ToySettings:
        toy_hidden: int = field(default=12, metadata={"help": "hidden units of the toy generator"})

        def __post_init__(self):
            if self.toy_hidden < 1:
                raise UserError(f"--toy-hidden must be positive, got {self.toy_hidden}")


    class Generator(nn.Module):
        def __init__(self, cfg: ModelConfig, hidden: int) -> None:
            super().__init__()
            self.shape = (cfg.channels, cfg.resolution, cfg.resolution)
            self.net = nn.Sequential(nn.Linear(cfg.latent_dim, hidden), nn.ReLU(),
                                     nn.Linear(hidden, cfg.channels * cfg.resolution ** 2))

        def forward(self, z, labels=None):
            return torch.tanh(self.net(z)).view(-1, *self.shape)


    class Discriminator(nn.Module):
        def __init__(self, cfg: ModelConfig) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Flatten(), nn.Linear(cfg.channels * cfg.resolution ** 2, 1))

        def forward(self, x, labels=None):
            return self.net(x).flatten()


    def build_toy_gan(cfg: ModelConfig):
        own = ToySettings(**cfg.family_settings)
        return {"generator": Generator(cfg, own.toy_hidden), "discriminator": Discriminator(cfg)}


    register_family(Family("toy-gan", "gan", build_toy_gan, "toy GAN family of the plugin test",
                           {"lr": 1e-3}, settings=ToySettings))


    # A new kind: a plain autoencoder with latents uniform in [-1, 1].
    class Encoder(nn.Module):
        def __init__(self, cfg: ModelConfig) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Flatten(), nn.Linear(cfg.channels * cfg.resolution ** 2,
                                                             cfg.latent_dim), nn.Tanh())

        def forward(self, x, labels=None):
            return self.net(x)


    class AEStep(Step):
        NETWORKS = ("E", "Dec")

        def __init__(self, models, cfg, device, total_steps):
            super().__init__(cfg, device, total_steps)
            self.E, self.Dec = models["encoder"], models["decoder"]
            params = list(self.E.parameters()) + list(self.Dec.parameters())
            self.base_lrs = {"ae": cfg.lr}
            self.optimizers = {"ae": make_optimizer(cfg.optimizer, iter(params), cfg.lr, cfg.betas,
                                                    device)}

        def __call__(self, real, labels, step):
            with self.autocast():
                out = self.Dec(self.E(real, labels), labels)
            loss = F.mse_loss(out.float(), real)
            self._update(loss, self.optimizers["ae"])
            return {"loss": loss.detach()}

        def image_network(self, calibration_images=0):
            return self.Dec


    class UniformKind(Kind):
        def latents(self, n, dim, generator):
            return torch.rand(n, dim, generator=generator) * 2 - 1


    register_kind(UniformKind(name="toy-ae", image_module="decoder", step=f"{__name__}:AEStep",
                              encode=lambda nets, x, labels: nets["encoder"](x, labels),
                              preview_rows=("real", "recon", "sample"),
                              shown_settings=("epochs", "lr")))
    register_family(Family("toy-ae", "toy-ae",
                           lambda cfg: {"encoder": Encoder(cfg), "decoder": Generator(cfg, 16)},
                           "toy autoencoder of the plugin test", {"lr": 1e-3}))
''')

TINY = ["--data", "shapes:32", "--resolution", "16", "--latent-dim", "4", "--batch-size", "8",
        "--preview-count", "4", "--device", "cpu", "--log-every", "2"]


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The toy plugin module importable and named in $LATENTSTUDIO_PLUGINS, unregistered after."""
    (tmp_path / "toy_plugin_for_tests.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("LATENTSTUDIO_PLUGINS", "toy_plugin_for_tests")
    yield
    for name in ("toy-gan", "toy-ae"):
        models.FAMILIES.pop(name, None)
    models.KINDS.pop("toy-ae", None)
    models._imported.discard("toy_plugin_for_tests")
    sys.modules.pop("toy_plugin_for_tests", None)


def _train_resume_sample(run: Path, model: str, extra: list[str]) -> torch.Tensor:
    assert main(["train", "--model", model, "--epochs", "1", "--out", str(run), *TINY, *extra]) == 0
    assert main(["train", "--resume", str(run), "--epochs", "2"]) == 0
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert state["progress"]["epoch"] == 2
    assert main(["sample", str(run), "--n", "4", "--seed", "1", "--size", "native",
                 "--out", str(run / "s.png")]) == 0
    assert Image.open(run / "s.png").size == (2 * 18 + 2, 2 * 18 + 2)
    return load_run(run).sample(4, seed=1)


def test_a_gan_family_with_its_own_setting_is_one_module(plugin, tmp_path: Path, capsys) -> None:
    run = tmp_path / "gan"
    images = _train_resume_sample(run, "toy-gan", ["--toy-hidden", "5"])
    assert images.shape == (4, 3, 16, 16)
    meta = json.loads((run / "config.json").read_text())
    assert meta["config"]["family_settings"] == {"toy_hidden": 5}
    assert load_run(run).models["generator"].net[0].out_features == 5
    assert len(list((run / "samples").glob("step_*.png"))) == 3  # start, end of each training
    capsys.readouterr()
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    assert "toy-gan" in listing and "its own: --toy-hidden 12" in listing
    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["toy-gan"]["settings"] == {"toy_hidden": 12}
    assert main(["train", "--model", "dcgan", "--toy-hidden", "3", "--dry-run"]) == 2
    assert "--toy-hidden is a setting of toy-gan, not of dcgan" in capsys.readouterr().err
    assert main(["train", "--model", "toy-gan", "--toy-hidden", "0", "--dry-run"]) == 2


def test_a_new_kind_brings_its_step_latents_and_preview_rows(plugin, tmp_path: Path) -> None:
    run = tmp_path / "ae"
    _train_resume_sample(run, "toy-ae", [])
    loaded = load_run(run)
    assert loaded.can_encode and loaded.kind.name == "toy-ae"
    z = loaded.latents(1000, seed=0)
    assert z.min() >= -1 and z.max() <= 1 and z.min() < -0.9  # its own prior, not a Gaussian
    # Preview: rows of real images, their reconstructions and samples (2 per row, 2 groups).
    grid = Image.open(sorted((run / "samples").glob("step_*.png"))[-1])
    assert grid.size == (2 * 18 + 2, 6 * 18 + 2)
    x = loaded.dataset().images[:2]
    from latentstudio.images import from_uint8
    recon = loaded.generate(loaded.encode(from_uint8(x)))
    assert recon.shape == (2, 3, 16, 16)
