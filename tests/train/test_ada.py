"""ADA: the controller on synthetic discriminator outputs, its augmentations, p in training\n(logged, checkpointed, resumed); --mirror."""

from __future__ import annotations

import json

import pytest
import torch

from latentstudio.data import load_dataset
from latentstudio.data.loader import DeviceLoader
from latentstudio.runs import load_checkpoint
from latentstudio.train.ada import AdaController, augment
from latentstudio.train.config import TrainConfig
from latentstudio.train.loop import train


def outputs(fraction_positive: float, n: int = 100) -> torch.Tensor:
    k = round(fraction_positive * n)
    return torch.cat([torch.full((k,), 2.0), torch.full((n - k,), -3.0)])


def test_p_rises_while_the_discriminator_is_too_sure_of_real_images() -> None:
    ada = AdaController(target=0.6, speed_kimg=1.0, interval=4)
    for _ in range(3):
        ada.observe(outputs(0.95))  # r = 0.9 > 0.6
    assert ada.p == 0  # adjusted only every 4 steps
    ada.observe(outputs(0.95))
    assert ada.r == pytest.approx(0.9)
    assert ada.p == pytest.approx(400 / 1000)  # 4 steps x 100 images / (1 kimg)
    for _ in range(4):
        ada.observe(outputs(0.5))  # r = 0 < 0.6: back down
    assert ada.p == pytest.approx(0.0, abs=1e-12)
    for _ in range(8):
        ada.observe(outputs(0.0))
    assert ada.p == 0  # never below 0
    for _ in range(40):
        ada.observe(outputs(1.0))
    assert ada.p == 1  # never above 1


def test_r_settles_near_the_target_on_a_discriminator_that_reacts_to_p() -> None:
    """A toy discriminator whose confidence falls as p rises: r ends near the target."""
    ada = AdaController(target=0.6, speed_kimg=2.0, interval=4)
    g = torch.Generator().manual_seed(0)
    rs = []
    for _ in range(2000):
        confidence = 0.95 - 0.7 * ada.p  # P(sign(D(real)) > 0) on this step
        d_real = torch.where(torch.rand(64, generator=g) < confidence, 1.0, -1.0)
        ada.observe(d_real)
        rs.append(ada.r)
    assert 0.2 < ada.p < 0.8
    assert abs(sum(rs[-400:]) / 400 - 0.6) < 0.1


def test_state_round_trips_mid_interval() -> None:
    a = AdaController(speed_kimg=1.0)
    for _ in range(6):
        a.observe(outputs(0.9))
    b = AdaController(speed_kimg=1.0)
    b.load_state_dict(a.state_dict())
    for ctrl in (a, b):
        ctrl.observe(outputs(0.9))
        ctrl.observe(outputs(0.9))
    assert a.state_dict() == b.state_dict() and a.p > 0.4


def test_augment_each_image_with_probability_p() -> None:
    x = torch.rand(2000, 3, 16, 16) * 2 - 1
    g = torch.Generator().manual_seed(1)
    assert torch.equal(augment(x, 0.0, g), x)
    out = augment(x, 1.0, g)
    assert not torch.isclose(out, x).all(dim=(1, 2, 3)).any()  # every image changed
    half = augment(x, 0.5, g)
    unchanged = torch.isclose(half, x).all(dim=(1, 2, 3)).float().mean()
    assert 0.005 < unchanged < 0.03  # all six ops skipped: 0.5 ** 6 = 0.0156



def test_quarter_turns_and_scale_rotate_keep_shapes_and_change_images() -> None:
    from latentstudio.train.ada import _quarter_turns, _scale_rotate

    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 3, 16, 16) * 2 - 1
    turned = _quarter_turns(x, g)
    assert turned.shape == x.shape and not torch.equal(turned, x)
    # a quarter turn moves pixels, never changes them: the sorted values of each image stay
    assert torch.equal(turned.flatten(1).sort(1).values, x.flatten(1).sort(1).values)
    moved = _scale_rotate(x, g)
    assert moved.shape == x.shape and (moved - x).abs().mean() > 0.1
    wide = torch.rand(4, 3, 16, 32)
    assert torch.equal(_quarter_turns(wide, g), wide)  # not square: left as it is


def test_ada_p_is_logged_checkpointed_and_resumed_exactly(tmp_path) -> None:
    settings = dict(model="dcgan", data="shapes:32", resolution=32, width=8, latent_dim=8,
                    batch_size=8, log_every=2, augment="ada", ada_speed=0.05, mirror=True,
                    device="cpu", precision="fp32", seed=0)
    full = train(TrainConfig(**settings, steps=16, out=str(tmp_path / "full")), progress=False)
    part = train(TrainConfig(**settings, steps=8, out=str(tmp_path / "part")), progress=False)
    train(resume=part, overrides={"steps": 16}, progress=False)
    a = load_checkpoint(full / "checkpoints" / "last.pt")
    b = load_checkpoint(part / "checkpoints" / "last.pt")
    assert 0 < a["step_state"]["ada"]["p"] <= 1  # a tiny D is sure of 32 shapes: p rises
    assert a["step_state"]["ada"] == b["step_state"]["ada"]
    for name, state in a["models"].items():
        for key, value in state.items():
            assert torch.equal(value, b["models"][name][key]), f"{name}.{key}"
    logged = [json.loads(line) for line in (full / "metrics.jsonl").read_text().splitlines()]
    assert logged[-1]["ada_p"] > 0 and "ada_r" in logged[-1]


def test_mirror_flips_about_half_the_images_the_same_way_every_time() -> None:
    data = load_dataset("shapes:64", 32, 3, "crop", seed=0, progress=False)
    plain = DeviceLoader(data, 64, 0, torch.device("cpu"))
    mirrored = DeviceLoader(data, 64, 0, torch.device("cpu"), mirror=True)
    x, _ = next(plain.batches(0))
    y, _ = next(mirrored.batches(0))
    flipped = torch.isclose(y, x.flip(3)).all(dim=(1, 2, 3)) & ~torch.isclose(y, x).all(dim=(1, 2, 3))
    assert 16 < int(flipped.sum()) < 48
    assert (torch.isclose(y, x).all(dim=(1, 2, 3)) | flipped).all()
    torch.testing.assert_close(next(mirrored.batches(0))[0], y)
    assert not torch.equal(next(mirrored.batches(1))[0], y)
