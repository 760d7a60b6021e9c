"""Non-square models (--resolution WIDTHxHEIGHT): DCGAN, the conv VAE and FastGAN start from a map
of the image's aspect ratio and end their judges/encoders on one; invalid sizes are one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from cli_checks import train_refuses
from PIL import Image

from latentstudio.errors import UserError
from latentstudio.models import ModelConfig, get_family
from latentstudio.runs import load_run
from latentstudio.train.config import TrainConfig
from latentstudio.train.memory import estimate_memory

pytestmark = pytest.mark.usefixtures("one_thread")


def build(model: str, width: int, height: int, **kw) -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    cfg = ModelConfig(resolution=width, height=height, channels=3, latent_dim=16, width=4, **kw)
    return get_family(model).build(cfg)


def test_dcgan_64x128_starts_from_a_4x8_map_and_judges_whole_images() -> None:
    nets = build("dcgan", 64, 128)
    g, d = nets["generator"], nets["discriminator"]
    first = g.net[0]
    assert first.kernel_size == (8, 4)  # (height, width): 4 wide, 8 high
    images = g(torch.randn(3, 16))
    assert images.shape == (3, 3, 128, 64)
    assert d.features(images).shape[-2:] == (8, 4) and d.head.kernel_size == (8, 4)
    assert d(images).shape == (3,)
    # Landscape is the transpose of portrait.
    assert build("dcgan", 128, 64)["generator"](torch.randn(1, 16)).shape == (1, 3, 64, 128)


def test_square_sizes_build_exactly_the_models_they_always_did() -> None:
    square = build("dcgan", 32, None)
    same = get_family("dcgan").build(ModelConfig(resolution=32, channels=3, latent_dim=16, width=4))
    for key in square:
        assert {k: v.shape for k, v in square[key].state_dict().items()} == \
            {k: v.shape for k, v in same[key].state_dict().items()}
    assert square["generator"].net[0].kernel_size == (4, 4)


def test_vae_conv_and_fastgan_make_non_square_images() -> None:
    vae = build("vae-conv", 16, 32)
    x = vae["decoder"](torch.randn(2, 16))
    assert x.shape == (2, 3, 32, 16)
    mu, logvar = vae["encoder"](x)
    assert mu.shape == logvar.shape == (2, 16)

    gan = build("fastgan", 64, 128)
    images = gan["generator"](torch.randn(2, 16))
    assert images.shape == (2, 3, 128, 64)
    d = gan["discriminator"].eval()
    logits, recons, targets = d(images, reconstruct=True)
    assert logits.shape == (2,)
    # The decoders rebuild the image at half its size below 256 px, as the small path sees it.
    assert [tuple(r.shape) for r in recons] == [(2, 3, 64, 32)] * 3
    assert [tuple(t.shape) for t in targets] == [(2, 3, 64, 32)] * 3


@pytest.mark.parametrize("model, size", [("vae-conv", "16x32"), ("fastgan", "128x64")])
def test_vae_conv_and_fastgan_train_a_step_and_sample(model: str, size: str, tiny_run) -> None:
    width, height = map(int, size.split("x"))
    run = tiny_run(model, name=f"{model}-aspect", resolution=size, steps=1, batch_size=8,
                   data="shapes:16", preview_count=4)
    meta = json.loads((run / "config.json").read_text())
    assert meta["config"]["resolution"] == size
    assert (meta["model_config"]["resolution"], meta["model_config"]["height"]) == (width, height)
    loaded = load_run(run)
    assert loaded.sample(2).shape == (2, 3, height, width)
    with Image.open(sorted((run / "samples").glob("*.png"))[-1]) as grid:
        rows = 2 if model == "fastgan" else 6  # VAE: real, recon and sample rows of 2, twice
        assert grid.size == (2 * (width + 2) + 2, rows * (height + 2) + 2)


@pytest.mark.parametrize("flags, message", [
    (["--resolution", "64x100"], "64x100 is not supported: with a shorter side of 64 the longer "
                                 "side must be a multiple of 16 up to 1024, e.g. 64x96 or 64x112"),
    (["--resolution", "64x100", "--model", "vae-conv"], "e.g. 64x96"),
    (["--resolution", "64x100", "--model", "fastgan"], "fastgan cannot make 64x100 images"),
    (["--resolution", "20x40"], "the shorter side must be 28, 32, 64 or 128"),
    (["--resolution", "64x2000", "--model", "fastgan"], "a multiple of 16 up to 1024, e.g. 64x1024"),
    (["--resolution", "64by128"], "--resolution must be a size in pixels like 64 (square) or 64x128"),
    (["--resolution", "32x64", "--model", "gan-dense"],
     "gan-dense makes square images only; non-square sizes work with --model dcgan, fastgan, vae-conv"),
])
def test_invalid_sizes_and_square_only_families_are_one_line(flags: list[str], message: str,
                                                              tmp_path: Path, capsys) -> None:
    train_refuses(flags, message, tmp_path / "run", capsys)


def test_sizes_are_written_canonically() -> None:
    assert TrainConfig(resolution="64X128").resolution == "64x128"
    assert TrainConfig(resolution="64x64").resolution == 64
    assert TrainConfig(resolution="48").resolution == 48
    assert TrainConfig(resolution="64x128").size == (64, 128)
    with pytest.raises(UserError, match="like 64"):
        TrainConfig(resolution="x128")


def test_memory_estimate_counts_both_sides(capsys) -> None:
    wide = estimate_memory(TrainConfig(resolution="64x128", batch_size=8), data_count=100)
    square = estimate_memory(TrainConfig(resolution=64, batch_size=8), data_count=100)
    assert wide.data_bytes == 100 * 3 * 64 * 128
    assert wide.batch_bytes == 2 * square.batch_bytes
    from latentstudio.cli import main

    assert main(["estimate", "--model", "dcgan", "--resolution", "64x128"]) == 0
    assert "dcgan at 64x128 px" in capsys.readouterr().out
