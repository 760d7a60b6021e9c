"""Every family of the zoo: builds at 28 and 32 px, trains a few steps on the CPU, writes
previews, and resumes after a Ctrl-C to exactly the weights of an uninterrupted run."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from latentstudio.errors import UserError
from latentstudio.models import FAMILIES, ModelConfig, all_families, get_family
from latentstudio.runs import load_run
from latentstudio.runs.checkpoint import load_checkpoint
from latentstudio.train.callbacks import Callback
from latentstudio.train.config import TrainConfig, resolve_config
from latentstudio.train.loop import Trainer, train

FAMILY_NAMES = [f.name for f in all_families()]  # every registered family, found by discovery
RESOLUTIONS = [28, 32]


def cases(sizes: list[int]) -> list[tuple[str, int]]:
    """(family, size) for every family and each of `sizes` it makes (else its smallest size)."""
    out = []
    for name in FAMILY_NAMES:
        made = get_family(name).resolutions
        fits = [s for s in sizes if made is None or s in made]
        out += [(name, s) for s in fits or [min(made)]]
    return out


def tiny_config(model: str, out: Path, resolution: int = 32, **overrides: Any) -> TrainConfig:
    """A few-second training: 48 images, batches of 16 (3 steps an epoch), width 8."""
    settings: dict[str, Any] = dict(
        model=model, data="shapes:48", resolution=resolution, width=8, latent_dim=8,
        batch_size=16, steps=5, preview_count=8, preview_every=100, log_every=1,
        out=str(out), device="cpu", precision="fp32", seed=0,
    )
    settings.update(overrides)
    return TrainConfig(**settings)


class InterruptAt(Callback):
    """Presses Ctrl-C (a real SIGINT) once, right after step `step` is logged."""

    def __init__(self, step: int) -> None:
        self.step = step
        self.sent = False

    def on_log(self, trainer, record: dict[str, Any]) -> None:
        if record.get("step") == self.step and not self.sent:
            self.sent = True
            signal.raise_signal(signal.SIGINT)


def _build(name: str, resolution: int, channels: int = 3) -> dict[str, torch.nn.Module]:
    family = get_family(name)
    cfg = ModelConfig(resolution=resolution, channels=channels, latent_dim=8, width=8,
                      num_classes=4 if family.conditional else 0,
                      batch_norm=family.defaults.get("batch_norm", True))
    torch.manual_seed(0)
    return family.build(cfg)


def test_every_family_module_registers_itself() -> None:
    shipped = {"dcgan", "gan-dense", "cgan", "wgan", "wgan-gp", "vae-conv", "vae-dense", "cppn-gan"}
    assert shipped <= set(FAMILY_NAMES) and set(FAMILY_NAMES) <= set(FAMILIES)
    assert get_family("cgan").conditional
    assert {get_family(n).kind for n in ("vae-conv", "vae-dense")} == {"vae"}
    with pytest.raises(UserError, match="vae-conv"):
        get_family("vae")


@pytest.mark.parametrize("name, resolution", cases(RESOLUTIONS + [64]))
def test_networks_have_the_documented_shapes(name: str, resolution: int) -> None:
    family = get_family(name)
    nets = _build(name, resolution, channels=1 if resolution == 28 else 3)
    c = 1 if resolution == 28 else 3
    z = torch.randn(5, 8)
    labels = torch.tensor([0, 1, 2, 3, 0]) if family.conditional else None
    if family.kind == "gan":
        images = nets["generator"](z, labels)
        assert images.shape == (5, c, resolution, resolution)
        assert images.abs().max() <= 1
        assert nets["discriminator"](images, labels).shape == (5,)
    else:
        mu, logvar = nets["encoder"](torch.rand(5, c, resolution, resolution) * 2 - 1, None)
        assert mu.shape == logvar.shape == (5, 8)
        dec = nets["decoder"]
        images = dec(z, None)
        assert images.shape == (5, c, resolution, resolution)
        torch.testing.assert_close(images, torch.tanh(dec.logits(z, None) / 2))


def test_conv_vae_follows_the_classic_layout() -> None:
    # 28 px, width 64: convs 32 and 64 -> 2 x latent; dense -> 7x7x32 -> transposed convs.
    family = get_family("vae-conv")
    nets = family.build(ModelConfig(resolution=28, channels=1, latent_dim=2, width=64))
    convs = [m for m in nets["encoder"].modules() if isinstance(m, torch.nn.Conv2d)]
    assert [m.out_channels for m in convs] == [32, 64]
    assert nets["encoder"].head.out_features == 4
    assert nets["decoder"].dense[0].out_features == 7 * 7 * 32
    nets32 = family.build(ModelConfig(resolution=32, channels=3, latent_dim=2, width=64))
    assert nets32["decoder"].dense[0].out_features == 8 * 8 * 32


def test_cgan_networks_depend_on_the_label() -> None:
    nets = _build("cgan", 32)
    g, d = nets["generator"].eval(), nets["discriminator"].eval()
    z = torch.randn(1, 8).repeat(4, 1)
    out = g(z, torch.arange(4))
    assert not torch.allclose(out[0], out[1])
    scores = d(out[:1].repeat(4, 1, 1, 1), torch.arange(4))  # one image, four labels
    assert len(set(scores.tolist())) == 4
    with pytest.raises(ValueError, match="labels"):
        g(z, None)
    with pytest.raises(ValueError, match="labels"):
        d(out, None)


@pytest.mark.parametrize("name", ["wgan", "wgan-gp"])
def test_wgan_critic_is_linear_at_the_output(name: str) -> None:
    """No sigmoid: the score is unbounded and scales with the last layer's weight."""
    critic = _build(name, 32)["discriminator"].eval()
    x = torch.randn(6, 3, 32, 32)
    before = critic(x)
    with torch.no_grad():
        critic.head.weight.mul_(1000)
    after = critic(x)
    torch.testing.assert_close(after, before * 1000, rtol=1e-4, atol=1e-4)
    assert after.abs().max() > 1


def test_wgan_family_defaults_follow_the_papers() -> None:
    wgan = resolve_config(TrainConfig(model="wgan"), get_family("wgan"))
    assert (wgan.loss, wgan.optimizer, wgan.lr, wgan.clip, wgan.n_critic) == \
        ("wasserstein", "rmsprop", 5e-5, 0.01, 5)
    gp = resolve_config(TrainConfig(model="wgan-gp"), get_family("wgan-gp"))
    assert (gp.loss, gp.optimizer, gp.lr, gp.betas, gp.gp_weight, gp.n_critic, gp.clip) == \
        ("wasserstein", "adam", 1e-4, (0.0, 0.9), 10.0, 5, None)
    critic = _build("wgan-gp", 32)["discriminator"]
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in critic.modules())


def _assert_same_weights(a: dict, b: dict) -> None:
    assert a["progress"]["step"] == b["progress"]["step"]
    assert a["models"].keys() == b["models"].keys()
    for name in a["models"]:
        sa, sb = a["models"][name], b["models"][name]
        assert sa.keys() == sb.keys()
        for key in sa:
            assert torch.equal(sa[key], sb[key]), f"{name}.{key} differs after resume"
    if "ema" in a["step_state"]:
        for key, value in a["step_state"]["ema"].items():
            assert torch.equal(value, b["step_state"]["ema"][key]), f"EMA {key} differs"


@pytest.mark.parametrize("name, resolution", cases(RESOLUTIONS))
def test_trains_writes_previews_and_resumes_exactly(name: str, resolution: int, tmp_path) -> None:
    full = train(tiny_config(name, tmp_path / "full", resolution), progress=False)
    part = train(tiny_config(name, tmp_path / "part", resolution), callbacks=[InterruptAt(2)],
                 progress=False)
    assert load_checkpoint(part / "checkpoints" / "last.pt")["progress"]["step"] == 2
    train(resume=part, progress=False)

    a = load_checkpoint(full / "checkpoints" / "last.pt")
    b = load_checkpoint(part / "checkpoints" / "last.pt")
    assert a["progress"]["step"] == 5
    _assert_same_weights(a, b)
    assert all(torch.isfinite(t).all() for m in a["models"].values() for t in m.values()
               if t.is_floating_point())

    # Previews: one before training and one at the end (5 steps = 1 epoch + 2 steps).
    grids = sorted(p.name for p in (full / "samples").glob("epoch_*.png"))
    assert grids == ["epoch_0000.png", "epoch_0002.png"]
    with Image.open(full / "samples" / "epoch_0002.png") as im:
        w, h = im.size
    tile = resolution + 2
    family = get_family(name)
    if family.conditional:
        assert (w, h) == (2 * tile + 2, 4 * tile + 2)  # one row per class, 8 // 4 per row
    elif family.kind == "vae":
        assert (w, h) == (2 * tile + 2, 12 * tile + 2)  # real / reconstruction / prior rows
    else:
        assert (w, h) == (3 * tile + 2, 3 * tile + 2)
    assert (full / "progress.gif").is_file() and (full / "losses.png").is_file()

    run = load_run(full)
    images = run.sample(4, seed=1, class_=1 if family.conditional else None)
    assert images.shape == (4, 3, resolution, resolution)


def test_vae_preview_rows_are_real_reconstruction_and_prior_sample(tmp_path) -> None:
    trainer = Trainer(tiny_config("vae-conv", tmp_path / "run"), tmp_path / "run", progress=False)
    images, per_row = trainer.preview()
    assert per_row == 2 and images.shape[0] == 24
    real = trainer.data.images[:8].float() / 127.5 - 1
    torch.testing.assert_close(images[0:2], real[0:2])  # row 1: real images
    torch.testing.assert_close(images[2:4], trainer.reconstruct(real[0:2]))  # row 2: their recon
    torch.testing.assert_close(images[4:6], trainer.sample(trainer.preview_z[0:2]))  # row 3: prior
    torch.testing.assert_close(images[6:8], real[2:4])


def test_cgan_preview_has_one_row_per_class_with_shared_latents(tmp_path) -> None:
    trainer = Trainer(tiny_config("cgan", tmp_path / "run"), tmp_path / "run", progress=False)
    images, per_row = trainer.preview()
    assert per_row == 2 and images.shape[0] == 8
    z = trainer.preview_z[:2]
    for c in range(4):
        expected = trainer.sample(z, torch.full((2,), c))
        torch.testing.assert_close(images[2 * c:2 * c + 2], expected)


def test_conditional_family_needs_labels(tmp_path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(4):
        Image.new("RGB", (32, 32), (i * 60, 0, 0)).save(folder / f"{i}.png")
    with pytest.raises(UserError, match="class labels"):
        Trainer(tiny_config("cgan", tmp_path / "run", data=f"folder:{folder}"), tmp_path / "run",
                progress=False)


def test_vae_rejects_labels_in_its_config() -> None:
    with pytest.raises(UserError, match="unconditional"):
        get_family("vae-conv").build(ModelConfig(num_classes=4))
