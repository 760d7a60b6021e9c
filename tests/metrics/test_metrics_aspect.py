"""A non-square (16 wide x 32 high) DCGAN run is scored by eval and nearest; the feature
extractors take non-square images."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from latentstudio.cli import main
from latentstudio.data.base import ImageSet
from latentstudio.metrics.extractors import Extractor
from latentstudio.metrics.extractors.domain import DomainTraining, train_domain_network

W, H = 16, 32


@pytest.fixture
def run(tiny_run) -> Path:
    return tiny_run("dcgan", name="dcgan-16x32", resolution=f"{W}x{H}", data="shapes:64")


def test_eval_and_nearest_score_non_square_runs(run: Path, tmp_path: Path, capsys) -> None:
    assert main(["eval", str(run), "--extractor", "domain", "--metrics", "fid,kid", "--n", "64",
                 "--device", "cpu", "--no-progress"]) == 0
    assert "KID (domain)" in capsys.readouterr().out
    sheet = tmp_path / "near.png"
    assert main(["nearest", str(run), "--n", "2", "--k", "2", "--extractor", "domain",
                 "--device", "cpu", "--no-progress", "--out", str(sheet)]) == 0
    with Image.open(sheet) as im:
        assert im.height > 2 * H


def test_feature_extractors_take_non_square_images() -> None:
    net = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    ext = Extractor("x", "x", 3, net, input_size=64, rgb=True)
    x = ext.prepare(torch.zeros(2, 1, H, W, dtype=torch.uint8))
    assert x.shape == (2, 3, 64, 64)  # resized to the network's own input, as ImageNet nets want
    # Unlabelled data trains the domain network on W x H images, contrastively or as an autoencoder.
    images = ImageSet(torch.randint(0, 255, (8, 3, H, W), dtype=torch.uint8))
    for task in ("contrastive", "autoencoder"):
        config = DomainTraining(epochs=1, batch_size=8, width=4, unlabelled=task, contrastive_steps=2)
        net, summary = train_domain_network(images, config, progress=False)
        assert summary["task"] == task
        assert net(torch.zeros(1, 3, H, W)).shape == (1, 16)
