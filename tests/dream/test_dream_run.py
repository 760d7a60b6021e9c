"""`--net run:RUN`: dreaming through a trained run's discriminator, critic or encoder."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from latentstudio import cli
from latentstudio.dream import DreamConfig, LayerObjective, dream_picture, load_network
from latentstudio.errors import UserError

# Dreaming needs networks, not trained ones: 16 px, 2 steps.
DREAM_RUN = dict(data="shapes:64", resolution=16, width=8, latent_dim=8, batch_size=32, steps=2,
                 precision="fp32", preview_every=1000, checkpoint_every=1000, log_every=50, seed=0)


@pytest.fixture(scope="module")
def runs(tiny_run):
    return {"dcgan": tiny_run("dcgan", **DREAM_RUN), "cgan": tiny_run("cgan", **DREAM_RUN),
            "vae": tiny_run("vae-conv", **DREAM_RUN, channels=1)}


def _picture(mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (36, 44, 3), dtype=np.uint8)).convert(mode)


def test_discriminator_layers_by_name_and_position(runs):
    net = load_network(f"run:{runs['dcgan']}")
    assert "discriminator" in net.name
    names = list(net.layers)
    assert names and all(not n.startswith("head") or n == "head" for n in names)
    assert net.layer_name("1") == names[1]
    assert net.layer_name(names[2]) == names[2]
    assert net.default_layer in names
    with pytest.raises(UserError) as e:
        net.layer_name("features.99")
    assert names[0] in str(e.value) and f"position 0-{len(names) - 1}" in str(e.value)


@pytest.mark.parametrize("model", ["dcgan", "cgan"])
def test_dream_through_a_discriminator_raises_its_objective(runs, model):
    objective = LayerObjective(load_network(f"run:{runs[model]}"))
    out, result = dream_picture(_picture(), objective, DreamConfig(octaves=1, iterations=4))
    assert out.size == (44, 36) and out.mode == "RGB"
    assert result.objective[-1] > result.objective[0]


def test_colour_picture_through_a_gray_encoder_keeps_its_colours(runs):
    net = load_network(f"run:{runs['vae']}")
    assert net.in_channels == 1 and "encoder" in net.name
    picture = _picture()
    out, _ = dream_picture(picture, LayerObjective(net), DreamConfig(octaves=1, iterations=3))
    before, after = np.asarray(picture, np.float32), np.asarray(out, np.float32)
    assert out.mode == "RGB" and np.abs(after - before).mean() > 0.5
    # only brightness changed: the per-pixel differences between channels stay (up to rounding
    # and clamping)
    spread = lambda a: a - a.mean(2, keepdims=True)  # noqa: E731
    assert np.median(np.abs(spread(after) - spread(before))) <= 1


def test_cli_with_a_run(runs, tmp_path):
    out = tmp_path / "d.png"
    assert cli.main(["dream", str(tmp_path / "in.png"), "--out", str(out)]) == 2  # no input yet
    _picture().save(tmp_path / "in.png")
    assert cli.main(["dream", str(tmp_path / "in.png"), "--net", f"run:{runs['dcgan']}",
                     "--layer", "2", "--octaves", "1", "--iterations", "2", "--out", str(out),
                     "--no-progress", "--device", "cpu"]) == 0
    with Image.open(out) as img:
        assert img.size == (44, 36)


def test_missing_run_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_network(f"run:{tmp_path / 'nope'}")
