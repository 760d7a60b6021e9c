"""FastGAN: sizes 64-1024, skip-layer excitation, the self-supervised discriminator, training at
64/128/256 px on a CPU, and the things every family does (sample, interpolate, dream, evaluate)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from latentstudio.cli import main
from latentstudio.errors import UserError
from latentstudio.models import ModelConfig, get_family
from latentstudio.models.fastgan import _quarter
from latentstudio.runs import load_run
from latentstudio.train.config import TrainConfig
from latentstudio.train.loop import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")


def nets(resolution: int, width: int = 4, latent_dim: int = 16) -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    cfg = ModelConfig(resolution=resolution, channels=3, latent_dim=latent_dim, width=width)
    return get_family("fastgan").build(cfg)


@pytest.mark.parametrize("resolution", [64, 128, 256, 512, 1024])
def test_every_size_draws_and_judges_and_rebuilds(resolution: int) -> None:
    n = nets(resolution, width=2)
    g, d = n["generator"], n["discriminator"]
    images = g(torch.randn(2, 16))
    assert images.shape == (2, 3, resolution, resolution) and images.abs().max() <= 1
    d.eval()  # training mode updates batch-norm statistics and spectral-norm estimates
    logits, recons, targets = d(images, reconstruct=True)
    side = min(128, resolution // 2)  # half the image, as the official 128 of 256
    assert logits.shape == (2,)
    assert [tuple(r.shape) for r in recons] == [(2, 3, side, side)] * 3
    assert [tuple(t.shape) for t in targets] == [(2, 3, side, side)] * 3
    torch.testing.assert_close(d(images), logits)


def test_other_sizes_are_refused_in_one_line(tmp_path: Path, capsys) -> None:
    with pytest.raises(UserError, match="64, 128, 256, 512, 1024"):
        nets(32)
    assert main(["train", "--model", "fastgan", "--resolution", "32", "--out", str(tmp_path / "r")]) == 2
    assert "fastgan makes" in capsys.readouterr().err


def test_skip_layer_excitation_gates_the_high_resolution_stages() -> None:
    g = nets(256)["generator"].eval()
    assert sorted(g.sles) == ["128", "256", "64"]  # 4 -> 64, 8 -> 128, 16 -> 256 px
    z = torch.randn(2, 16)
    before = g(z)
    with torch.no_grad():  # a gate of sigmoid(-inf) = 0 switches the 128 px stage off
        g.sles["128"].gate[3].parametrizations.weight.original.zero_()
        g.sles["128"].gate[1].parametrizations.weight.original.zero_()
    assert not torch.allclose(before, g(z))


def test_noise_is_injected_only_while_training() -> None:
    g = nets(64)["generator"]
    for m in g.modules():
        if type(m).__name__ == "NoiseInjection":
            m.weight.data.fill_(1.0)
    z = torch.randn(2, 16)
    g.eval()
    torch.testing.assert_close(g(z), g(z))
    g.train()
    assert not torch.allclose(g(z), g(z))


def test_quarters_are_read_in_reading_order() -> None:
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    assert _quarter(x, torch.tensor([0])).flatten().tolist() == [0, 1, 4, 5]
    assert _quarter(x, torch.tensor([3])).flatten().tolist() == [10, 11, 14, 15]


def test_a_step_trains_the_decoders_by_reconstruction(tmp_path: Path) -> None:
    cfg = TrainConfig(model="fastgan", data="shapes:8", resolution=64, width=4, latent_dim=16,
                      batch_size=4, steps=1, device="cpu", out=str(tmp_path / "r"))
    trainer = Trainer(cfg, tmp_path / "r", progress=False)
    decoder = trainer.models["discriminator"].decoder_part
    before = [p.detach().clone() for p in decoder.parameters()]
    real, _ = next(trainer.loader.batches(0))
    out = trainer.updater(real, None, 0)
    assert torch.isfinite(out["recon"]) and out["recon"] > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, decoder.parameters(), strict=True))


@pytest.mark.parametrize("resolution", [64, 128, 256])
def test_trains_previews_and_samples_on_a_cpu(resolution: int, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert main(["train", "--model", "fastgan", "--data", "shapes:8", "--resolution", str(resolution),
                 "--width", "2", "--latent-dim", "16", "--batch-size", "4", "--steps", "2",
                 "--preview-count", "4", "--augment", "diffaug", "--device", "cpu",
                 "--out", str(run)]) == 0
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert "recon" in records[-1] and "loss_d" in records[-1]
    with Image.open(sorted((run / "samples").glob("step_*.png"))[-1]) as grid:
        assert grid.size == (2 * (resolution + 2) + 2,) * 2
    images = load_run(run).sample(2, seed=1)
    assert images.shape == (2, 3, resolution, resolution)
    torch.testing.assert_close(images, load_run(run).sample(2, seed=1))  # a seed is a picture


def test_explores_dreams_and_evaluates_like_every_family(tiny_run, tmp_path: Path) -> None:
    run = tiny_run("fastgan", resolution=64, width=2, data="shapes:16", batch_size=8, steps=2)
    out = tmp_path
    assert main(["interpolate", str(run), "--seeds", "1,2", "--steps", "3", "--out",
                 str(out / "walk.gif")]) == 0
    assert main(["dream", str(run / "samples" / "step_000000.png"), "--net", f"run:{run}",
                 "--octaves", "1", "--iterations", "1", "--out", str(out / "d.png")]) == 0
    assert main(["eval", str(run), "--extractor", "domain", "--n", "16", "--metrics", "fid",
                 "--device", "cpu", "--no-progress"]) == 0
    assert json.loads((run / "eval.json").read_text())["metrics"]
    from fastapi.testclient import TestClient

    from latentstudio.web.app import create_app

    client = TestClient(create_app(run.parent))
    assert client.get(f"/api/runs/{run.name}").json()["model"] == "fastgan"
    assert client.post(f"/api/runs/{run.name}/render", json={"seed": 1}).status_code == 200
