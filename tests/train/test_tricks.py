"""Training tricks against their definitions: EMA, label smoothing/noise, instance noise,
DiffAugment, weight clipping, gradient penalty, n_critic, KL warm-up, and the divergence guard."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from latentstudio.errors import UserError
from latentstudio.models import ModelConfig, get_family
from latentstudio.runs.checkpoint import load_checkpoint
from latentstudio.train import augment as augment_module
from latentstudio.train import steps as steps_module
from latentstudio.train.augment import cutout, diffaug, translation
from latentstudio.train.config import TrainConfig, resolve_config
from latentstudio.train.ema import EMA
from latentstudio.train.loop import Trainer, train
from latentstudio.train.steps import AdversarialStep, VAEStep

CPU = torch.device("cpu")
pytestmark = pytest.mark.usefixtures("one_thread")


def _step(model: str = "dcgan", total_steps: int = 100, resolution: int = 16, **settings: Any):
    """A step object over tiny networks, with the family's defaults filled in."""
    family = get_family(model)
    cfg = resolve_config(TrainConfig(model=model, width=8, latent_dim=8, precision="fp32",
                                     device="cpu", resolution=resolution, **settings), family)
    torch.manual_seed(0)
    nets = nn.ModuleDict(family.build(ModelConfig(
        resolution=resolution, channels=3, latent_dim=8, width=8,
        batch_norm=family.defaults.get("batch_norm", True))))
    kind = AdversarialStep if family.kind == "gan" else VAEStep
    return kind(nets, cfg, CPU, total_steps), nets


def _batch(n: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, 16, 16, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _tiny(model: str, out: Path, **settings: Any) -> TrainConfig:
    base: dict[str, Any] = dict(model=model, data="shapes:48", resolution=16, width=8, latent_dim=8,
                                batch_size=16, steps=8, preview_count=4, preview_every=100,
                                checkpoint_every=1, log_every=1, out=str(out), device="cpu",
                                precision="fp32")
    base.update(settings)
    return TrainConfig(**base)


# ----- EMA
def test_ema_equals_the_closed_form_after_k_updates() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    p0 = [p.detach().clone() for p in model.parameters()]
    ema, d = EMA(model, 0.9), 0.9
    targets = []
    for _ in range(5):
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.randn_like(p))
        model(torch.randn(6, 3))  # moves the BatchNorm running statistics
        targets.append([p.detach().clone() for p in model.parameters()])
        ema.update(model)
    # shadow_k = d^k p_0 + sum_i (1 - d) d^(k - i) p_i
    k = len(targets)
    for j, s in enumerate(ema.shadow.parameters()):
        expected = d ** k * p0[j] + sum((1 - d) * d ** (k - 1 - i) * targets[i][j] for i in range(k))
        torch.testing.assert_close(s, expected)
    for s, b in zip(ema.shadow.buffers(), model.buffers(), strict=True):
        assert torch.equal(s, b)  # buffers are copied, not averaged
    assert not ema.shadow.training and not any(p.requires_grad for p in ema.shadow.parameters())


def test_ema_follows_the_generator_in_training() -> None:
    step, nets = _step("dcgan", ema=0.75, ema_rampup=0.0)
    G = nets["generator"]
    expected = [p.detach().clone() for p in G.parameters()]
    for i in range(4):
        step(_batch(seed=i), None, i)
        expected = [0.75 * e + 0.25 * p.detach() for e, p in zip(expected, G.parameters(), strict=True)]
    for e, s in zip(expected, step.image_network().parameters(), strict=True):
        torch.testing.assert_close(s, e)
    assert step.image_network() is not G


def test_ema_ramp_up_keeps_its_half_life_under_a_share_of_the_images_seen() -> None:
    """StyleGAN2-ADA's ema_rampup: half-life <= rampup x images seen, then the configured decay."""
    from latentstudio.train.ema import half_life_images, ramped_decay

    assert half_life_images(0.999, 64) == pytest.approx(44_329, rel=1e-3)  # 693 steps of 64
    for step in (1, 10, 100, 1000):
        decay = ramped_decay(0.999, 0.05, step * 64, 64)
        assert half_life_images(decay, 64) == pytest.approx(min(0.05 * step * 64, 44_329), rel=1e-6)
    assert ramped_decay(0.999, 0.05, 10**9, 64) == 0.999
    assert ramped_decay(0.999, 0.0, 64, 64) == 0.999
    # In training: after 4 steps the average is mostly the latest weights, not the initial ones.
    step, nets = _step("dcgan", ema=0.999)
    first = [p.detach().clone() for p in nets["generator"].parameters()]
    for i in range(4):
        step(_batch(seed=i), None, i)
    latest = list(nets["generator"].parameters())
    shadow = list(step.image_network().parameters())
    near_latest = sum((s - p).norm() for s, p in zip(shadow, latest, strict=True))
    near_first = sum((s - f).norm() for s, f in zip(shadow, first, strict=True))
    assert near_latest < 0.1 * near_first


def test_standing_statistics_are_the_average_over_the_batches() -> None:
    from latentstudio.train.ema import standing_statistics

    bn = nn.BatchNorm1d(3, momentum=0.1)
    batches = [torch.randn(8, 3, generator=torch.Generator().manual_seed(i)) * (i + 1) + i
               for i in range(3)]
    feed = iter(batches)
    standing_statistics(bn, lambda m: m(next(feed)), 3)
    torch.testing.assert_close(bn.running_mean, torch.stack([b.mean(0) for b in batches]).mean(0))
    torch.testing.assert_close(bn.running_var, torch.stack([b.var(0) for b in batches]).mean(0))
    assert bn.momentum == 0.1 and not bn.training


def test_the_ema_generator_gets_batch_statistics_of_its_own(monkeypatch) -> None:
    """Copied running statistics describe the trained generator; the average's are recomputed
    when it is used, once per change, without touching training's random streams."""
    step, nets = _step("dcgan", ema=0.5, ema_rampup=0.0)
    G = nets["generator"]
    for i in range(3):
        step(_batch(seed=i), None, i)
    shadow = step.ema.shadow
    assert all(torch.equal(s, b) for s, b in zip(shadow.buffers(), G.buffers(), strict=True))
    expected = copy.deepcopy(shadow)
    step._standing_statistics(expected)
    gen_state, rng_state = step.gen.get_state(), torch.get_rng_state()
    calls = []
    real = steps_module.standing_statistics
    monkeypatch.setattr(steps_module, "standing_statistics", lambda *a: calls.append(1) or real(*a))
    net = step.image_network()
    assert net is shadow and not net.training
    for name, b in expected.named_buffers():
        torch.testing.assert_close(dict(net.named_buffers())[name], b)
    means = [(m.running_mean, g.running_mean) for m, g in zip(net.modules(), G.modules(), strict=True)
             if isinstance(m, nn.BatchNorm2d)]
    assert means and not any(torch.allclose(a, b) for a, b in means)
    assert torch.equal(step.gen.get_state(), gen_state) and torch.equal(torch.get_rng_state(), rng_state)
    step.image_network()
    assert len(calls) == 1  # unchanged weights: not recomputed
    step(_batch(seed=3), None, 3)
    step.image_network()
    assert len(calls) == 2


def test_previews_draw_ema_statistics_from_fewer_images_than_what_is_kept(monkeypatch) -> None:
    """A preview averages the statistics over PREVIEW_CALIBRATION_IMAGES, a checkpoint over
    CALIBRATION_IMAGES; statistics already drawn from more images serve a preview as they are."""
    from latentstudio.train.ema import CALIBRATION_IMAGES, PREVIEW_CALIBRATION_IMAGES

    step, _ = _step("dcgan", ema=0.5, ema_rampup=0.0, batch_size=64)
    images = []
    real = steps_module.standing_statistics
    monkeypatch.setattr(steps_module, "standing_statistics",
                        lambda net, forward, batches: images.append(batches * 64) or
                        real(net, forward, batches))
    step(_batch(seed=0), None, 0)
    step.image_network(PREVIEW_CALIBRATION_IMAGES)
    step.image_network()
    step.image_network(PREVIEW_CALIBRATION_IMAGES)
    assert images == [PREVIEW_CALIBRATION_IMAGES, CALIBRATION_IMAGES]
    assert PREVIEW_CALIBRATION_IMAGES < CALIBRATION_IMAGES


def test_previews_with_small_batches_draw_ema_statistics_from_sixteen_batches(tmp_path: Path,
                                                                              monkeypatch) -> None:
    """At high resolution the batches are small and each image costs more: a preview's and the
    health check's statistics then come from 16 batches, a checkpoint's still from 1,024 images."""
    from latentstudio.train.ema import (
        CALIBRATION_IMAGES,
        PREVIEW_CALIBRATION_BATCHES,
        PREVIEW_CALIBRATION_IMAGES,
        preview_calibration_images,
    )

    assert preview_calibration_images(64) == PREVIEW_CALIBRATION_IMAGES
    asked = []
    real = EMA.calibrated
    monkeypatch.setattr(EMA, "calibrated", lambda self, n: asked.append(n) or real(self, n))
    train(_tiny("dcgan", tmp_path / "run", ema=0.9, batch_size=4, preview_every="4steps"))
    assert set(asked) == {4 * PREVIEW_CALIBRATION_BATCHES, CALIBRATION_IMAGES}


def test_checkpoints_hold_the_ema_generators_own_statistics(tmp_path: Path) -> None:
    run = train(_tiny("dcgan", tmp_path / "run", ema=0.9))
    models = load_checkpoint(run / "checkpoints" / "last.pt")["models"]
    ema, raw = models["generator_ema"], models["generator"]
    means = [k for k in ema if k.endswith("running_mean")]
    assert means and not any(torch.allclose(ema[k], raw[k]) for k in means)


# ----- label smoothing and label noise
def test_label_smoothing_is_one_sided() -> None:
    step, _ = _step("dcgan", label_smoothing=0.1)
    real, fake = step._targets(1000)
    assert torch.equal(real, torch.full((1000,), 0.9))
    assert torch.equal(fake, torch.zeros(1000))


def test_label_noise_flips_the_asked_fraction_both_ways() -> None:
    step, _ = _step("dcgan", label_smoothing=0.1, label_noise=0.2)
    real, fake = step._targets(40000)
    torch.testing.assert_close(real.unique(), torch.tensor([0.0, 0.9]))
    assert set(fake.unique().tolist()) == {0.0, 1.0}
    # 40000 Bernoulli(0.2) draws: standard deviation 0.002, so 0.01 is 5 sigma.
    assert (real == 0).float().mean().item() == pytest.approx(0.2, abs=0.01)
    assert (fake == 1).float().mean().item() == pytest.approx(0.2, abs=0.01)


def test_targets_reach_the_discriminator_loss(monkeypatch) -> None:
    seen = []
    original = steps_module.discriminator_loss

    def spy(kind, real, fake, real_t=None, fake_t=None):
        seen.append((kind, real_t, fake_t))
        return original(kind, real, fake, real_t, fake_t)

    monkeypatch.setattr(steps_module, "discriminator_loss", spy)
    step, _ = _step("dcgan", label_smoothing=0.2)
    step(_batch(), None, 0)
    kind, real_t, fake_t = seen[-1]
    assert kind == "bce" and torch.equal(real_t, torch.full((8,), 0.8))
    step, _ = _step("dcgan", label_smoothing=0.2, loss="hinge")
    step(_batch(), None, 0)
    assert seen[-1][1] is None  # only BCE has targets to smooth


# ----- instance noise
def test_instance_noise_anneals_linearly_to_zero() -> None:
    step, _ = _step("dcgan", total_steps=100, instance_noise=0.5)
    x = torch.zeros(64, 3, 16, 16)
    for at, sigma in [(0, 0.5), (50, 0.25), (90, 0.05)]:
        assert step._d_input(x, at).std().item() == pytest.approx(sigma, rel=0.05)
    assert torch.equal(step._d_input(x, 100), x)
    assert torch.equal(step._d_input(x, 150), x)


# ----- DiffAugment
def test_diffaug_keeps_shapes_and_is_differentiable() -> None:
    x = _batch(6).requires_grad_(True)
    out = diffaug(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and torch.isfinite(out).all()
    assert not torch.equal(out, x)
    (out * torch.randn_like(out)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    again = diffaug(x.detach(), torch.Generator().manual_seed(0))
    assert torch.equal(again, out.detach())  # the generator alone decides the augmentation


def test_translation_shifts_with_zero_fill() -> None:
    x = torch.arange(2 * 1 * 8 * 8, dtype=torch.float32).view(2, 1, 8, 8) + 1
    out = translation(x, torch.Generator().manual_seed(3), ratio=0.25)  # shifts of up to 2 px
    for i in range(2):
        matches = []
        for ty in range(-2, 3):
            for tx in range(-2, 3):
                shifted = torch.zeros(8, 8)
                for r in range(8):
                    for c in range(8):
                        if 0 <= r + ty < 8 and 0 <= c + tx < 8:
                            shifted[r, c] = x[i, 0, r + ty, c + tx]
                matches.append(torch.equal(out[i, 0], shifted))
        assert sum(matches) == 1


def test_cutout_zeroes_one_square_and_keeps_the_rest() -> None:
    x = torch.ones(50, 1, 16, 16)
    out = cutout(x, torch.Generator().manual_seed(0), ratio=0.5)
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    zeros = (out == 0).sum(dim=(1, 2, 3))
    assert zeros.max() == 64 and zeros.min() > 0  # an 8x8 square, clipped at the borders
    for img in out[:, 0]:
        rows, cols = (img == 0).nonzero(as_tuple=True)
        assert len(rows) == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)


def test_the_step_applies_the_policy_the_family_or_the_user_names(monkeypatch: pytest.MonkeyPatch) -> None:
    applied: list[str] = []
    for name in augment_module.TRANSFORMS:
        monkeypatch.setitem(augment_module.TRANSFORMS, name,
                            lambda x, g=None, name=name: applied.append(name) or x)
    x = _batch(2)
    for model, settings, expected in [
            ("fastgan", {}, ["color", "translation"]),  # its official code has no cutout
            ("dcgan", {}, ["color", "translation", "cutout"]),
            ("dcgan", {"diffaug_policy": "cutout,color"}, ["cutout", "color"])]:
        step, _ = _step(model, resolution=64 if model == "fastgan" else 16, augment="diffaug",
                        **settings)
        applied.clear()
        step._d_input(x, 0)
        assert applied == expected, model


@pytest.mark.parametrize("policy", ["colour", "color,color", "", "color,,cutout"])
def test_a_wrong_diffaug_policy_is_a_one_line_error(policy: str) -> None:
    with pytest.raises(UserError, match="--diffaug-policy must list some of color, translation, cutout"):
        TrainConfig(augment="diffaug", diffaug_policy=policy)


def test_runs_saved_before_the_policy_setting_keep_all_three_transforms() -> None:
    saved = TrainConfig(model="fastgan", augment="diffaug").to_dict()
    del saved["diffaug_policy"]
    assert TrainConfig.from_dict(saved).diffaug_policy == "color,translation,cutout"


# ----- WGAN: clipping, gradient penalty, n_critic
def test_weight_clipping_keeps_every_critic_weight_in_bounds(tmp_path: Path) -> None:
    # A large learning rate pushes weights far past 0.01 between clips; init is N(0, 0.02)
    # and batch-norm scales start near 1, so the bound is not met by accident.
    run = train(_tiny("wgan", tmp_path / "run", lr=0.05), progress=False)
    critic = load_checkpoint(run / "checkpoints" / "last.pt")["models"]["discriminator"]
    weights = [v for k, v in critic.items() if v.is_floating_point() and "running" not in k]
    assert all(w.abs().max() <= 0.01 for w in weights)
    assert sum((w.abs() == 0.01).sum() for w in weights) > 0


def test_wgan_gp_step_adds_the_weighted_penalty() -> None:
    step, _ = _step("wgan-gp")
    out = step(_batch(), None, 0)
    assert out["gp"] > 0
    expected = out["d_fake"] - out["d_real"] + 10 * out["gp"]
    assert out["loss_d"].item() == pytest.approx(expected.item(), rel=1e-4, abs=1e-5)


def test_r1_step_adds_half_gamma_times_the_penalty() -> None:
    out = _step("dcgan", r1=4.0)[0](_batch(), None, 0)
    plain = _step("dcgan")[0](_batch(), None, 0)  # same weights, same batch, no penalty
    assert out["r1"] > 0 and "r1" not in plain
    assert out["loss_d"].item() == pytest.approx(plain["loss_d"].item() + 2.0 * out["r1"].item(), rel=1e-4)
    with pytest.raises(UserError, match="r1"):
        TrainConfig(r1=-1)


def test_generator_updates_once_every_n_critic_steps() -> None:
    step, nets = _step("wgan-gp")  # n_critic 5
    G = nets["generator"]
    changed = []
    for i in range(10):
        before = [p.detach().clone() for p in G.parameters()]
        out = step(_batch(seed=i), None, i)
        changed.append(any(not torch.equal(b, p) for b, p in zip(before, G.parameters(), strict=True)))
        assert ("loss_g" in out) == changed[-1]
    assert changed == [False] * 4 + [True] + [False] * 4 + [True]


# ----- VAE
def test_kl_warmup_ramps_the_kl_weight() -> None:
    step, _ = _step("vae-conv", kl_warmup=10, beta=2.0)
    for at, weight in [(0, 0.0), (5, 1.0), (10, 2.0), (30, 2.0)]:
        out = step(_batch(seed=at), None, at)
        assert out["loss"].item() == pytest.approx((out["recon"] + weight * out["kl"]).item(), rel=1e-5)


# ----- divergence guard
def _poison(monkeypatch, nan_at: set[int] | None = None, from_step: int | None = None) -> list[int]:
    """Make AdversarialStep blow up at chosen steps: NaN weights in G and a NaN loss."""
    original = AdversarialStep.__call__
    calls: list[int] = []

    def poisoned(self, real, labels, step):
        out = original(self, real, labels, step)
        calls.append(step)
        bad = (nan_at is not None and step in nan_at and calls.count(step) == 1) or \
            (from_step is not None and step >= from_step)
        if bad:
            with torch.no_grad():
                for p in self.G.parameters():
                    p.fill_(math.nan)
            out = {**out, "loss_g": torch.tensor(math.nan)}
        return out

    monkeypatch.setattr(AdversarialStep, "__call__", poisoned)
    return calls


def _events(run: Path) -> list[str]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["event"] for r in records if "event" in r]


def test_divergence_restores_the_last_checkpoint_and_halves_the_learning_rates(
        monkeypatch, tmp_path: Path) -> None:
    calls = _poison(monkeypatch, nan_at={4})
    run = tmp_path / "run"
    trainer = Trainer(_tiny("dcgan", run), run, progress=False)
    trainer.fit()
    # Steps 0-2 (epoch 0, checkpointed), 3-4 diverge at 4, then 3..7 again from the checkpoint.
    assert calls == [0, 1, 2, 3, 4, 3, 4, 5, 6, 7]
    assert [g["lr"] for o in trainer.updater.optimizers.values() for g in o.param_groups] == [1e-4, 1e-4]
    events = _events(run)
    assert len(events) == 1 and "restored the last checkpoint" in events[0] and "0.5" in events[0]
    payload = load_checkpoint(run / "checkpoints" / "last.pt")
    assert payload["progress"]["step"] == 8 and payload["progress"]["divergences"] == 1
    assert all(torch.isfinite(t).all() for m in payload["models"].values() for t in m.values()
               if t.is_floating_point())


def test_divergence_gives_up_after_three_tries(monkeypatch, tmp_path: Path) -> None:
    _poison(monkeypatch, from_step=4)
    run = tmp_path / "run"
    with pytest.raises(UserError, match="diverged.*3 restarts.*lower --lr"):
        train(_tiny("dcgan", run), progress=False)
    events = _events(run)
    assert len(events) == 3
    assert ["0.5 x" in events[0], "0.25 x" in events[1], "0.125 x" in events[2]] == [True] * 3
    payload = load_checkpoint(run / "checkpoints" / "last.pt")  # still the last good state
    assert payload["progress"]["step"] == 3
    assert all(torch.isfinite(t).all() for m in payload["models"].values() for t in m.values()
               if t.is_floating_point())


def test_a_huge_learning_rate_ends_in_a_clear_error(tmp_path: Path) -> None:
    """No monkeypatching: a learning rate of 1e30 overflows to inf/NaN for real."""
    with pytest.raises(UserError, match="diverged"):
        train(_tiny("vae-dense", tmp_path / "run", lr=1e30, steps=20), progress=False)
